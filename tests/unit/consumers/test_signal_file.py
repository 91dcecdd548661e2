"""The --out file of ``sigex subscribe``: read back after a crash, a torn last line cut off."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from sigex.consumers.signal_file import SignalFile, SignalFileError


def line(message_id: str) -> str:
    return json.dumps({"message_id": message_id, "signal": "payroll.bsn-mismatch"})


def test_the_ids_already_written_are_read_back(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(line(f"m{n}") + "\n" for n in range(5)))
    assert SignalFile(path).message_ids == ["m0", "m1", "m2", "m3", "m4"]
    assert SignalFile(path, remember=2).message_ids == ["m3", "m4"]


def test_a_torn_last_line_is_cut_off_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(line("m0") + "\n" + line("m1")[:17])  # killed in the middle of a write
    out = SignalFile(path)
    assert out.message_ids == ["m0"]
    assert out.repaired_bytes == 17
    out.write(line("m1"))
    out.sync()
    out.close()
    assert [json.loads(x)["message_id"] for x in path.read_text().splitlines()] == ["m0", "m1"]


def test_a_file_that_is_one_torn_line_becomes_empty(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"message_id": "m')
    assert SignalFile(path).message_ids == []
    assert path.read_bytes() == b""


def test_a_line_that_is_not_a_signal_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(line("m0") + "\nhello\n" + line("m1") + "\n")
    with pytest.raises(SignalFileError, match="line 2 is not a received signal"):
        SignalFile(path)
    path.write_bytes(b"\xff\xfe\n")
    with pytest.raises(SignalFileError, match="not UTF-8"):
        SignalFile(path)


def test_a_new_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    SignalFile(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
