"""The audit API's witness endpoints: each witness hands in its own valid cosignature only."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sigex.audit.api import AuditApi
from sigex.audit.checkpoint import Checkpoint
from sigex.audit.cosignature import Cosignature, cosign, cosignatures_in
from sigex.audit.store import AccessLogStore
from sigex.audit.witness_policy import Witnessing, WitnessPolicy
from sigex.clock import FixedClock
from sigex.exchange.pseudonyms import SubjectPseudonymiser
from sigex.identity.testing import directory_for, fixed_identity

from .conftest import RecordFactory
from .console_kit import console_kit

WITNESSES = ("NLA", "UWV", "BD", "RVIG", "GM0363")
ORIGIN = "sigex.test/access-log"
IDENTITIES = {code: fixed_identity(code, b"api") for code in (*WITNESSES, "GM0599")}
KINDS = {code: "authority" for code in IDENTITIES} | {"AUDITOR": "auditor"}


class WitnessApi:
    def __init__(self, api: AuditApi, checkpoint: Checkpoint, clock: FixedClock) -> None:
        self.api, self.checkpoint, self.clock = api, checkpoint, clock

    def call(
        self, principal: str, method: str, path: str, body: object = None
    ) -> tuple[int, dict[str, Any]]:
        raw = b"" if body is None else json.dumps(body).encode()
        answer = self.api.handle(principal, method, path, raw)
        return answer.status, answer.body

    def cosignature(self, code: str, key: Ed25519PrivateKey | None = None) -> Cosignature:
        signing = key or IDENTITIES[code].signing_key
        return cosign(self.checkpoint, code, signing, self.clock.now())

    def hand_in(self, principal: str, cosignature: Cosignature, size: int | None = None) -> int:
        body = {
            "tree_size": self.checkpoint.tree_size if size is None else size,
            "root": self.checkpoint.root.hex(),
            "cosignature": cosignature.to_dict(),
        }
        return self.call(principal, "POST", "/v1/cosignatures", body)[0]


@pytest.fixture
def witness_api(
    tmp_path: Path, make_record: RecordFactory, signing_key: Ed25519PrivateKey
) -> WitnessApi:
    clock = FixedClock(datetime(2027, 3, 1, tzinfo=UTC))
    location = str(tmp_path / "audit.sqlite")
    with AccessLogStore.open(location) as store:
        store.append([make_record() for _ in range(9)])
        checkpoint = store.checkpoint(signing_key, clock, ORIGIN)
    start = datetime(2027, 1, 1, tzinfo=UTC)
    directory = directory_for(list(IDENTITIES.values()), start, start + timedelta(days=365))
    witnessing = Witnessing(WitnessPolicy(ORIGIN, WITNESSES, 3), lambda: directory, clock)
    api = AuditApi(lambda: AccessLogStore.open(location), KINDS, None, None, witnessing)
    return WitnessApi(api, checkpoint, clock)


def test_three_witnesses_hand_in_and_the_checkpoint_is_witnessed(witness_api: WitnessApi) -> None:
    status, _ = witness_api.call("AUDITOR", "GET", "/v1/checkpoints/witnessed")
    assert status == 404
    for code in ("NLA", "UWV"):
        assert witness_api.hand_in(code, witness_api.cosignature(code)) == 200
    status, answer = witness_api.call("AUDITOR", "GET", "/v1/checkpoints/latest/cosignatures")
    assert status == 200
    assert answer["witnesses"]["signed_by"] == ["NLA", "UWV"] and not answer["witnesses"]["met"]
    assert witness_api.hand_in("BD", witness_api.cosignature("BD")) == 200
    status, answer = witness_api.call("GM0599", "GET", "/v1/checkpoints/witnessed")
    assert status == 200 and answer["witnesses"]["met"]
    assert answer["checkpoint"] == witness_api.checkpoint.to_dict()
    in_note = cosignatures_in(answer["note"].encode())
    assert sorted(c.witness for c in in_note) == ["BD", "NLA", "UWV"]


def test_a_cosignature_is_kept_once(witness_api: WitnessApi) -> None:
    cosignature = witness_api.cosignature("RVIG")
    assert witness_api.hand_in("RVIG", cosignature) == 200
    status, answer = witness_api.call(
        "RVIG",
        "POST",
        "/v1/cosignatures",
        {
            "tree_size": witness_api.checkpoint.tree_size,
            "root": witness_api.checkpoint.root.hex(),
            "cosignature": cosignature.to_dict(),
        },
    )
    assert status == 200 and answer["added"] is False
    assert len(answer["cosignatures"]) == 1


def test_a_party_cannot_hand_in_another_witness_s_cosignature(witness_api: WitnessApi) -> None:
    assert witness_api.hand_in("UWV", witness_api.cosignature("NLA")) == 403


def test_a_cosignature_by_the_wrong_key_or_of_another_tree_is_refused(
    witness_api: WitnessApi,
) -> None:
    forged = witness_api.cosignature("NLA", Ed25519PrivateKey.generate())
    assert witness_api.hand_in("NLA", forged) == 400
    assert witness_api.hand_in("NLA", witness_api.cosignature("NLA"), size=3) == 404
    status, answer = witness_api.call("AUDITOR", "GET", "/v1/checkpoints/latest/cosignatures")
    assert status == 200 and answer["cosignatures"] == []


def test_a_party_outside_the_policy_cannot_witness(witness_api: WitnessApi) -> None:
    assert witness_api.hand_in("GM0599", witness_api.cosignature("GM0599")) == 400


def test_a_malformed_body_is_a_clear_refusal(witness_api: WitnessApi) -> None:
    for body in ({}, {"tree_size": 9, "root": "zz", "cosignature": {}}, [1, 2]):
        status, answer = witness_api.call("NLA", "POST", "/v1/cosignatures", body)
        assert status == 400 and "body" in answer["error"]


def test_the_console_shows_which_witnesses_co_signed_a_record_s_checkpoint(
    tmp_path: Path,
    make_record: RecordFactory,
    signing_key: Ed25519PrivateKey,
    pseudonymiser: SubjectPseudonymiser,
) -> None:
    clock = FixedClock(datetime(2027, 3, 1, tzinfo=UTC))
    location = str(tmp_path / "audit.sqlite")
    with AccessLogStore.open(location) as store:
        store.append([make_record() for _ in range(5)])
        witnessed = store.checkpoint(signing_key, clock, ORIGIN)
        for code in ("NLA", "UWV", "BD"):
            store.add_cosignature(
                witnessed, cosign(witnessed, code, IDENTITIES[code].signing_key, clock.now())
            )
        store.append([make_record() for _ in range(3)])
        store.checkpoint(signing_key, clock, ORIGIN)  # newer, co-signed by nobody yet
    start = datetime(2027, 1, 1, tzinfo=UTC)
    directory = directory_for(list(IDENTITIES.values()), start, start + timedelta(days=365))
    witnessing = Witnessing(WitnessPolicy(ORIGIN, WITNESSES, 3), lambda: directory, clock)
    with console_kit(
        location, pseudonymiser, clock, signing_key, tmp_path / "v.json", witnessing=witnessing
    ) as kit:
        covered = kit.get("/records/2").text
        assert 'id="witnesses" data-met="yes"' in covered
        assert "BD, NLA, UWV co-signed this checkpoint (3 of 5" in covered
        assert '"tree_size": 5' in covered, "the proof leads to the witnessed checkpoint"
        newer = kit.get("/records/6").text
        assert 'id="witnesses" data-met="no"' in newer and "Not witnessed yet" in newer
        health = kit.get("/health").text
        assert "The checkpoint of <strong>5</strong> records is witnessed" in health
        # the newer checkpoint's 3 records, and the console's own records of these looks
        newer_count = re.search(r"(\d+) newer record\(s\) are not witnessed yet", health)
        assert newer_count and int(newer_count.group(1)) >= 3
