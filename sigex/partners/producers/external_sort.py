"""Sorting more rows than fit in memory: sorted runs in temporary files, merged lazily."""

from __future__ import annotations

import csv
import heapq
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

Row = tuple[str, ...]


class ExternalSorter:
    """Collects rows, spills sorted runs of ``run_size`` rows to disk, yields them merged.

    The runs go to a fresh folder in ``work_directory`` (None: the system's
    temporary directory), removed when the merged rows are exhausted or closed.
    """

    def __init__(
        self,
        work_directory: Path | None,
        key: Callable[[Row], Row],
        run_size: int = 200_000,
    ) -> None:
        self._directory = Path(tempfile.mkdtemp(prefix="sort-", dir=work_directory))
        self._key = key
        self._run_size = run_size
        self._buffer: list[Row] = []
        self._runs: list[Path] = []

    def add(self, row: Row) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= self._run_size:
            self._spill()

    def _spill(self) -> None:
        self._buffer.sort(key=self._key)
        path = self._directory / f"run-{len(self._runs):05d}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\n").writerows(self._buffer)
        self._runs.append(path)
        self._buffer = []

    def _read_run(self, path: Path) -> Iterator[Row]:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                yield tuple(row)

    def sorted_rows(self) -> Iterator[Row]:
        """All rows in key order; removes the temporary files when exhausted or closed."""
        try:
            if not self._runs:
                self._buffer.sort(key=self._key)
                yield from self._buffer
                return
            if self._buffer:
                self._spill()
            yield from heapq.merge(*(self._read_run(p) for p in self._runs), key=self._key)
        finally:
            self._buffer = []
            shutil.rmtree(self._directory, ignore_errors=True)
