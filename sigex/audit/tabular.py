"""Access records as table rows, for the command line's table and CSV and the console's export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from sigex.audit.store import StoredRecord
from sigex.exchange.access_record import format_time

TABLE_COLUMNS = (
    "leaf_index",
    "occurred_at",
    "kind",
    "sender",
    "recipient",
    "signal",
    "purpose",
    "legal_basis",
    "agreement",
    "outcome",
    "reason_codes",
    "disclosed_fields",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def table_row(stored: StoredRecord) -> dict[str, str]:
    record = stored.record
    agreement = f"{record.agreement_id}@{record.agreement_version}" if record.agreement_id else ""
    return {
        "leaf_index": str(stored.leaf_index),
        "occurred_at": format_time(record.occurred_at)[:19],
        "kind": record.kind.value,
        "sender": record.sender,
        "recipient": record.recipient or "",
        "signal": record.signal,
        "purpose": record.purpose,
        "legal_basis": record.legal_basis or "",
        "agreement": agreement,
        "outcome": record.outcome.value,
        "reason_codes": " ".join(record.reason_codes),
        "disclosed_fields": " ".join(record.disclosed_fields),
    }


def _spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP's CSV injection advice)."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def csv_text(records: Iterable[StoredRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for stored in records:
        writer.writerow({k: _spreadsheet_safe(v) for k, v in table_row(stored).items()})
    return buffer.getvalue()
