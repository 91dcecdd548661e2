"""Schema evolution: a new version must be fully compatible with the previous one."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sigex.schemas.catalogue import SCHEMA_DIRECTORY, load_catalogue
from sigex.schemas.codec import decode_record, encode_record
from sigex.schemas.compatibility import check_compatible
from sigex.schemas.errors import CatalogueError, IncompatibleSchema

from .conftest import example_records  # type: ignore[import-not-found]

Raw = dict[str, Any]


def _schema_copy(tmp_path: Path) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIRECTORY, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def _version_two(root: Path, change: Callable[[Raw], None]) -> None:
    source = root / "payroll" / "bsn-mismatch.v1.avsc"
    raw = json.loads(source.read_text())
    raw["sigex.version"] = 2
    change(raw)
    (root / "payroll" / "bsn-mismatch.v2.avsc").write_text(json.dumps(raw, indent=2))


def _field(raw: Raw, name: str) -> Raw:
    return next(f for f in raw["fields"] if f["name"] == name)


def _add_optional_field(raw: Raw) -> None:
    raw["fields"].append(
        {
            "name": "sector",
            "type": ["null", "string"],
            "default": None,
            "doc": "Sector code of the employer.",
            "sigex.classification": "organisation",
        }
    )


def test_adding_an_optional_field_is_a_compatible_new_version(tmp_path: Path) -> None:
    root = _schema_copy(tmp_path)
    _version_two(root, _add_optional_field)
    catalogue = load_catalogue(root)
    old, new = catalogue.versions("payroll.bsn-mismatch")
    assert (old.version, new.version) == (1, 2)
    assert catalogue.signal("payroll.bsn-mismatch") is new
    assert old.fingerprint != new.fingerprint
    record = example_records()["payroll.bsn-mismatch"]
    as_new = decode_record(new, encode_record(old, record), writer=old)
    assert as_new["sector"] is None
    as_old = decode_record(old, encode_record(new, dict(record, sector="K")), writer=new)
    assert "sector" not in as_old


def _remove_field_without_default(raw: Raw) -> None:
    raw["fields"] = [f for f in raw["fields"] if f["name"] != "employer_kvk"]


def _change_type(raw: Raw) -> None:
    _field(raw, "payroll_period")["type"] = "string"


def _add_required_field(raw: Raw) -> None:
    raw["fields"].append(
        {
            "name": "sector",
            "type": "string",
            "doc": "Sector code.",
            "sigex.classification": "organisation",
        }
    )


def _change_logical_type(raw: Raw) -> None:
    _field(raw, "payroll_period")["type"] = "int"


def _drop_enum_symbol(raw: Raw) -> None:
    _field(raw, "kind")["type"]["symbols"].remove("BSN_UNKNOWN_IN_BRP")


def _make_nullable_required(raw: Raw) -> None:
    field = _field(raw, "family_name")
    field["type"] = "string"
    del field["default"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (_remove_field_without_default, "employer_kvk", "removed but has no default"),
        (_change_type, "payroll_period", "changed type from int (date) to string"),
        (_add_required_field, "sector", "added without a default"),
        (_change_logical_type, "payroll_period", "changed logical type from date to none"),
        (_drop_enum_symbol, "kind", "BSN_UNKNOWN_IN_BRP"),
        (_make_nullable_required, "family_name", "changed type"),
    ],
)
def test_an_incompatible_version_is_refused_naming_the_field(
    tmp_path: Path, change: Callable[[Raw], None], field: str, words: str
) -> None:
    root = _schema_copy(tmp_path)
    _version_two(root, change)
    with pytest.raises(IncompatibleSchema) as caught:
        load_catalogue(root)
    message = str(caught.value)
    assert f"field {field!r}" in message
    assert words in message
    assert "payroll.bsn-mismatch" in message
    assert any(problem.field == field for problem in caught.value.problems)


def test_a_promotion_is_backward_but_not_forward_compatible() -> None:
    spec = load_catalogue().signal("payroll.bsn-mismatch")
    old = spec.parsed_schema
    new = copy.deepcopy(old)
    for field in new["fields"]:
        if field["name"] == "payroll_period":
            field["type"] = {"type": "long", "logicalType": "date"}
    problems = check_compatible(old, new)
    assert [p.direction for p in problems] == ["forward"]
    assert problems[0].field == "payroll_period"


def test_identical_versions_are_compatible() -> None:
    spec = load_catalogue().signal("waadi.admission-violation")
    assert check_compatible(spec.parsed_schema, copy.deepcopy(spec.parsed_schema)) == ()


def test_a_gap_in_versions_is_refused(tmp_path: Path) -> None:
    root = _schema_copy(tmp_path)
    _version_two(root, _add_optional_field)
    (root / "payroll" / "bsn-mismatch.v2.avsc").rename(root / "payroll" / "x.avsc")
    raw = json.loads((root / "payroll" / "x.avsc").read_text())
    raw["sigex.version"] = 3
    (root / "payroll" / "x.avsc").write_text(json.dumps(raw))
    with pytest.raises(CatalogueError, match=r"versions must be 1..n"):
        load_catalogue(root)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda raw: raw.pop("sigex.key"), "'sigex.key'"),
        (lambda raw: _field(raw, "bsn").pop("sigex.classification"), "'bsn' has no"),
        (lambda raw: _field(raw, "bsn").update({"sigex.identifier": "iban"}), "'iban'"),
        (lambda raw: _field(raw, "bsn").pop("doc"), "'bsn' has no doc"),
        (lambda raw: raw.update({"sigex.key": "nope"}), "key field 'nope'"),
    ],
)
def test_a_schema_missing_an_annotation_is_refused(
    tmp_path: Path, change: Callable[[Raw], object], words: str
) -> None:
    root = _schema_copy(tmp_path)
    path = root / "payroll" / "bsn-mismatch.v1.avsc"
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))
    with pytest.raises(CatalogueError, match=words):
        load_catalogue(root)
