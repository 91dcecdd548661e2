"""The catalogue of signals: name -> versions -> parsed schema, topics, key, classifications.

Every ``.avsc`` file below the schema directory is one version of one signal.
Its record carries the sigex annotations that make it a signal:

- ``"sigex.signal"``: the signal name (``laa.frequent-mover``),
- ``"sigex.version"``: a positive integer, consecutive per signal,
- ``"sigex.key"``: the field whose value keys the Kafka record,

and every field carries ``"sigex.classification"`` (a data category) and,
for identifier-bearing strings, ``"sigex.identifier"`` (a check from
:data:`sigex.identifiers.CHECKS`). Adding a signal is adding a file; adding
a version is refused unless it is fully compatible with the previous one.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from fastavro.schema import (
    SchemaParseException,
    UnknownType,
    fingerprint,
    parse_schema,
    to_parsing_canonical_form,
)

from sigex.identifiers import CHECKS
from sigex.schemas.compatibility import check_compatible, named_types
from sigex.schemas.errors import CatalogueError, IncompatibleSchema, UnknownSchema

SCHEMA_DIRECTORY = Path(__file__).resolve().parent
TOPIC_PREFIX = "sigex"

SIGNAL_ANNOTATION = "sigex.signal"
VERSION_ANNOTATION = "sigex.version"
KEY_ANNOTATION = "sigex.key"
CLASSIFICATION_ANNOTATION = "sigex.classification"
IDENTIFIER_ANNOTATION = "sigex.identifier"


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """One version of one signal: its schema and everything derived from it.

    ``parsed_schema`` and ``field_schemas`` are fastavro's parsed forms (dicts,
    as fastavro needs them); treat them as read-only.
    """

    name: str
    version: int
    namespace: str
    record_name: str
    key_field: str
    fingerprint: str
    field_names: tuple[str, ...]
    required_fields: frozenset[str]
    classifications: Mapping[str, str]
    identifier_checks: Mapping[str, str]
    source: str
    parsed_schema: dict[str, Any] = field(repr=False, compare=False, hash=False)
    field_schemas: Mapping[str, Any] = field(repr=False, compare=False, hash=False)
    field_defaults: Mapping[str, Any] = field(repr=False, compare=False, hash=False)

    @property
    def ingress_topic(self) -> str:
        """The topic senders write this signal to: ``sigex.<signal>.in``."""
        return f"{TOPIC_PREFIX}.{self.name}.in"

    def delivery_topic(self, party: str) -> str:
        """The topic the gateway delivers to ``party`` on: ``sigex.<signal>.out.<PARTY>``."""
        return f"{TOPIC_PREFIX}.{self.name}.out.{party}"

    @property
    def field_set(self) -> frozenset[str]:
        return frozenset(self.field_names)

    def classifications_of(self, fields: frozenset[str] | tuple[str, ...]) -> frozenset[str]:
        """The data classifications carried by ``fields`` (unknown names are ignored)."""
        return frozenset(self.classifications[f] for f in fields if f in self.classifications)

    def present_classifications(self, record: Mapping[str, object]) -> frozenset[str]:
        """The classifications of the fields of ``record`` that hold a value (not None or [])."""
        return frozenset(
            self.classifications[name]
            for name, value in record.items()
            if name in self.classifications and value is not None and value != []
        )


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Every catalogued signal with all its versions, newest last."""

    signals: Mapping[str, tuple[SignalSpec, ...]]

    def signal(self, name: str, version: int | None = None) -> SignalSpec:
        """The newest version of signal ``name``, or the given version; UnknownSchema if none."""
        versions = self.signals.get(name)
        if not versions:
            raise UnknownSchema(name)
        if version is None:
            return versions[-1]
        for spec in versions:
            if spec.version == version:
                return spec
        raise UnknownSchema(name, version)

    def versions(self, name: str) -> tuple[SignalSpec, ...]:
        versions = self.signals.get(name)
        if not versions:
            raise UnknownSchema(name)
        return versions

    def by_fingerprint(self, fingerprint_hex: str) -> SignalSpec:
        """The signal version whose Parsing Canonical Form has this SHA-256 fingerprint."""
        for spec in self:
            if spec.fingerprint == fingerprint_hex:
                return spec
        raise UnknownSchema(f"fingerprint {fingerprint_hex[:16]}…")

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.signals))

    def __contains__(self, name: object) -> bool:
        return name in self.signals

    def __iter__(self) -> Iterator[SignalSpec]:
        for name in self.names():
            yield from self.signals[name]


def _require(raw: Mapping[str, Any], key: str, source: str, kind: type) -> Any:
    value = raw.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CatalogueError(source, f"record needs annotation {key!r} of type {kind.__name__}")
    return value


