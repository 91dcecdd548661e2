"""Valid example records of each signal, built from checked identifiers."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from sigex.identifiers import synthetic_bsn, synthetic_loonheffingennummer
from sigex.schemas.catalogue import Catalogue, load_catalogue


def make_bsn(seed: int) -> str:
    """A BSN that passes the elfproef, derived from ``seed`` (synthetic test data)."""
    return synthetic_bsn(seed)


def make_loonheffingennummer(seed: int) -> str:
    return synthetic_loonheffingennummer(seed)


BSN_A = make_bsn(11122233)
BSN_B = make_bsn(22233344)
LHN_A = make_loonheffingennummer(123456780)
LHN_B = make_loonheffingennummer(800000000)


def example_records() -> dict[str, dict[str, object]]:
    detected = datetime(2027, 2, 1, 9, 30, tzinfo=UTC)
    return {
        "laa.frequent-mover": {
            "signal_id": str(uuid.UUID(int=1)),
            "detected_at": detected,
            "bsn": BSN_A,
            "municipality": "GM0363",
            "postcode": "1011AB",
            "house_number": 12,
            "house_number_addition": "B",
            "moves_in_period": 6,
            "period_start": date(2026, 1, 1),
            "period_end": date(2026, 12, 31),
            "profile": "LAA-VV-01",
        },
        "laa.investigation-outcome": {
            "signal_id": str(uuid.UUID(int=2)),
            "detected_at": detected,
            "in_reply_to": str(uuid.UUID(int=1)),
            "municipality": "GM0363",
            "outcome": "ADDRESS_CORRECTED",
            "concluded_on": date(2027, 3, 1),
        },
        "payroll.bsn-mismatch": {
            "signal_id": str(uuid.UUID(int=3)),
            "detected_at": detected,
            "bsn": BSN_B,
            "kind": "NAME_OR_BIRTHDATE_DIFFERS",
            "employer_loonheffingennummer": LHN_A,
            "employer_kvk": "12345678",
            "payroll_period": date(2027, 1, 1),
            "municipality": None,
            "family_name": "Jansen",
            "birth_date": date(1990, 5, 17),
        },
        "waadi.admission-violation": {
            "signal_id": str(uuid.UUID(int=4)),
            "detected_at": detected,
            "kind": "HIRING_FROM_NON_ADMITTED",
            "uitlener_kvk": "87654321",
            "uitlener_loonheffingennummer": LHN_B,
            "inlener_kvk": "12345678",
            "inlener_loonheffingennummer": LHN_A,
            "worker_count": 2,
            "worker_bsns": [BSN_A, BSN_B],
            "observed_from": date(2027, 1, 5),
            "observed_to": date(2027, 1, 20),
            "suspected_offence": None,
        },
    }


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture
def records() -> dict[str, dict[str, object]]:
    return example_records()
