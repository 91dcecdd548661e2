"""The shipped catalogue: four signals, their field contract, topics, keys and fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from sigex.schemas.catalogue import SCHEMA_DIRECTORY, Catalogue
from sigex.schemas.errors import UnknownSchema

# The field contract shared with the other engineers: name -> classification.
CONTRACT = {
    "laa.frequent-mover": {
        "signal_id": "public",
        "detected_at": "public",
        "bsn": "identifier.bsn",
        "municipality": "address",
        "postcode": "address",
        "house_number": "address",
        "house_number_addition": "address",
        "moves_in_period": "personal",
        "period_start": "public",
        "period_end": "public",
        "profile": "public",
    },
    "laa.investigation-outcome": {
        "signal_id": "public",
        "detected_at": "public",
        "in_reply_to": "public",
        "municipality": "organisation",
        "outcome": "public",
        "concluded_on": "public",
    },
    "payroll.bsn-mismatch": {
        "signal_id": "public",
        "detected_at": "public",
        "bsn": "identifier.bsn",
        "kind": "public",
        "employer_loonheffingennummer": "organisation",
        "employer_kvk": "organisation",
        "payroll_period": "public",
        "municipality": "address",
        "family_name": "personal",
        "birth_date": "personal",
    },
    "waadi.admission-violation": {
        "signal_id": "public",
        "detected_at": "public",
        "kind": "public",
        "uitlener_kvk": "organisation",
        "uitlener_loonheffingennummer": "organisation",
        "inlener_kvk": "organisation",
        "inlener_loonheffingennummer": "organisation",
        "worker_count": "public",
        "worker_bsns": "identifier.bsn",
        "observed_from": "public",
        "observed_to": "public",
        "suspected_offence": "criminal",
    },
}

KEYS = {
    "laa.frequent-mover": "bsn",
    "laa.investigation-outcome": "in_reply_to",
    "payroll.bsn-mismatch": "bsn",
    "waadi.admission-violation": "uitlener_kvk",
}


def test_the_catalogue_holds_the_four_signals(catalogue: Catalogue) -> None:
    assert catalogue.names() == tuple(sorted(CONTRACT))


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_fields_and_classifications_follow_the_contract(catalogue: Catalogue, name: str) -> None:
    spec = catalogue.signal(name)
    assert spec.field_names == tuple(CONTRACT[name])
    assert dict(spec.classifications) == CONTRACT[name]
    assert spec.key_field == KEYS[name]
    assert spec.version == 1
    assert spec.namespace == "nl.sigex." + name.split(".", maxsplit=1)[0]


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_topics_are_named_after_the_signal(catalogue: Catalogue, name: str) -> None:
    spec = catalogue.signal(name)
    assert spec.ingress_topic == f"sigex.{name}.in"
    assert spec.delivery_topic("GM0363") == f"sigex.{name}.out.GM0363"


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_fingerprint_is_sha256_of_the_parsing_canonical_form(
    catalogue: Catalogue, name: str
) -> None:
    spec = catalogue.signal(name)
    raw = json.loads((SCHEMA_DIRECTORY / spec.source).read_text())
    expected = fingerprint(to_parsing_canonical_form(parse_schema(raw)), "SHA-256")
    assert spec.fingerprint == expected
    assert len(spec.fingerprint) == 64
    assert catalogue.by_fingerprint(expected) is spec


def test_every_field_has_a_doc_and_logical_types_are_used() -> None:
    for path in sorted(Path(SCHEMA_DIRECTORY).rglob("*.avsc")):
        raw = json.loads(path.read_text())
        assert raw.get("doc")
        for field in raw["fields"]:
            assert field.get("doc"), (path.name, field["name"])
            assert field.get("sigex.classification"), (path.name, field["name"])
        by_name = {field["name"]: field for field in raw["fields"]}
        assert by_name["signal_id"]["type"]["logicalType"] == "uuid"
        assert by_name["detected_at"]["type"]["logicalType"] == "timestamp-millis"


def test_identifier_checks_are_read_from_the_annotations(catalogue: Catalogue) -> None:
    assert dict(catalogue.signal("payroll.bsn-mismatch").identifier_checks) == {
        "bsn": "bsn",
        "employer_loonheffingennummer": "loonheffingennummer",
        "employer_kvk": "kvk",
        "municipality": "municipality",
    }
    assert catalogue.signal("waadi.admission-violation").identifier_checks["worker_bsns"] == "bsn"


def test_enums_hold_the_kinds_and_outcomes(catalogue: Catalogue) -> None:
    outcome = catalogue.signal("laa.investigation-outcome").field_schemas["outcome"]
    assert outcome["symbols"] == [
        "ADDRESS_CONFIRMED",
        "ADDRESS_CORRECTED",
        "PERSON_DEREGISTERED",
        "NOT_INVESTIGATED",
        "INVESTIGATION_ONGOING",
    ]
    kind = catalogue.signal("waadi.admission-violation").field_schemas["kind"]
    assert "LENDING_WITHOUT_ADMISSION" in kind["symbols"]


def test_an_unknown_signal_is_refused(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownSchema, match=r"no\.such-signal"):
        catalogue.signal("no.such-signal")
    with pytest.raises(UnknownSchema, match="version 7"):
        catalogue.signal("laa.frequent-mover", 7)


def test_present_classifications_skip_empty_fields(
    catalogue: Catalogue, records: dict[str, dict[str, object]]
) -> None:
    spec = catalogue.signal("waadi.admission-violation")
    record = records["waadi.admission-violation"]
    assert "criminal" not in spec.present_classifications(record)
    assert "criminal" in spec.present_classifications(dict(record, suspected_offence="fraude"))
    no_workers = dict(record, worker_bsns=[])
    assert "identifier.bsn" not in spec.present_classifications(no_workers)