def _parse_field_schema(
    field_type: Any, all_named: Mapping[str, Any], source: str, name: str
) -> Any:
    """Parse one field's type on its own, so that one field can be encoded alone."""
    defined_here = named_types(field_type, {})
    named = {k: v for k, v in all_named.items() if k not in defined_here}
    try:
        return parse_schema(field_type, named_schemas=named)
    except (SchemaParseException, UnknownType) as error:
        raise CatalogueError(source, f"field {name!r}: its type cannot be parsed alone") from error


def spec_from_schema(raw: Mapping[str, Any], source: str) -> SignalSpec:
    """Build a SignalSpec from one raw ``.avsc`` record, checking every sigex annotation."""
    if raw.get("type") != "record":
        raise CatalogueError(source, "a signal schema must be a record")
    signal = _require(raw, SIGNAL_ANNOTATION, source, str)
    version = _require(raw, VERSION_ANNOTATION, source, int)
    key_field = _require(raw, KEY_ANNOTATION, source, str)
    namespace = _require(raw, "namespace", source, str)
    if version < 1:
        raise CatalogueError(source, f"{VERSION_ANNOTATION!r} must be a positive integer")
    try:
        parsed = cast(dict[str, Any], parse_schema(dict(raw)))
    except (SchemaParseException, UnknownType, ValueError, TypeError, KeyError) as error:
        raise CatalogueError(source, f"not a valid Avro schema: {error}") from error
    all_named = named_types(parsed, {})
    names: list[str] = []
    required: set[str] = set()
    classifications: dict[str, str] = {}
    checks: dict[str, str] = {}
    field_schemas: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for raw_field, parsed_field in zip(raw["fields"], parsed["fields"], strict=True):
        name = raw_field["name"]
        names.append(name)
        if not raw_field.get("doc"):
            raise CatalogueError(source, f"field {name!r} has no doc")
        classification = raw_field.get(CLASSIFICATION_ANNOTATION)
        if not isinstance(classification, str) or not classification:
            raise CatalogueError(source, f"field {name!r} has no {CLASSIFICATION_ANNOTATION!r}")
        classifications[name] = classification
        identifier = raw_field.get(IDENTIFIER_ANNOTATION)
        if identifier is not None:
            if identifier not in CHECKS:
                raise CatalogueError(
                    source, f"field {name!r}: unknown identifier check {identifier!r}"
                )
            checks[name] = identifier
        if "default" in raw_field:
            defaults[name] = raw_field["default"]
        else:
            required.add(name)
        field_schemas[name] = _parse_field_schema(parsed_field["type"], all_named, source, name)
    if key_field not in classifications:
        raise CatalogueError(source, f"key field {key_field!r} is not a field of the record")
    canonical = to_parsing_canonical_form(parsed)
    return SignalSpec(
        name=signal,
        version=version,
        namespace=namespace,
        record_name=str(parsed["name"]),
        key_field=key_field,
        fingerprint=fingerprint(canonical, "SHA-256"),
        field_names=tuple(names),
        required_fields=frozenset(required),
        classifications=MappingProxyType(classifications),
        identifier_checks=MappingProxyType(checks),
        source=source,
        parsed_schema=parsed,
        field_schemas=MappingProxyType(field_schemas),
        field_defaults=MappingProxyType(defaults),
    )


def build_catalogue(specs: list[SignalSpec]) -> Catalogue:
    """Group specs per signal, require versions 1..n, check each against the previous one."""
    grouped: dict[str, list[SignalSpec]] = {}
    for spec in specs:
        grouped.setdefault(spec.name, []).append(spec)
    signals: dict[str, tuple[SignalSpec, ...]] = {}
    for name, versions in sorted(grouped.items()):
        versions.sort(key=lambda s: s.version)
        numbers = [s.version for s in versions]
        if numbers != list(range(1, len(versions) + 1)):
            sources = ", ".join(s.source for s in versions)
            raise CatalogueError(
                sources, f"signal {name!r}: versions must be 1..n, found {numbers}"
            )
        for old, new in itertools.pairwise(versions):
            problems = check_compatible(old.parsed_schema, new.parsed_schema)
            if problems:
                raise IncompatibleSchema(name, old.version, new.version, problems)
        signals[name] = tuple(versions)
    return Catalogue(signals=MappingProxyType(signals))


def load_catalogue(directory: Path | None = None) -> Catalogue:
    """Load every ``*.avsc`` below ``directory`` (default: the shipped schemas)."""
    root = SCHEMA_DIRECTORY if directory is None else directory
    specs: list[SignalSpec] = []
    for path in sorted(root.rglob("*.avsc")):
        source = str(path.relative_to(root))
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise CatalogueError(source, f"cannot read JSON: {error}") from error
        if not isinstance(raw, dict):
            raise CatalogueError(source, "a signal schema must be a JSON object")
        specs.append(spec_from_schema(raw, source))
    return build_catalogue(specs)
