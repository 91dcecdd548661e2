"""The generator's external sort: runs spilled to disk merge back in key order, then vanish."""

from __future__ import annotations

import random
from pathlib import Path

from sigex.partners.producers.external_sort import ExternalSorter


def test_many_runs_merge_in_order_and_clean_up(tmp_path: Path) -> None:
    rng = random.Random(3)
    rows = [
        (f"{rng.randrange(10**8):08d}", f"{rng.randrange(100):03d}", str(i)) for i in range(1_000)
    ]
    sorter = ExternalSorter(tmp_path, key=lambda row: (row[0], row[1]), run_size=37)
    for row in rows:
        sorter.add(row)
    assert len(list(tmp_path.glob("sort-*/run-*.csv"))) == 1_000 // 37
    merged = list(sorter.sorted_rows())
    assert merged == sorted(rows, key=lambda row: (row[0], row[1]))
    assert list(tmp_path.iterdir()) == []


def test_few_rows_stay_in_memory(tmp_path: Path) -> None:
    sorter = ExternalSorter(tmp_path, key=lambda row: row, run_size=100)
    for row in (("b",), ("a",), ("c",)):
        sorter.add(row)
    assert list(sorter.sorted_rows()) == [("a",), ("b",), ("c",)]
    assert list(tmp_path.iterdir()) == []
