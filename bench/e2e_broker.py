"""What one benchmark run cost the broker: records and bytes written per kind of topic.

Read before and after the measured part of a run and subtracted:

- **records**: the log end offset of every partition (a transaction's commit marker
  takes an offset too, so markers are counted as records), read with ListOffsets;
- **bytes**: the size of the partition's segment files on disk (the broker's own data
  directory; the benchmark's broker is local), i.e. what was appended, batch headers
  and markers included.

Topics are grouped into families, so that the report can say how many records and
bytes one signal costs on each kind of topic (ingress, delivery, access log, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kafka import TopicPartition
from kafka.admin import KafkaAdminClient, OffsetSpec
from kafka.errors import KafkaError

from sigex.exchange.topology import (
    AUDIT_TOPIC,
    DEAD_LETTER_TOPIC,
    LEDGER_TOPIC,
    RECEIPTS_PREFIX,
    TOPIC_PREFIX,
)

#: (family, test) in order: the first family whose test accepts a topic name gets it
FAMILIES: tuple[tuple[str, Any], ...] = (
    ("sigex receipts", lambda t: t.startswith(RECEIPTS_PREFIX)),
    ("sigex access log", lambda t: t == AUDIT_TOPIC),
    ("sigex replay ledger", lambda t: t == LEDGER_TOPIC),
    ("sigex dead letters", lambda t: t == DEAD_LETTER_TOPIC),
    ("sigex ingress", lambda t: t.startswith(f"{TOPIC_PREFIX}.") and ".in." in t),
    ("sigex delivery", lambda t: t.startswith(f"{TOPIC_PREFIX}.") and ".out." in t),
    ("baseline in", lambda t: t.startswith("bench.e2e.in.")),
    ("baseline out", lambda t: t.startswith("bench.e2e.out.")),
    ("consumer offsets", lambda t: t == "__consumer_offsets"),
    ("transaction state", lambda t: t == "__transaction_state"),
    ("other", lambda t: True),
)


def family_of(topic: str) -> str:
    return next(name for name, test in FAMILIES if test(topic))


def _partition_dirs(data_dir: Path) -> dict[TopicPartition, Path]:
    found: dict[TopicPartition, Path] = {}
    for folder in data_dir.iterdir():
        topic, dash, number = folder.name.rpartition("-")
        if folder.is_dir() and dash and number.isdigit() and ("." in topic or topic[:2] == "__"):
            found[TopicPartition(topic, int(number))] = folder
    return found


def _bytes_on_disk(folder: Path) -> int:
    try:
        return sum(p.stat().st_size for p in folder.glob("*.log"))
    except OSError:  # a segment was rolled or deleted while we looked
        return 0


def snapshot(admin: KafkaAdminClient, data_dir: Path) -> dict[str, dict[str, int]]:
    """Per topic: end offset summed over its partitions, and bytes of its segments."""
    dirs = _partition_dirs(data_dir)
    offsets: dict[TopicPartition, int] = {}
    wanted = {tp: OffsetSpec.LATEST for tp in dirs if not tp.topic.startswith("__")}
    try:
        answer = admin.list_partition_offsets(wanted) if wanted else {}
        offsets = {tp: found.offset for tp, found in answer.items()}
    except KafkaError:
        offsets = {}
    usage: dict[str, dict[str, int]] = {}
    for tp, folder in dirs.items():
        entry = usage.setdefault(tp.topic, {"records": 0, "bytes": 0})
        entry["records"] += offsets.get(tp, 0)
        entry["bytes"] += _bytes_on_disk(folder)
    return usage


def difference(
    before: Mapping[str, Mapping[str, int]], after: Mapping[str, Mapping[str, int]]
) -> dict[str, dict[str, int]]:
    """What was written between two snapshots, per family (families with nothing left out)."""
    families: dict[str, dict[str, int]] = {}
    for topic, now in after.items():
        then = before.get(topic, {"records": 0, "bytes": 0})
        records = now["records"] - then["records"]
        written = now["bytes"] - then["bytes"]
        if records <= 0 and written <= 0:
            continue
        entry = families.setdefault(family_of(topic), {"records": 0, "bytes": 0})
        entry["records"] += max(records, 0)
        entry["bytes"] += max(written, 0)
    return families
