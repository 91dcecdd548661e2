"""The small data files shipped with the generator: CBS municipality codes and name lists."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any


@dataclass(frozen=True, slots=True)
class Municipality:
    code: str
    name: str
    population: int


@dataclass(frozen=True, slots=True)
class NameLists:
    resident_family_names: tuple[str, ...]
    resident_given_names: tuple[str, ...]
    migrant_family_names: tuple[str, ...]
    migrant_given_names: tuple[str, ...]


def _load(file_name: str) -> Any:
    text = (
        resources.files("sigex.partners.synthetic").joinpath(file_name).read_text(encoding="utf-8")
    )
    return json.loads(text)


def load_municipalities() -> tuple[Municipality, ...]:
    """The municipalities the generator places addresses in, with population weights."""
    return tuple(
        Municipality(code=entry["code"], name=entry["name"], population=int(entry["population"]))
        for entry in _load("municipalities.json")["municipalities"]
    )


def load_names() -> NameLists:
    document = _load("names.json")
    return NameLists(
        resident_family_names=tuple(document["resident_family_names"]),
        resident_given_names=tuple(document["resident_given_names"]),
        migrant_family_names=tuple(document["migrant_family_names"]),
        migrant_given_names=tuple(document["migrant_given_names"]),
    )
