"""The access record: one per decision per data subject, and its canonical bytes.

``AccessRecord.to_bytes()`` is what travels on the ``sigex.audit`` and
``sigex.receipts`` topics and what a Merkle leaf hashes: a JSON object with
sorted keys, no insignificant whitespace, UTF-8, integers as JSON numbers,
absent values as ``null``, tuples as arrays, the time as
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC, always six fraction digits) and a format
version ``"v": 1``. ``from_bytes`` accepts only that exact form (it re-encodes
and compares), so one record has exactly one leaf hash.

The data subject appears only as a keyed pseudonym (64 lowercase hex
characters, see :mod:`sigex.exchange.pseudonyms`); disclosed fields appear by
name, never by value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sigex.canonical import canonical_json
from sigex.exchange.errors import RecordFormatError

FORMAT_VERSION = 1

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_OPERATION_ID = re.compile(r"^[0-9a-f]{16}$")
_PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")
_PARTY = re.compile(r"^[A-Z][A-Z0-9_]{0,31}$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,127}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$", re.ASCII)


class EventKind(Enum):
    """What happened to one signal about one data subject."""

    PUBLISHED = "PUBLISHED"
    REFUSED_AT_PUBLISH = "REFUSED_AT_PUBLISH"
    DELIVERED = "DELIVERED"
    REFUSED_FOR_RECIPIENT = "REFUSED_FOR_RECIPIENT"
    DEAD_LETTERED = "DEAD_LETTERED"
    RECEIVED = "RECEIVED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    #: An auditor looked at the log in the auditor's console (written by the audit service
    #: itself). ``sender`` is the auditor, ``signal`` the console view, ``reason_codes`` name
    #: the filters used (never their values) and ``subject`` is the person looked up, or
    #: :data:`NO_SUBJECT` when the query named nobody.
    CONSULTED = "CONSULTED"


#: The subject of a record about no person (an auditor's query that named nobody); no keyed
#: pseudonym is all zeros.
NO_SUBJECT = "0" * 64


class Outcome(Enum):
    """The decision: a deny is a valid outcome, not an error."""

    PERMIT = "PERMIT"
    DENY = "DENY"
    ERROR = "ERROR"


_MUST_PERMIT = frozenset({EventKind.PUBLISHED, EventKind.DELIVERED})
_MUST_DENY = frozenset({EventKind.REFUSED_AT_PUBLISH, EventKind.REFUSED_FOR_RECIPIENT})
#: The fields of a record that the store keeps as columns of their own (to query by), in
#: column order; the rest (``v``, ``reason_codes``, ``disclosed_fields``) live only in the
#: record's canonical bytes. The store's columns are built from this one list.
INDEXED_FIELDS: tuple[str, ...] = (
    "trace_id",
    "operation_id",
    "occurred_at",
    "kind",
    "sender",
    "recipient",
    "signal",
    "purpose",
    "legal_basis",
    "agreement_id",
    "agreement_version",
    "policy_version",
    "outcome",
    "message_id",
    "subject",
)
RECORD_KEYS = frozenset({"v", *INDEXED_FIELDS, "reason_codes", "disclosed_fields"})


def format_time(moment: datetime) -> str:
    """The canonical text of a time: UTC, microseconds, a trailing Z."""
    if moment.tzinfo is None:
        raise RecordFormatError("field 'occurred_at': time must be timezone-aware")
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return f"{utc.isoformat(timespec='microseconds')}Z"


def parse_time(text: str, field: str = "occurred_at") -> datetime:
    """Parse the canonical text of a time; any other form is refused."""
    if _TIME.fullmatch(text) is None:
        raise RecordFormatError(
            f"field {field!r}: not a time of the form YYYY-MM-DDTHH:MM:SS.ffffffZ"
        )
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError:
        raise RecordFormatError(f"field {field!r}: not a valid date and time") from None


def _check(pattern: re.Pattern[str], value: object, field: str, rule: str) -> None:
    # fullmatch: with match, "$" also matches before a final newline ("GM0363\n")
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise RecordFormatError(f"field {field!r}: {rule}")


def _check_optional(pattern: re.Pattern[str], value: object, field: str, rule: str) -> None:
    if value is not None:
        _check(pattern, value, field, rule)


#: The few-valued part of records already found valid (kind, outcome, parties, signal,
#: purpose, basis, agreement, policy version, reason codes, field names): nearly every
#: record repeats one of a handful, so each combination is checked once. Bounded, so that
#: a stream of odd values cannot grow it; a combination not in it is simply checked.
_VALID_SHARED: set[tuple[object, ...]] = set()
_VALID_SHARED_LIMIT = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessRecord:
    """One decision about one data subject, as the access log keeps it.

    ``recipient`` is None for events at the sender's side (published, refused at
    publish); ``legal_basis`` and the agreement are None when no agreement
    matched. ``subject`` is the keyed pseudonym of the data subject.
    """

    trace_id: str
    operation_id: str
    occurred_at: datetime
    kind: EventKind
    sender: str
    recipient: str | None
    signal: str
    purpose: str
    legal_basis: str | None
    agreement_id: str | None
    agreement_version: int | None
    policy_version: str
    outcome: Outcome
    reason_codes: tuple[str, ...]
    disclosed_fields: tuple[str, ...]
    message_id: str
    subject: str

    def __post_init__(self) -> None:
        self._check_own_identifiers()
        shared = self._shared()
        if shared is None or shared not in _VALID_SHARED:
            self._check_identifiers()
            self._check_lists()
            self._check_decision()
            if shared is not None and len(_VALID_SHARED) < _VALID_SHARED_LIMIT:
                _VALID_SHARED.add(shared)

    def _shared(self) -> tuple[object, ...] | None:
        """The few-valued fields as a cache key, or None when they cannot be one.

        Types are part of the key where equality would hide them (``True == 1``).
        """
        if type(self.reason_codes) is not tuple or type(self.disclosed_fields) is not tuple:
            return None
        shared = (
            self.kind,
            self.outcome,
            self.sender,
            self.recipient,
            self.signal,
            self.purpose,
            self.legal_basis,
            self.agreement_id,
            type(self.agreement_version),
            self.agreement_version,
            self.policy_version,
            self.reason_codes,
            self.disclosed_fields,
        )
        try:
            hash(shared)
        except TypeError:
            return None
        return shared

    def _check_own_identifiers(self) -> None:
        """The fields every record has its own value of."""
        _check(_TRACE_ID, self.trace_id, "trace_id", "must be 32 lowercase hex characters")
        if self.trace_id == "0" * 32:
            raise RecordFormatError("field 'trace_id': must not be all zeros")
        _check(
            _OPERATION_ID, self.operation_id, "operation_id", "must be 16 lowercase hex characters"
        )
        if not isinstance(self.occurred_at, datetime) or self.occurred_at.tzinfo is None:
            raise RecordFormatError("field 'occurred_at': must be a timezone-aware datetime")
        _check(_CODE, self.message_id, "message_id", "must be a message id")
        _check(_PSEUDONYM, self.subject, "subject", "must be a keyed pseudonym (64 hex)")

    def _check_identifiers(self) -> None:
        _check(_PARTY, self.sender, "sender", "must be a party code")
        _check_optional(_PARTY, self.recipient, "recipient", "must be a party code")
        _check(_CODE, self.signal, "signal", "must be a signal name")
        _check(_CODE, self.purpose, "purpose", "must be a purpose code")
        _check_optional(_CODE, self.legal_basis, "legal_basis", "must be a legal basis code")
        _check_optional(_CODE, self.agreement_id, "agreement_id", "must be an agreement id")
        if self.agreement_version is not None and (
            isinstance(self.agreement_version, bool)
            or not isinstance(self.agreement_version, int)
            or self.agreement_version < 0
        ):
            raise RecordFormatError("field 'agreement_version': must be a non-negative integer")
        if (self.agreement_id is None) != (self.agreement_version is None):
            raise RecordFormatError(
                "fields 'agreement_id' and 'agreement_version': both or neither"
            )
        _check(_CODE, self.policy_version, "policy_version", "must be a version code")

    def _check_lists(self) -> None:
        if not isinstance(self.reason_codes, tuple):
            raise RecordFormatError("field 'reason_codes': must be a tuple")
        for code in self.reason_codes:
            _check(_CODE, code, "reason_codes", "each must be a reason code")
        if not isinstance(self.disclosed_fields, tuple):
            raise RecordFormatError("field 'disclosed_fields': must be a tuple")
        for name in self.disclosed_fields:
            _check(_FIELD_NAME, name, "disclosed_fields", "each must be a field name")

    def _check_decision(self) -> None:
        if not isinstance(self.kind, EventKind):
            raise RecordFormatError("field 'kind': must be an EventKind")
        if not isinstance(self.outcome, Outcome):
            raise RecordFormatError("field 'outcome': must be an Outcome")
        if self.kind in _MUST_PERMIT and self.outcome is not Outcome.PERMIT:
            raise RecordFormatError(f"field 'outcome': a {self.kind.value} event must be PERMIT")
        if self.kind in _MUST_DENY and self.outcome is not Outcome.DENY:
            raise RecordFormatError(f"field 'outcome': a {self.kind.value} event must be DENY")
        if self.kind is EventKind.DELIVERED and self.recipient is None:
            raise RecordFormatError("field 'recipient': a DELIVERED event needs a recipient")
        if self.outcome is not Outcome.PERMIT and self.disclosed_fields:
            raise RecordFormatError(
                "field 'disclosed_fields': nothing is disclosed unless the outcome is PERMIT"
            )

    @property
    def key(self) -> tuple[str, str]:
        """The idempotency key: (trace id, operation id)."""
        return (self.trace_id, self.operation_id)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON values, keys as in the canonical form."""
        return {
            "v": FORMAT_VERSION,
            "trace_id": self.trace_id,
            "operation_id": self.operation_id,
            "occurred_at": format_time(self.occurred_at),
            "kind": self.kind.value,
            "sender": self.sender,
            "recipient": self.recipient,
            "signal": self.signal,
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "agreement_id": self.agreement_id,
            "agreement_version": self.agreement_version,
            "policy_version": self.policy_version,
            "outcome": self.outcome.value,
            "reason_codes": list(self.reason_codes),
            "disclosed_fields": list(self.disclosed_fields),
            "message_id": self.message_id,
            "subject": self.subject,
        }

    def to_bytes(self) -> bytes:
        """Canonical JSON: sorted keys, compact separators, UTF-8.

        Written from a template rather than through the JSON encoder: every text field
        of a valid record matches a pattern without quotes, backslashes or control
        characters, so no value needs escaping. A test holds this to
        ``canonical_json(self.to_dict())`` byte for byte.
        """
        return (
            f'{{"agreement_id":{_text(self.agreement_id)},'
            f'"agreement_version":{_number(self.agreement_version)},'
            f'"disclosed_fields":{_texts(self.disclosed_fields)},'
            f'"kind":"{self.kind.value}",'
            f'"legal_basis":{_text(self.legal_basis)},'
            f'"message_id":"{self.message_id}",'
            f'"occurred_at":"{format_time(self.occurred_at)}",'
            f'"operation_id":"{self.operation_id}",'
            f'"outcome":"{self.outcome.value}",'
            f'"policy_version":"{self.policy_version}",'
            f'"purpose":"{self.purpose}",'
            f'"reason_codes":{_texts(self.reason_codes)},'
            f'"recipient":{_text(self.recipient)},'
            f'"sender":"{self.sender}",'
            f'"signal":"{self.signal}",'
            f'"subject":"{self.subject}",'
            f'"trace_id":"{self.trace_id}",'
            f'"v":{FORMAT_VERSION}}}'
        ).encode("ascii")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AccessRecord:
        keys = frozenset(values)
        if keys != RECORD_KEYS:
            missing = sorted(RECORD_KEYS - keys)
            unknown = sorted(keys - RECORD_KEYS)
            raise RecordFormatError(f"record keys: missing {missing}, unknown {unknown}")
        if values["v"] != FORMAT_VERSION:
            raise RecordFormatError("field 'v': unsupported record format version")
        occurred_at = values["occurred_at"]
        if not isinstance(occurred_at, str):
            raise RecordFormatError("field 'occurred_at': must be a string")
        reason_codes = values["reason_codes"]
        disclosed = values["disclosed_fields"]
        if not isinstance(reason_codes, list) or not isinstance(disclosed, list):
            raise RecordFormatError("fields 'reason_codes', 'disclosed_fields': must be arrays")
        try:
            kind = EventKind(values["kind"])
            outcome = Outcome(values["outcome"])
        except ValueError:
            raise RecordFormatError("field 'kind' or 'outcome': unknown value") from None
        return cls(
            trace_id=values["trace_id"],
            operation_id=values["operation_id"],
            occurred_at=parse_time(occurred_at),
            kind=kind,
            sender=values["sender"],
            recipient=values["recipient"],
            signal=values["signal"],
            purpose=values["purpose"],
            legal_basis=values["legal_basis"],
            agreement_id=values["agreement_id"],
            agreement_version=values["agreement_version"],
            policy_version=values["policy_version"],
            outcome=outcome,
            reason_codes=tuple(reason_codes),
            disclosed_fields=tuple(disclosed),
            message_id=values["message_id"],
            subject=values["subject"],
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> AccessRecord:
        """Parse canonical bytes; anything not in canonical form is refused."""
        try:
            values = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise RecordFormatError("record bytes: not UTF-8 JSON") from None
        if not isinstance(values, dict):
            raise RecordFormatError("record bytes: not a JSON object")
        record = cls.from_dict(values)
        if _encode(values) != data:
            raise RecordFormatError("record bytes: not in canonical form")
        return record


def _text(value: str | None) -> str:
    return "null" if value is None else f'"{value}"'


def _number(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def _texts(values: tuple[str, ...]) -> str:
    return "[" + ",".join(f'"{value}"' for value in values) + "]"


def _encode(values: dict[str, Any]) -> bytes:
    return canonical_json(values)
