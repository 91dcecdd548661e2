"""Verification of the access log: the whole store, one record, or an export, offline.

Verifying the store reads every row once, in leaf order, and checks that

* leaf indexes run 0, 1, 2, ... without gaps (a deleted row shows as a gap);
* each entry is a canonical access record, its stored leaf hash is the hash
  of its entry and its query columns say what the entry says (a changed
  row is named by its leaf index);
* no (trace id, operation id) appears twice;
* every stored subtree hash equals the recomputed one (a reordering or a
  rewrite that kept each row self-consistent is narrowed to the smallest
  subtree that differs);
* every checkpoint, kept in the store or given from outside (for instance
  read back from the ``sigex.audit.checkpoints`` topic), is signed by the
  audit key and its root equals the recomputed root of the first
  ``tree_size`` records; a checkpoint larger than the log means records were
  removed or the database was rolled back;
* checkpoints grow with time, and every record is covered by one;
* the log is not empty, unless the caller says an empty log is expected.

Each problem is a :class:`Finding` that says where it is. A database that
cannot be read as an access log at all (a damaged file, a BLOB rewritten as
TEXT) stops verification with :class:`~sigex.audit.errors.LogCorrupted`.
"""

from __future__ import annotations

import base64
import itertools
import json
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sigex.audit._keys import Ed25519PublicKey
from sigex.audit.checkpoint import Checkpoint, TrustedKeys, load_public_key, public_key_pem
from sigex.audit.errors import AccessLogError, ExportFormatError, RecordFormatError
from sigex.audit.store import (
    RECORD_COLUMNS,
    STORED_LEVEL,
    AccessLogStore,
    RecordFilter,
    stored_bytes,
)
from sigex.exchange.access_record import RECORD_KEYS, AccessRecord, format_time
from sigex.merkle import TreeBuilder, leaf_hash, verify_inclusion

