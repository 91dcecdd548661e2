"""Avro schema resolution between two versions of a signal, reported per field.

A new version of a signal must be *fully* compatible with the previous one:
the new schema can read data written with the old one (backward) and the old
schema can read data written with the new one (forward), so producers and
consumers can upgrade in any order. The rules are Avro's schema-resolution
rules, plus one stricter rule: a field's logical type may not change (a
``date`` that becomes an ``int`` still decodes but means something else).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sigex.schemas.errors import Incompatibility

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})

#: (writer type, reader type) pairs that Avro promotes while reading.
_PROMOTIONS = frozenset(
    {
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
    }
)


def named_types(schema: Any, found: dict[str, Any]) -> dict[str, Any]:
    """Every named type (record, enum, fixed) defined inside a parsed schema, by full name."""
    if isinstance(schema, list):
        for branch in schema:
            named_types(branch, found)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed") and "name" in schema:
            found[schema["name"]] = schema
        if kind in ("record", "error"):
            for field in schema.get("fields", ()):
                named_types(field["type"], found)
        elif kind == "array":
            named_types(schema["items"], found)
        elif kind == "map":
            named_types(schema["values"], found)
        elif isinstance(kind, (dict, list)):
            named_types(kind, found)
    return found


class _Resolver:
    def __init__(
        self, reader_names: Mapping[str, Any], writer_names: Mapping[str, Any], direction: str
    ) -> None:
        self._reader_names = reader_names
        self._writer_names = writer_names
        self._direction = direction
        self._seen: set[tuple[str, str]] = set()
        self.problems: list[Incompatibility] = []

    @staticmethod
    def _resolve(schema: Any, names: Mapping[str, Any]) -> Any:
        while True:
            if isinstance(schema, str) and schema not in PRIMITIVES:
                schema = names.get(schema, schema)
                if isinstance(schema, str):
                    return schema
            elif isinstance(schema, dict) and isinstance(schema.get("type"), (dict, list)):
                schema = schema["type"]
            else:
                return schema

    @staticmethod
    def _kind(schema: Any) -> str:
        if isinstance(schema, list):
            return "union"
        if isinstance(schema, str):
            return schema
        return str(schema["type"])

    @staticmethod
    def _logical(schema: Any) -> str | None:
        if isinstance(schema, dict):
            logical = schema.get("logicalType")
            return str(logical) if logical is not None else None
        return None

    def _describe(self, schema: Any) -> str:
        kind = self._kind(schema)
        if kind == "union":
            return "union of " + ", ".join(self._describe(self._resolve(b, {})) for b in schema)
        logical = self._logical(schema)
        if kind in ("record", "enum", "fixed"):
            return f"{kind} {schema.get('name')}"
        return f"{kind} ({logical})" if logical else kind

    def _add(self, field: str, message: str) -> None:
        self.problems.append(Incompatibility(field, self._direction, message))

    def readable(self, reader: Any, writer: Any, field: str) -> bool:
        """Check that ``reader`` can read what ``writer`` wrote; record problems; True if none."""
        before = len(self.problems)
        self._check(reader, writer, field)
        return len(self.problems) == before

    def _quietly_readable(self, reader: Any, writer: Any, field: str) -> bool:
        saved = self.problems
        self.problems = []
        try:
            return self.readable(reader, writer, field)
        finally:
            self.problems = saved

    def _check_union(self, reader: Any, writer: Any, field: str) -> None:
        reader_is_union = isinstance(reader, list)
        writer_branches = writer if isinstance(writer, list) else [writer]
        for branch in writer_branches:
            if not reader_is_union:
                self._check(reader, branch, field)
            elif not any(self._quietly_readable(r, branch, field) for r in reader):
                resolved = self._resolve(branch, self._writer_names)
                if isinstance(writer, list):
                    message = (
                        f"the {self._describe(resolved)} branch can no longer be read "
                        f"({self._describe(reader)})"
                    )
                else:
                    message = (
                        f"changed type from {self._describe(resolved)} to {self._describe(reader)}"
                    )
                self._add(field, message)

    def _check(self, reader_in: Any, writer_in: Any, field: str) -> None:
        reader = self._resolve(reader_in, self._reader_names)
        writer = self._resolve(writer_in, self._writer_names)
        if isinstance(reader, list) or isinstance(writer, list):
            self._check_union(reader, writer, field)
            return
        reader_kind, writer_kind = self._kind(reader), self._kind(writer)
        if reader_kind != writer_kind and (writer_kind, reader_kind) not in _PROMOTIONS:
            self._add(
                field, f"changed type from {self._describe(writer)} to {self._describe(reader)}"
            )
            return
        if self._logical(reader) != self._logical(writer):
            self._add(
                field,
                f"changed logical type from {self._logical(writer) or 'none'} "
                f"to {self._logical(reader) or 'none'}",
            )
            return
        if reader_kind in ("record", "error"):
            self._check_record(reader, writer, field)
        elif reader_kind == "enum":
            missing = sorted(set(writer["symbols"]) - set(reader["symbols"]))
            if missing and "default" not in reader:
                self._add(field, f"enum symbols {', '.join(missing)} are unknown to the reader")
        elif reader_kind == "array":
            self._check(reader["items"], writer["items"], f"{field}[]")
        elif reader_kind == "map":
            self._check(reader["values"], writer["values"], f"{field}{{}}")
        elif reader_kind == "fixed" and reader.get("size") != writer.get("size"):
            self._add(field, "changed fixed size")

    def _check_record(self, reader: Any, writer: Any, field: str) -> None:
        pair = (str(reader.get("name")), str(writer.get("name")))
        if pair in self._seen:
            return
        self._seen.add(pair)
        if reader.get("name") != writer.get("name") and writer.get("name") not in reader.get(
            "aliases", ()
        ):
            self._add(field or "(record)", "changed record name")
            return
        writer_fields = {f["name"]: f for f in writer.get("fields", ())}
        for reader_field in reader.get("fields", ()):
            name = reader_field["name"]
            path = f"{field}.{name}" if field else name
            writer_field = writer_fields.get(name)
            if writer_field is None:
                for alias in reader_field.get("aliases", ()):
                    writer_field = writer_fields.get(alias)
                    if writer_field is not None:
                        break
            if writer_field is not None:
                self._check(reader_field["type"], writer_field["type"], path)
            elif "default" not in reader_field:
                if self._direction == "backward":
                    self._add(path, "was added without a default")
                else:
                    self._add(path, "was removed but has no default")


def _one_way(reader: Any, writer: Any, direction: str) -> list[Incompatibility]:
    resolver = _Resolver(named_types(reader, {}), named_types(writer, {}), direction)
    resolver.readable(reader, writer, "")
    return resolver.problems


def check_compatible(old: Any, new: Any) -> tuple[Incompatibility, ...]:
    """Every problem that stops ``new`` and ``old`` (parsed schemas) reading each other's data."""
    problems = _one_way(new, old, "backward") + _one_way(old, new, "forward")
    unique: dict[tuple[str, str, str], Incompatibility] = {}
    for problem in problems:
        unique.setdefault((problem.field, problem.direction, problem.message), problem)
    return tuple(unique.values())
