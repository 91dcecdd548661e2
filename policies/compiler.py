"""The policy compiler: load every policy file at once, report every problem, build the index.

:func:`check_policy` returns every problem it finds, each with its file and
line; :func:`load_policy` returns a :class:`CompiledPolicy` or raises
:class:`PolicyInvalid` listing them. The files are described in ``docs/policy.md``.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from sigex.errors import InvalidIdentifier
from sigex.identifiers import check_oin
from sigex.policies.compiled import CompiledPolicy, RouteEntry, RouteKey, window_moments
from sigex.policies.decide import refusal_for, time_reasons
from sigex.policies.decision import Allowed, Decision, Reason
from sigex.policies.errors import PolicyInvalid, PolicyProblem
from sigex.policies.model import (
    Agreement,
    BasisStatus,
    Classification,
    Cooperation,
    LegalBasis,
    Party,
    Purpose,
    RecipientRule,
    Window,
)
from sigex.policies.source import LineDict, LineList, load_yaml
from sigex.reasons import ReasonCode
from sigex.schemas.catalogue import Catalogue, load_catalogue
from sigex.schemas.errors import SchemaError

POLICY_DIRECTORY = Path(__file__).resolve().parent

POLICY_FILE = "policy.yaml"
PARTIES_FILE = "parties.yaml"
CLASSIFICATIONS_FILE = "classifications.yaml"
LEGAL_BASES_FILE = "legal_bases.yaml"
PURPOSES_FILE = "purposes.yaml"
COOPERATIONS_FILE = "cooperations.yaml"
AGREEMENTS_DIRECTORY = "agreements"


@dataclass
class _Vocabulary:
    parties: dict[str, Party] = field(default_factory=dict)
    classifications: dict[str, Classification] = field(default_factory=dict)
    legal_bases: dict[str, LegalBasis] = field(default_factory=dict)
    purposes: dict[str, Purpose] = field(default_factory=dict)
    cooperations: dict[str, Cooperation] = field(default_factory=dict)

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(party.kind for party in self.parties.values())

    def of_kind(self, kind: str) -> frozenset[str]:
        return frozenset(code for code, party in self.parties.items() if party.kind == kind)


class _Reader:
    """Reads the files and collects problems; every helper reports instead of raising."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[PolicyProblem] = []

    def problem(self, file: str, line: int, message: str) -> None:
        self.problems.append(PolicyProblem(file, line, message))

    def read(self, relative: str) -> Any:
        path = self.root / relative
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            self.problem(relative, 0, "file is missing or unreadable")
            return None
        try:
            return load_yaml(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 0
            self.problem(relative, line, f"not valid YAML: {getattr(error, 'problem', error)}")
            return None

    def entries(self, document: Any, file: str, list_key: str) -> list[LineDict]:
        if document is None:
            return []
        if not isinstance(document, LineDict) or not isinstance(document.get(list_key), LineList):
            line = document.line if isinstance(document, LineDict) else 1
            self.problem(file, line, f"expected a mapping with a list {list_key!r}")
            return []
        self.duplicates(document, file)
        items: LineList = document[list_key]
        found: list[LineDict] = []
        for item, line in zip(items, items.item_lines, strict=True):
            if isinstance(item, LineDict):
                self.duplicates(item, file)
                found.append(item)
            else:
                self.problem(file, line, f"each entry of {list_key!r} must be a mapping")
        return found

    def duplicates(self, entry: LineDict, file: str) -> None:
        for key, line in entry.duplicate_keys:
            self.problem(file, line, f"key {key!r} appears twice")

    def keys(
        self, entry: LineDict, file: str, required: Iterable[str], optional: Iterable[str]
    ) -> bool:
        required = tuple(required)
        allowed = set(required) | set(optional)
        good = True
        for key in entry:
            if key not in allowed:
                self.problem(file, entry.line_of(key), f"unknown key {key!r}")
        for key in required:
            if key not in entry:
                self.problem(file, entry.line, f"missing key {key!r}")
                good = False
        return good

    def text(self, entry: LineDict, file: str, key: str, default: str = "") -> str:
        value = entry.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            self.problem(file, entry.line_of(key), f"{key!r} must be a non-empty text")
            return default
        return value

    def day(self, entry: LineDict, file: str, key: str) -> tuple[date | None, bool]:
        value = entry.get(key)
        if value is None:
            return None, True
        if isinstance(value, date):
            return value, True
        if isinstance(value, str):
            try:
                return date.fromisoformat(value), True
            except ValueError:
                pass
        self.problem(file, entry.line_of(key), f"{key!r} must be a date (YYYY-MM-DD)")
        return None, False

    def window(self, entry: LineDict, file: str, *, start_required: bool = False) -> Window | None:
        start, start_ok = self.day(entry, file, "valid_from")
        end, end_ok = self.day(entry, file, "valid_until")
        if not (start_ok and end_ok):
            return None
        if start_required and start is None:
            self.problem(file, entry.line_of("valid_from"), "'valid_from' is required")
            return None
        if start is not None and end is not None and end < start:
            self.problem(file, entry.line_of("valid_until"), "'valid_until' is before 'valid_from'")
            return None
        return Window(start, end)

    def codes(self, entry: LineDict, file: str, key: str) -> list[tuple[str, int]]:
        """A list of text codes with the line of each; a problem for anything else."""
        value = entry.get(key)
        if value is None:
            return []
        if not isinstance(value, LineList):
            self.problem(file, entry.line_of(key), f"{key!r} must be a list")
            return []
        found: list[tuple[str, int]] = []
        seen: set[str] = set()
        for item, line in zip(value, value.item_lines, strict=True):
            if not isinstance(item, str) or not item:
                self.problem(file, line, f"each item of {key!r} must be a text code")
            elif item in seen:
                self.problem(file, line, f"{item!r} appears twice in {key!r}")
            else:
                seen.add(item)
                found.append((item, line))
        return found

    def positive_int(self, entry: LineDict, file: str, key: str) -> int | None:
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.problem(file, entry.line_of(key), f"{key!r} must be a positive whole number")
            return None
        return value


def _unique(reader: _Reader, seen: dict[str, Any], code: str, file: str, line: int) -> bool:
    if code in seen:
        reader.problem(file, line, f"code {code!r} is defined twice")
        return False
    return True


def _read_settings(reader: _Reader) -> tuple[str, str]:
    document = reader.read(POLICY_FILE)
    if document is None:
        return "unknown", "Europe/Amsterdam"
    if not isinstance(document, LineDict):
        reader.problem(POLICY_FILE, 1, "expected a mapping with 'version' and 'timezone'")
        return "unknown", "Europe/Amsterdam"
    reader.keys(document, POLICY_FILE, ("version", "timezone"), ())
    version = document.get("version")
    if not isinstance(version, str) or not version:
        reader.problem(POLICY_FILE, document.line_of("version"), "'version' must be a text")
        version = "unknown"
    zone = reader.text(document, POLICY_FILE, "timezone", "Europe/Amsterdam")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        reader.problem(POLICY_FILE, document.line_of("timezone"), f"unknown time zone {zone!r}")
        zone = "Europe/Amsterdam"
    return version, zone


def _read_parties(reader: _Reader, vocabulary: _Vocabulary) -> None:
    file = PARTIES_FILE
    for entry in reader.entries(reader.read(file), file, "parties"):
        if not reader.keys(entry, file, ("code", "name", "oin", "kind"), ("note",)):
            continue
        code = reader.text(entry, file, "code")
        oin = entry.get("oin")
        try:
            check_oin(str(oin), "oin")
        except InvalidIdentifier as error:
            reader.problem(file, entry.line_of("oin"), f"party {code!r}: {error}")
            continue
        if code and _unique(reader, vocabulary.parties, code, file, entry.line_of("code")):
            vocabulary.parties[code] = Party(
                code=code,
                name=reader.text(entry, file, "name"),
                oin=str(oin),
                kind=reader.text(entry, file, "kind"),
            )


def _read_classifications(reader: _Reader, vocabulary: _Vocabulary) -> None:
    file = CLASSIFICATIONS_FILE
    for entry in reader.entries(reader.read(file), file, "classifications"):
        if not reader.keys(entry, file, ("code", "description"), ("needs_basis_permission",)):
            continue
        code = reader.text(entry, file, "code")
        needs = entry.get("needs_basis_permission", False)
        if not isinstance(needs, bool):
            reader.problem(file, entry.line_of("needs_basis_permission"), "must be true or false")
            needs = True
        if code and _unique(reader, vocabulary.classifications, code, file, entry.line):
            vocabulary.classifications[code] = Classification(
                code, reader.text(entry, file, "description"), needs
            )


def _known(
    reader: _Reader,
    codes: list[tuple[str, int]],
    known: Mapping[str, object],
    what: str,
    file: str,
) -> frozenset[str]:
    good: set[str] = set()
    for code, line in codes:
        if code in known:
            good.add(code)
        else:
            reader.problem(file, line, f"unknown {what} {code!r}")
    return frozenset(good)


def _read_legal_bases(reader: _Reader, vocabulary: _Vocabulary) -> None:
    file = LEGAL_BASES_FILE
    required = ("code", "citation", "status", "valid_from", "valid_until")
    optional = ("summary", "requires_cooperation", "permits", "note")
    for entry in reader.entries(reader.read(file), file, "legal_bases"):
        if not reader.keys(entry, file, required, optional):
            continue
        code = reader.text(entry, file, "code")
        try:
            status = BasisStatus(str(entry.get("status")))
        except ValueError:
            choices = ", ".join(s.value for s in BasisStatus)
            reader.problem(file, entry.line_of("status"), f"'status' must be one of {choices}")
            continue
        window = reader.window(entry, file)
        requires = entry.get("requires_cooperation", False)
        if not isinstance(requires, bool):
            reader.problem(file, entry.line_of("requires_cooperation"), "must be true or false")
            continue
        permits = _known(
            reader,
            reader.codes(entry, file, "permits"),
            vocabulary.classifications,
            "classification",
            file,
        )
        if window is None or not code:
            continue
        if _unique(reader, vocabulary.legal_bases, code, file, entry.line_of("code")):
            vocabulary.legal_bases[code] = LegalBasis(
                code=code,
                citation=reader.text(entry, file, "citation"),
                summary=reader.text(entry, file, "summary"),
                status=status,
                window=window,
                requires_cooperation=requires,
                permits=permits,
                note=reader.text(entry, file, "note"),
            )


def _read_purposes(reader: _Reader, vocabulary: _Vocabulary) -> None:
    file = PURPOSES_FILE
    required = ("code", "description", "legal_bases", "classifications")
    for entry in reader.entries(reader.read(file), file, "purposes"):
        if not reader.keys(entry, file, required, ("note",)):
            continue
        code = reader.text(entry, file, "code")
        bases = _known(
            reader,
            reader.codes(entry, file, "legal_bases"),
            vocabulary.legal_bases,
            "legal basis",
            file,
        )
        classes = _known(
            reader,
            reader.codes(entry, file, "classifications"),
            vocabulary.classifications,
            "classification",
            file,
        )
        if code and _unique(reader, vocabulary.purposes, code, file, entry.line_of("code")):
            vocabulary.purposes[code] = Purpose(
                code, reader.text(entry, file, "description"), bases, classes
            )


def _read_cooperations(reader: _Reader, vocabulary: _Vocabulary) -> None:
    file = COOPERATIONS_FILE
    required = ("code", "name", "legal_basis", "valid_from", "valid_until")
    optional = ("partners", "partner_kinds", "note")
    for entry in reader.entries(reader.read(file), file, "cooperations"):
        if not reader.keys(entry, file, required, optional):
            continue
        code = reader.text(entry, file, "code")
        basis = reader.text(entry, file, "legal_basis")
        if basis not in vocabulary.legal_bases:
            reader.problem(file, entry.line_of("legal_basis"), f"unknown legal basis {basis!r}")
        partners = set(
            _known(reader, reader.codes(entry, file, "partners"), vocabulary.parties, "party", file)
        )
        for kind, line in reader.codes(entry, file, "partner_kinds"):
            if kind not in vocabulary.kinds:
                reader.problem(file, line, f"no party is of kind {kind!r}")
            partners |= vocabulary.of_kind(kind)
        window = reader.window(entry, file)
        if window is None or not code:
            continue
        if _unique(reader, vocabulary.cooperations, code, file, entry.line_of("code")):
            vocabulary.cooperations[code] = Cooperation(
                code, reader.text(entry, file, "name"), basis, frozenset(partners), window
            )


def _check_schema_classifications(
    reader: _Reader, vocabulary: _Vocabulary, catalogue: Catalogue
) -> None:
    for spec in catalogue:
        for name, classification in spec.classifications.items():
            if classification not in vocabulary.classifications:
                reader.problem(
                    f"schemas/{spec.source}",
                    1,
                    f"field {name!r} has unknown classification {classification!r}",
                )


_AGREEMENT_REQUIRED = (
    "id", "version", "sender", "signal", "recipient", "purpose", "legal_basis", "fields",
    "retention_days", "valid_from", "valid_until",
)  # fmt: skip
_AGREEMENT_OPTIONAL = ("cooperation", "note")


@dataclass
class _AgreementDraft:
    """What the compiler has collected about one agreement entry so far."""

    entry: LineDict
    file: str
    ok: bool = True
    sender_codes: frozenset[str] = frozenset()
    sender_kind: str | None = None
    sender_field: str | None = None
    possible_senders: frozenset[str] = frozenset()
    recipient: str | None = None
    rule: RecipientRule | None = None
    possible_recipients: frozenset[str] = frozenset()


class _AgreementCompiler:
    def __init__(self, reader: _Reader, vocabulary: _Vocabulary, catalogue: Catalogue) -> None:
        self.reader = reader
        self.vocabulary = vocabulary
        self.catalogue = catalogue

    def problem(self, draft: _AgreementDraft, key: str | None, message: str) -> None:
        line = draft.entry.line if key is None else draft.entry.line_of(key)
        self.problem_at(draft, line, message)

    def problem_at(self, draft: _AgreementDraft, line: int, message: str) -> None:
        agreement_id = draft.entry.get("id")
        prefix = f"agreement {agreement_id!r}: " if isinstance(agreement_id, str) else ""
        self.reader.problem(draft.file, line, prefix + message)
        draft.ok = False

    def senders(self, draft: _AgreementDraft, signal_fields: frozenset[str] | None) -> None:
        value = draft.entry.get("sender")
        parties = self.vocabulary.parties
        if isinstance(value, str):
            if value not in parties:
                self.problem(draft, "sender", f"unknown party {value!r} as sender")
            draft.sender_codes = frozenset({value})
            draft.possible_senders = draft.sender_codes
        elif isinstance(value, LineList) and value and all(isinstance(v, str) for v in value):
            for code, line in zip(value, value.item_lines, strict=True):
                if code not in parties:
                    self.problem_at(draft, line, f"unknown party {code!r} as sender")
            draft.sender_codes = frozenset(value)
            draft.possible_senders = draft.sender_codes
        elif isinstance(value, LineDict) and set(value) in ({"kind"}, {"kind", "party_in_field"}):
            kind = value["kind"]
            if kind not in self.vocabulary.kinds:
                self.problem(draft, "sender", f"no party is of kind {kind!r}")
            draft.sender_kind = str(kind)
            draft.possible_senders = self.vocabulary.of_kind(str(kind))
            if "party_in_field" in value:
                field_name = str(value["party_in_field"])
                if signal_fields is not None and field_name not in signal_fields:
                    self.problem(
                        draft, "sender", f"sender rule field {field_name!r} is not in the signal"
                    )
                draft.sender_field = field_name
        else:
            self.problem(
                draft,
                "sender",
                "'sender' must be a party code, a list of them, or {kind[, party_in_field]}",
            )

    def recipients(self, draft: _AgreementDraft, signal_fields: frozenset[str] | None) -> None:
        value = draft.entry.get("recipient")
        if isinstance(value, str):
            if value not in self.vocabulary.parties:
                self.problem(draft, "recipient", f"unknown party {value!r} as recipient")
            draft.recipient = value
            draft.possible_recipients = frozenset({value})
        elif isinstance(value, LineDict) and set(value) == {"party_in_field", "kind"}:
            field_name, kind = str(value["party_in_field"]), str(value["kind"])
            if signal_fields is not None and field_name not in signal_fields:
                self.problem(
                    draft, "recipient", f"recipient rule field {field_name!r} is not in the signal"
                )
            if kind not in self.vocabulary.kinds:
                self.problem(draft, "recipient", f"no party is of kind {kind!r}")
            draft.rule = RecipientRule(field_name, kind)
            draft.possible_recipients = self.vocabulary.of_kind(kind)
        else:
            self.problem(
                draft, "recipient", "'recipient' must be a party code or {party_in_field, kind}"
            )
        both = draft.possible_senders & draft.possible_recipients
        if draft.recipient is not None and both:
            self.problem(draft, "recipient", "sender and recipient are the same party")

    def compile(self, entry: LineDict, file: str) -> Agreement | None:
        reader = self.reader
        draft = _AgreementDraft(entry, file)
        if not reader.keys(entry, file, _AGREEMENT_REQUIRED, _AGREEMENT_OPTIONAL):
            return None
        agreement_id = reader.text(entry, file, "id")
        version = reader.positive_int(entry, file, "version")
        retention = reader.positive_int(entry, file, "retention_days")
        window = reader.window(entry, file, start_required=True)
        draft.ok = bool(agreement_id) and None not in (version, retention, window)

        signal = str(entry.get("signal"))
        spec = None
        try:
            spec = self.catalogue.signal(signal)
        except SchemaError:
            self.problem(draft, "signal", f"unknown signal {signal!r}")
        self.senders(draft, spec.field_set if spec is not None else None)
        self.recipients(draft, spec.field_set if spec is not None else None)

        purpose_code = str(entry.get("purpose"))
        purpose = self.vocabulary.purposes.get(purpose_code)
        if purpose is None:
            self.problem(draft, "purpose", f"unknown purpose {purpose_code!r}")
        basis_code = str(entry.get("legal_basis"))
        basis = self.vocabulary.legal_bases.get(basis_code)
        if basis is None:
            self.problem(draft, "legal_basis", f"unknown legal basis {basis_code!r}")
        elif purpose is not None and basis_code not in purpose.legal_bases:
            self.problem(
                draft,
                "legal_basis",
                f"legal basis {basis_code!r} does not support purpose {purpose_code!r}",
            )
        cooperation = self.cooperation(draft, basis)
        fields = self.fields(draft, spec, purpose, basis)
        if not draft.ok or window is None or version is None or retention is None:
            return None
        return Agreement(
            id=agreement_id,
            version=version,
            signal=signal,
            sender_codes=draft.sender_codes,
            sender_kind=draft.sender_kind,
            recipient=draft.recipient,
            recipient_rule=draft.rule,
            purpose=purpose_code,
            legal_basis=basis_code,
            cooperation=cooperation,
            fields=fields,
            retention_days=retention,
            window=window,
            note=reader.text(entry, file, "note"),
            source=file,
            line=entry.line,
            possible_senders=draft.possible_senders,
            possible_recipients=draft.possible_recipients,
            sender_field=draft.sender_field,
        )

    def cooperation(self, draft: _AgreementDraft, basis: LegalBasis | None) -> str | None:
        code = draft.entry.get("cooperation")
        if code is None:
            if basis is not None and basis.requires_cooperation:
                self.problem(
                    draft,
                    None,
                    f"legal basis {basis.code!r} requires a 'cooperation' and none is named",
                )
            return None
        cooperation = self.vocabulary.cooperations.get(str(code))
        if cooperation is None:
            self.problem(draft, "cooperation", f"unknown cooperation {code!r}")
            return None
        if basis is not None and cooperation.legal_basis != basis.code:
            self.problem(
                draft,
                "cooperation",
                f"cooperation {code!r} rests on {cooperation.legal_basis!r}, not {basis.code!r}",
            )
        outsiders = (draft.possible_senders | draft.possible_recipients) - cooperation.partners
        for party in sorted(outsiders):
            self.problem(draft, "cooperation", f"party {party!r} is not a partner of {code!r}")
        return cooperation.code

    def fields(
        self,
        draft: _AgreementDraft,
        spec: Any,
        purpose: Purpose | None,
        basis: LegalBasis | None,
    ) -> frozenset[str]:
        listed = self.reader.codes(draft.entry, draft.file, "fields")
        if not listed:
            self.problem(draft, "fields", "'fields' must list at least one field")
            return frozenset()
        if spec is None:
            return frozenset(name for name, _ in listed)
        for name, line in listed:
            where = f"field {name!r}"
            if name not in spec.classifications:
                self.problem_at(
                    draft,
                    line,
                    f"{where} is not in signal {spec.name!r} version {spec.version}",
                )
                continue
            classification = spec.classifications[name]
            if purpose is not None and classification not in purpose.classifications:
                self.problem_at(
                    draft,
                    line,
                    f"{where} is classified {classification!r}, "
                    f"which purpose {purpose.code!r} does not allow",
                )
            known = self.vocabulary.classifications.get(classification)
            if (
                known is not None
                and known.needs_basis_permission
                and basis is not None
                and classification not in basis.permits
            ):
                self.problem_at(
                    draft,
                    line,
                    f"{where} is classified {classification!r}, "
                    f"which legal basis {basis.code!r} does not permit",
                )
        return frozenset(name for name, _ in listed)


def _route_keys(agreement: Agreement) -> Iterable[RouteKey]:
    for sender in agreement.possible_senders:
        for recipient in agreement.possible_recipients:
            if sender != recipient:
                yield (sender, agreement.signal, recipient, agreement.purpose)


def _check_overlaps(reader: _Reader, agreements: list[Agreement]) -> None:
    """Report each pair of agreements that can apply to the same route on the same day."""
    seen_ids: dict[tuple[str, int], Agreement] = {}
    for agreement in agreements:
        key = (agreement.id, agreement.version)
        if key in seen_ids:
            first = seen_ids[key]
            reader.problem(
                agreement.source,
                agreement.line,
                f"agreement {agreement.id!r} version {agreement.version} is also defined "
                f"at {first.source}:{first.line}",
            )
        else:
            seen_ids[key] = agreement
    by_route: dict[RouteKey, list[Agreement]] = {}
    for agreement in agreements:
        for route in _route_keys(agreement):
            by_route.setdefault(route, []).append(agreement)
    reported: set[tuple[int, int]] = set()
    for route, sharing in by_route.items():
        for first, second in itertools.combinations(sharing, 2):
            pair = (id(first), id(second))
            if pair in reported or not first.window.overlaps(second.window):
                continue
            reported.add(pair)
            same_terms = (
                first.fields == second.fields
                and first.legal_basis == second.legal_basis
                and first.retention_days == second.retention_days
                and first.cooperation == second.cooperation
            )
            verb = "overlaps" if same_terms else "contradicts"
            sender, signal, recipient, purpose = route
            reader.problem(
                second.source,
                second.line,
                f"agreement {second.id!r} {verb} agreement {first.id!r} "
                f"({first.source}:{first.line}) for {sender} -> {recipient}, {signal}, "
                f"purpose {purpose}, on overlapping days",
            )


def _content_hash(root: Path, catalogue: Catalogue | None) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.yaml")):
        digest.update(str(path.relative_to(root).as_posix()).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    if catalogue is not None:
        for spec in catalogue:
            digest.update(f"{spec.name}:{spec.version}:{spec.fingerprint}\0".encode())
    return digest.hexdigest()


def _allowed_decision(
    agreement: Agreement, vocabulary: _Vocabulary, version: str, content_hash: str
) -> Decision:
    basis = vocabulary.legal_bases[agreement.legal_basis]
    inside = f" inside cooperation {agreement.cooperation}" if agreement.cooperation else ""
    text = (
        f"agreement {agreement.id} version {agreement.version} allows "
        f"{agreement.describe_sender()} "
        f"to send {agreement.signal} to {agreement.describe_recipient()} for purpose "
        f"{agreement.purpose} under {basis.code} ({basis.citation}){inside}; "
        f"{len(agreement.fields)} fields, kept {agreement.retention_days} days"
    )
    return Allowed(
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        legal_basis=agreement.legal_basis,
        purpose=agreement.purpose,
        fields=agreement.fields,
        retention_days=agreement.retention_days,
        reasons=(Reason(ReasonCode.ALLOWED.value, text),),
        policy_version=version,
        policy_hash=content_hash,
    )


def _route_entry(
    agreement: Agreement,
    vocabulary: _Vocabulary,
    zone: ZoneInfo,
    allowed: Decision,
    catalogue: Catalogue,
) -> RouteEntry:
    basis = vocabulary.legal_bases[agreement.legal_basis]
    start, end = window_moments(agreement.window, zone)
    basis_start, basis_end = window_moments(basis.window, zone)
    cooperation_start, cooperation_end = start, end
    if agreement.cooperation is not None:
        cooperation_start, cooperation_end = window_moments(
            vocabulary.cooperations[agreement.cooperation].window, zone
        )
    clear_start = max(start, basis_start, cooperation_start)
    clear_end = min(end, basis_end, cooperation_end)
    if not basis.status.usable:
        clear_end = clear_start  # never clear
    spec = catalogue.signal(agreement.signal)
    cooperation = vocabulary.cooperations[agreement.cooperation] if agreement.cooperation else None
    refusals: dict[tuple[bool, bool, bool], Decision] = {}
    for outside_agreement, outside_basis, outside_cooperation in itertools.product(
        (False, True), repeat=3
    ):
        flags = (outside_agreement, outside_basis, outside_cooperation)
        reasons = time_reasons(agreement, basis, cooperation, flags)
        if reasons:
            refusals[flags] = refusal_for(
                agreement.purpose, agreement, reasons, allowed.policy_version, allowed.policy_hash
            )
    return RouteEntry(
        agreement=agreement,
        start=start,
        end=end,
        basis_start=basis_start,
        basis_end=basis_end,
        cooperation_start=cooperation_start,
        cooperation_end=cooperation_end,
        clear_start=clear_start,
        clear_end=clear_end,
        classifications=spec.classifications_of(tuple(agreement.fields)),
        allowed=allowed,
        refusals=MappingProxyType(refusals),
    )


def _compile(
    directory: Path | None, catalogue: Catalogue | None
) -> tuple[list[PolicyProblem], CompiledPolicy | None]:
    root = POLICY_DIRECTORY if directory is None else directory
    reader = _Reader(root)
    if catalogue is None:
        try:
            catalogue = load_catalogue()
        except SchemaError as error:
            reader.problem("schemas", 0, str(error))
            return reader.problems, None
    version, zone_name = _read_settings(reader)
    vocabulary = _Vocabulary()
    _read_parties(reader, vocabulary)
    _read_classifications(reader, vocabulary)
    _read_legal_bases(reader, vocabulary)
    _read_purposes(reader, vocabulary)
    _read_cooperations(reader, vocabulary)
    _check_schema_classifications(reader, vocabulary, catalogue)

    compiler = _AgreementCompiler(reader, vocabulary, catalogue)
    agreements: list[Agreement] = []
    agreement_files = sorted((root / AGREEMENTS_DIRECTORY).glob("*.yaml"))
    if not agreement_files:
        reader.problem(AGREEMENTS_DIRECTORY, 0, "no agreement files (*.yaml) found")
    for path in agreement_files:
        file = f"{AGREEMENTS_DIRECTORY}/{path.name}"
        for entry in reader.entries(reader.read(file), file, "agreements"):
            agreement = compiler.compile(entry, file)
            if agreement is not None:
                agreements.append(agreement)
    _check_overlaps(reader, agreements)
    if reader.problems:
        return reader.problems, None

    content_hash = _content_hash(root, catalogue)
    zone = ZoneInfo(zone_name)
    route_index: dict[RouteKey, list[RouteEntry]] = {}
    by_sender_signal_purpose: dict[tuple[str, str, str], list[Agreement]] = {}
    for agreement in agreements:
        allowed = _allowed_decision(agreement, vocabulary, version, content_hash)
        route_entry = _route_entry(agreement, vocabulary, zone, allowed, catalogue)
        for route in _route_keys(agreement):
            route_index.setdefault(route, []).append(route_entry)
        for sender in agreement.possible_senders:
            key = (sender, agreement.signal, agreement.purpose)
            by_sender_signal_purpose.setdefault(key, []).append(agreement)
    alternatives: dict[tuple[str, str, str, str], set[str]] = {}
    for sender, signal, recipient, purpose in route_index:
        alternatives.setdefault(("sender", signal, recipient, purpose), set()).add(sender)
        alternatives.setdefault(("recipient", sender, signal, purpose), set()).add(recipient)
        alternatives.setdefault(("purpose", sender, signal, recipient), set()).add(purpose)
        alternatives.setdefault(("signal", signal, "", ""), set()).update((sender, recipient))
    policy = CompiledPolicy(
        version=version,
        content_hash=content_hash,
        timezone=zone_name,
        parties=MappingProxyType(dict(vocabulary.parties)),
        classifications=MappingProxyType(dict(vocabulary.classifications)),
        legal_bases=MappingProxyType(dict(vocabulary.legal_bases)),
        purposes=MappingProxyType(dict(vocabulary.purposes)),
        cooperations=MappingProxyType(dict(vocabulary.cooperations)),
        agreements=tuple(agreements),
        catalogue=catalogue,
        route_index=MappingProxyType(
            {key: tuple(sorted(v, key=lambda e: e.start)) for key, v in route_index.items()}
        ),
        by_sender_signal_purpose=MappingProxyType(
            {key: tuple(v) for key, v in by_sender_signal_purpose.items()}
        ),
        alternatives=MappingProxyType({key: frozenset(v) for key, v in alternatives.items()}),
    )
    return [], policy


def check_policy(
    directory: Path | None = None, catalogue: Catalogue | None = None
) -> list[PolicyProblem]:
    """Every problem in the policy files (empty when they compile), sorted by file and line."""
    problems, _ = _compile(directory, catalogue)
    return sorted(problems, key=lambda p: (p.file, p.line, p.message))


def load_policy(
    directory: Path | None = None, catalogue: Catalogue | None = None
) -> CompiledPolicy:
    """Compile the policy in ``directory`` (default: the shipped files) or raise PolicyInvalid."""
    problems, policy = _compile(directory, catalogue)
    if policy is None:
        raise PolicyInvalid(sorted(problems, key=lambda p: (p.file, p.line, p.message)))
    return policy