EXPORT_FORMAT = "sigex.audit.export/v1"
_CHECKED_COLUMNS = RECORD_COLUMNS[1:-2]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: where (a record, a range of records, a checkpoint) and what."""

    where: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


@dataclass(frozen=True, slots=True)
class VerificationReport:
    tree_size: int
    checkpoints_checked: int
    signatures_checked: bool
    findings: tuple[Finding, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.findings

    def with_findings(self, more: Iterable[Finding]) -> VerificationReport:
        return replace(self, findings=(*self.findings, *more))

    def summary(self) -> str:
        if self.ok:
            signed = "signed " if self.signatures_checked else "(signatures NOT checked) "
            count = self.checkpoints_checked
            return f"ok: {self.tree_size} records, {count} {signed}checkpoints match"
        return f"FAILED: {len(self.findings)} problem(s) in a log of {self.tree_size} records"


def _describe(checkpoint: Checkpoint, source: str) -> str:
    return (
        f"{source} checkpoint at tree size {checkpoint.tree_size} "
        f"(issued {format_time(checkpoint.issued_at)})"
    )


@dataclass(slots=True)
class _TreeCheck:
    """Rebuilds the tree from entries in order and collects roots at the wanted sizes."""

    wanted_sizes: frozenset[int]
    keep_nodes: bool
    builder: TreeBuilder = field(default_factory=TreeBuilder)
    roots: dict[int, bytes] = field(default_factory=dict)
    nodes: dict[tuple[int, int], bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if 0 in self.wanted_sizes:
            self.roots[0] = self.builder.root()

    def add(self, hashed: bytes) -> None:
        completed = self.builder.add(hashed)
        if self.keep_nodes:
            for level, index, value in completed:
                if level >= STORED_LEVEL:
                    self.nodes[(level, index)] = value
        if self.builder.size in self.wanted_sizes:
            self.roots[self.builder.size] = self.builder.root()


def _check_checkpoints(
    tree: _TreeCheck,
    tree_size: int,
    stored: Sequence[Checkpoint],
    external: Sequence[Checkpoint],
    public_key: TrustedKeys | None,
    require_coverage: bool,
) -> list[Finding]:
    findings: list[Finding] = []
    labelled = [(c, "stored") for c in stored] + [(c, "published") for c in external]
    stored_keys = {(c.tree_size, c.root, c.issued_at) for c in stored}
    covered = 0
    for checkpoint, source in labelled:
        where = _describe(checkpoint, source)
        if public_key is not None and not checkpoint.verify(public_key):
            findings.append(Finding(where, "signature does not verify with the audit key"))
            continue
        if checkpoint.tree_size > tree_size:
            findings.append(
                Finding(
                    where,
                    f"the log has only {tree_size} records: records {tree_size}.."
                    f"{checkpoint.tree_size - 1} were removed or the database was rolled back",
                )
            )
            continue
        if tree.roots.get(checkpoint.tree_size) != checkpoint.root:
            earlier = [
                c.tree_size
                for c, _ in labelled
                if c.tree_size < checkpoint.tree_size
                and tree.roots.get(c.tree_size) == c.root
                and (public_key is None or c.verify(public_key))
            ]
            start = max(earlier, default=0)
            findings.append(
                Finding(
                    where,
                    f"root differs from the records: a change among records "
                    f"{start}..{checkpoint.tree_size - 1}",
                )
            )
        else:
            covered = max(covered, checkpoint.tree_size)
        if (
            source == "published"
            and (checkpoint.tree_size, checkpoint.root, checkpoint.issued_at) not in stored_keys
        ):
            findings.append(Finding(where, "published but missing from the store"))
    by_time = sorted(stored, key=lambda c: c.issued_at)
    for earlier_cp, later_cp in itertools.pairwise(by_time):
        if later_cp.tree_size < earlier_cp.tree_size:
            findings.append(
                Finding(
                    _describe(later_cp, "stored"),
                    f"smaller than the earlier checkpoint at size {earlier_cp.tree_size}",
                )
            )
    if require_coverage and covered < tree_size:
        findings.append(
            Finding(
                f"records {covered}..{tree_size - 1}",
                "not covered by any signed checkpoint (run `sigex audit checkpoint`)",
            )
        )
    return findings


def verify_store(
    store: AccessLogStore,
    *,
    public_key: TrustedKeys | None,
    external_checkpoints: Sequence[Checkpoint] = (),
    require_coverage: bool = True,
    allow_empty: bool = False,
) -> VerificationReport:
    """Check the whole store against itself and against its (and published) checkpoints.

    An empty log is a finding unless ``allow_empty``: a log emptied, replaced by a new file or
    pointed at the wrong database must not pass as "ok: 0 records".
    """
    findings: list[Finding] = []
    with store.backend.snapshot():
        stored_checkpoints = store.checkpoints()
        sizes = frozenset(c.tree_size for c in (*stored_checkpoints, *external_checkpoints))
        tree = _TreeCheck(wanted_sizes=sizes, keep_nodes=True)
        seen_keys: set[int] = set()
        expected = 0
        columns_of = operator.itemgetter(*_CHECKED_COLUMNS)
        for row in store.raw_leaf_rows():
            leaf_index, columns, entry = int(row[0]), tuple(row[1:-2]), row[-2]
            if type(entry) is not bytes:
                entry = stored_bytes(entry, f"record {leaf_index}: entry")
            if leaf_index != expected:
                findings.append(_gap(expected, leaf_index))
            expected = leaf_index + 1
            hashed = leaf_hash(entry)
            if hashed != stored_bytes(row[-1], f"record {leaf_index}: leaf_hash"):
                findings.append(
                    Finding(f"record {leaf_index}", "entry does not match its stored leaf hash")
                )
            values = _entry_values(entry)
            if values is None:
                findings.append(Finding(f"record {leaf_index}", "entry is not an access record"))
            else:
                if columns_of(values) != columns:
                    findings.append(_changed_columns(leaf_index, columns, columns_of(values)))
                key_hash = hash((values["trace_id"], values["operation_id"]))
                if key_hash in seen_keys:
                    findings.append(
                        Finding(
                            f"record {leaf_index}",
                            "a second record with the same trace/operation id",
                        )
                    )
                seen_keys.add(key_hash)
            tree.add(hashed)
        tree_size = tree.builder.size
        if tree_size == 0 and not allow_empty:
            findings.append(
                Finding(
                    "the log",
                    "has no records (emptied, replaced, or the wrong database?); "
                    "use --allow-empty if none are expected",
                )
            )
        findings += _check_nodes(tree.nodes, store)
        findings += _check_checkpoints(
            tree,
            tree_size,
            stored_checkpoints,
            external_checkpoints,
            public_key,
            require_coverage,
        )
    return VerificationReport(
        tree_size=tree_size,
        checkpoints_checked=len(stored_checkpoints) + len(external_checkpoints),
        signatures_checked=public_key is not None,
        findings=tuple(findings),
    )


def _gap(expected: int, found: int) -> Finding:
    if found > expected:
        where = (
            f"record {expected}" if found == expected + 1 else f"records {expected}..{found - 1}"
        )
        return Finding(where, "missing (deleted, or leaf indexes changed)")
    return Finding(f"record {found}", "leaf index out of order")


def _changed_columns(
    leaf_index: int, stored: tuple[Any, ...], from_entry: tuple[Any, ...]
) -> Finding:
    changed = [
        name
        for name, have, want in zip(_CHECKED_COLUMNS, stored, from_entry, strict=True)
        if have != want
    ]
    return Finding(f"record {leaf_index}", f"column(s) {', '.join(changed)} differ from the entry")


def _entry_values(entry: bytes) -> dict[str, Any] | None:
    """The entry's JSON object when it has exactly the record's keys; None otherwise.

    The full record checks ran when the record was indexed; here it is enough to
    see that the query columns say what the entry says (the hashes and the
    signed checkpoints cover the entry itself). This keeps verify near 15 us a row.
    """
    try:
        values = json.loads(entry)
    except ValueError:
        return None
    if not isinstance(values, dict) or values.keys() != RECORD_KEYS:
        return None
    return values


def _node_range(level: int, index: int) -> str:
    return f"records {index << level}..{((index + 1) << level) - 1}"


def _check_nodes(computed: dict[tuple[int, int], bytes], store: AccessLogStore) -> list[Finding]:
    differing: set[tuple[int, int]] = set()
    seen: set[tuple[int, int]] = set()
    for level, index, value in store.stored_nodes():
        seen.add((level, index))
        if computed.get((level, index)) != value:
            differing.add((level, index))
    differing |= set(computed) - seen
    findings: list[Finding] = []
    for level, index in sorted(differing):
        children = {(level - 1, 2 * index), (level - 1, 2 * index + 1)}
        if children & differing:
            continue  # a smaller subtree already says where
        what = (
            "stored subtree hash differs from the records (rows changed, reordered or replaced)"
            if (level, index) in seen
            else "stored subtree hash is missing or extra"
        )
        findings.append(Finding(_node_range(level, index), what))
    return findings


def verify_record(
    store: AccessLogStore,
    leaf_index: int,
    checkpoint: Checkpoint,
    public_key: TrustedKeys | None,
) -> list[Finding]:
    """Check one record by its inclusion proof against a checkpoint (signed by ``public_key``)."""
    where = f"record {leaf_index}"
    if public_key is not None and not checkpoint.verify(public_key):
        return [Finding(_describe(checkpoint, "given"), "signature does not verify")]
    if leaf_index >= checkpoint.tree_size:
        return [Finding(where, f"not covered by the checkpoint at size {checkpoint.tree_size}")]
    try:
        entry = store.entry(leaf_index)
        path = store.inclusion_proof(leaf_index, checkpoint.tree_size)
    except AccessLogError as error:
        return [Finding(where, str(error))]
    if not verify_inclusion(
        leaf_hash(entry), leaf_index, checkpoint.tree_size, path, checkpoint.root
    ):
        return [Finding(where, "inclusion proof does not lead to the checkpoint's root")]
    return []


# -- export and offline verification ---------------------------------------------------------


def export_log(
    store: AccessLogStore,
    destination: Path,
    *,
    public_key: TrustedKeys | None,
    record_filter: RecordFilter | None = None,
) -> int:
    """Write an export (JSON lines) that can be verified without the database.

    Without a filter the export holds every record and checkpoint; with one it
    holds the matching records, each with an inclusion proof to the latest
    checkpoint. Returns the number of records written.
    """
    latest = store.latest_checkpoint()
    count = 0
    with Path(destination).open("w", encoding="utf-8") as out:
        header: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "public_keys": [public_key_pem(k).decode("ascii") for k in _as_list(public_key)],
            "complete": record_filter is None,
        }
        out.write(json.dumps(header, sort_keys=True) + "\n")
        for checkpoint in store.checkpoints():
            out.write(json.dumps({"checkpoint": checkpoint.to_dict()}, sort_keys=True) + "\n")
        if record_filter is None:
            for row in store.leaf_rows():
                line = {"leaf_index": row.leaf_index, "entry": _b64(row.entry)}
                out.write(json.dumps(line, sort_keys=True) + "\n")
                count += 1
            return count
        for stored in store.query_all(record_filter):
            line = {"leaf_index": stored.leaf_index, "entry": _b64(stored.record.to_bytes())}
            if latest is not None and stored.leaf_index < latest.tree_size:
                line["tree_size"] = latest.tree_size
                line["proof"] = [
                    p.hex() for p in store.inclusion_proof(stored.leaf_index, latest.tree_size)
                ]
            out.write(json.dumps(line, sort_keys=True) + "\n")
            count += 1
    return count


def _as_list(keys: TrustedKeys | None) -> list[Ed25519PublicKey]:
    if keys is None:
        return []
    return [keys] if isinstance(keys, Ed25519PublicKey) else list(keys)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def verify_export(
    source: Path,
    *,
    public_key: TrustedKeys | None,
    external_checkpoints: Iterable[Checkpoint] = (),
) -> VerificationReport:
    """Verify an export offline: a complete one entirely, a filtered one record by record."""
    lines = Path(source).read_text(encoding="utf-8").splitlines()
    if not lines:
        raise ExportFormatError("export: empty file")
    try:
        header = json.loads(lines[0])
        if header.get("format") != EXPORT_FORMAT:
            raise ExportFormatError("export: unknown format")
        if public_key is None and header.get("public_keys"):
            public_key = [load_public_key(str(k).encode("ascii")) for k in header["public_keys"]]
        checkpoints: list[Checkpoint] = []
        records: list[dict[str, Any]] = []
        for line in lines[1:]:
            item = json.loads(line)
            if "checkpoint" in item:
                checkpoints.append(Checkpoint.from_dict(item["checkpoint"]))
            else:
                records.append(item)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ExportFormatError("export: malformed line") from None
    external = list(external_checkpoints)
    if header.get("complete"):
        return _verify_complete_export(records, checkpoints, external, public_key)
    return _verify_partial_export(records, [*checkpoints, *external], public_key)


def _verify_complete_export(
    records: list[dict[str, Any]],
    checkpoints: list[Checkpoint],
    external: list[Checkpoint],
    public_key: TrustedKeys | None,
) -> VerificationReport:
    findings: list[Finding] = []
    sizes = frozenset(c.tree_size for c in (*checkpoints, *external))
    tree = _TreeCheck(wanted_sizes=sizes, keep_nodes=False)
    for position, item in enumerate(records):
        index = int(item["leaf_index"])
        if index != position:
            findings.append(Finding(f"record {position}", f"export line names leaf {index}"))
        entry = base64.b64decode(item["entry"])
        try:
            AccessRecord.from_bytes(entry)
        except RecordFormatError as error:
            findings.append(Finding(f"record {index}", f"entry is not a valid record ({error})"))
        tree.add(leaf_hash(entry))
    findings += _check_checkpoints(
        tree, tree.builder.size, checkpoints, external, public_key, require_coverage=True
    )
    return VerificationReport(
        tree_size=tree.builder.size,
        checkpoints_checked=len(checkpoints) + len(external),
        signatures_checked=public_key is not None,
        findings=tuple(findings),
    )


def _verify_partial_export(
    records: list[dict[str, Any]],
    checkpoints: list[Checkpoint],
    public_key: TrustedKeys | None,
) -> VerificationReport:
    findings: list[Finding] = []
    by_size: dict[int, list[Checkpoint]] = {}
    for checkpoint in checkpoints:
        if public_key is not None and not checkpoint.verify(public_key):
            findings.append(Finding(_describe(checkpoint, "exported"), "signature does not verify"))
            continue
        by_size.setdefault(checkpoint.tree_size, []).append(checkpoint)
    for item in records:
        index = int(item["leaf_index"])
        where = f"record {index}"
        entry = base64.b64decode(item["entry"])
        try:
            AccessRecord.from_bytes(entry)
        except RecordFormatError as error:
            findings.append(Finding(where, f"entry is not a valid record ({error})"))
            continue
        if "proof" not in item:
            findings.append(Finding(where, "no inclusion proof (not covered by a checkpoint)"))
            continue
        size = int(item["tree_size"])
        path = [bytes.fromhex(p) for p in item["proof"]]
        roots = [c.root for c in by_size.get(size, [])]
        if not roots:
            findings.append(Finding(where, f"no valid checkpoint at tree size {size}"))
        elif not any(verify_inclusion(leaf_hash(entry), index, size, path, r) for r in roots):
            findings.append(
                Finding(where, "inclusion proof does not lead to the checkpoint's root")
            )
    return VerificationReport(
        tree_size=max((int(item.get("tree_size", 0)) for item in records), default=0),
        checkpoints_checked=len(checkpoints),
        signatures_checked=public_key is not None,
        findings=tuple(findings),
    )
