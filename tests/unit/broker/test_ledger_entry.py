"""Replay-ledger records: packed entries read back exactly; anything else refused whole."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sigex.broker.ledger_entry import (
    ENTRIES_PER_RECORD,
    LedgerEntry,
    pack_ledger_entries,
    parse_ledger_record,
)

NOW = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)


def _entries(count: int) -> list[LedgerEntry]:
    return [
        LedgerEntry(
            uuid.uuid4(),
            NOW - timedelta(milliseconds=n),
            bytes([n % 256]) * 32,
            f"sigex.x.in.UWV/{n % 4}/{n}",
        )
        for n in range(count)
    ]


def test_a_batch_is_packed_into_few_records_and_read_back_entry_for_entry() -> None:
    entries = _entries(ENTRIES_PER_RECORD + 7)
    records = pack_ledger_entries(entries)
    assert len(records) == 2
    assert [key for key, _ in records] == [entries[0].key(), entries[ENTRIES_PER_RECORD].key()]
    read = [entry for key, value in records for entry in parse_ledger_record(key, value)]
    assert read == entries


def test_a_version_1_record_is_still_read() -> None:
    (entry,) = _entries(1)
    assert parse_ledger_record(entry.key(), entry.value()) == [entry]


@pytest.mark.parametrize(
    "damage",
    [
        lambda key, value: (key, value + b"\n{}"),  # one line is not an entry
        lambda key, value: (key, value + b"\nnot json"),
        lambda key, value: (uuid.uuid4().bytes, value),  # key is not the first entry's id
        lambda key, value: (key, value.replace(b'"v":2', b'"v":3', 1)),
        lambda key, value: (key, None),
    ],
)
def test_a_damaged_packed_record_is_refused_whole(damage: object) -> None:
    ((key, value),) = pack_ledger_entries(_entries(3))
    bad_key, bad_value = damage(key, value)  # type: ignore[operator]
    with pytest.raises((ValueError, KeyError, TypeError)):
        parse_ledger_record(bad_key, bad_value)
