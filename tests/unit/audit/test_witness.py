"""Witnesses of the access log: a log operator who shows two histories is caught.

Each attack is played by an operator holding the audit key and the database, against
five witnesses (NLA, UWV, BD, RVIG, GM0363) of which the policy needs three. The logs
are real stores (SQLite files); a fork, a rollback and a dropped record are made the
way an operator with the database would make them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sigex.audit.checkpoint import Checkpoint
from sigex.audit.cosignature import Cosignature
from sigex.audit.errors import WitnessError, WitnessPolicyError
from sigex.audit.store import AccessLogStore
from sigex.audit.witness import AlarmKind, Witness, WitnessAlarm, check_evidence
from sigex.audit.witness_policy import WitnessPolicy, load_witness_policy
from sigex.clock import FixedClock
from sigex.exchange.access_record import AccessRecord
from sigex.identity import PartyDirectory, PartyIdentity
from sigex.identity.testing import directory_for, fixed_identity
from tests.witnessing import copy_sqlite

from .conftest import RecordFactory

WITNESSES = ("NLA", "UWV", "BD", "RVIG", "GM0363")
ORIGIN = "sigex.test/access-log"
POLICY = WitnessPolicy(ORIGIN, WITNESSES, 3)


class Lab:
    """The audit key, five witnesses, the directory that lists them, and a clock."""

    def __init__(self, root: Path, make_record: RecordFactory) -> None:
        self.root = root
        self.make_record = make_record
        self.log_key = Ed25519PrivateKey.generate()
        self.clock = FixedClock(datetime(2027, 3, 1, 9, 0, tzinfo=UTC))
        self.identities = {code: fixed_identity(code, b"witness-test") for code in WITNESSES}
        start = datetime(2027, 1, 1, tzinfo=UTC)
        self.directory: PartyDirectory = directory_for(
            list(self.identities.values()), start, start + timedelta(days=365)
        )
        self.witnesses = {code: self.witness(code) for code in WITNESSES}

    def witness(self, code: str) -> Witness:
        identity: PartyIdentity = self.identities[code]
        return Witness(
            party=code,
            signing_key=identity.signing_key,
            log_keys=self.log_key.public_key(),
            origin=ORIGIN,
            folder=self.root / "witness" / code,
            clock=self.clock,
        )

    def log(self, name: str, records: int) -> Path:
        path = self.root / f"{name}.sqlite"
        with AccessLogStore.open(str(path)) as store:
            store.append([self.make_record() for _ in range(records)])
        return path

    def grow(self, path: Path, records: list[AccessRecord] | int) -> Checkpoint:
        added = (
            records if isinstance(records, list) else [self.make_record() for _ in range(records)]
        )
        with AccessLogStore.open(str(path)) as store:
            store.append(added)
            self.clock.advance(timedelta(minutes=1))
            return store.checkpoint(self.log_key, self.clock, ORIGIN)

    def show(self, path: Path, code: str, checkpoint: Checkpoint) -> Cosignature:
        """The operator serves ``checkpoint`` and a proof from the store at ``path``."""
        witness = self.witnesses[code]
        span = witness.proof_span(checkpoint)
        proof: list[bytes] | None = []
        if span is not None:
            with AccessLogStore.open(str(path)) as store:
                try:
                    proof = store.consistency_proof(*span)
                except Exception:
                    proof = None
        return witness.observe(checkpoint, proof)

    def verdict(self, checkpoint: Checkpoint, cosignatures: list[Cosignature]) -> list[str]:
        found = POLICY.verdict(checkpoint, cosignatures, self.directory, self.clock.now())
        return list(found.signed_by) if found.met else []


@pytest.fixture
def lab(tmp_path: Path, make_record: RecordFactory) -> Lab:
    return Lab(tmp_path, make_record)


def _alarm_files(lab: Lab, code: str) -> list[dict[str, object]]:
    folder = lab.root / "witness" / code / "alarms"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def test_an_honest_log_is_co_signed_by_every_witness_and_meets_the_policy(lab: Lab) -> None:
    log = lab.log("honest", 0)
    for size in (5, 9, 30):
        checkpoint = lab.grow(log, size)
        cosignatures = [lab.show(log, code, checkpoint) for code in WITNESSES]
        assert lab.verdict(checkpoint, cosignatures) == sorted(WITNESSES)
    assert all(w.last is not None and w.last.tree_size == 44 for w in lab.witnesses.values())


def test_a_split_view_is_caught_by_the_witness_shown_both_and_cannot_reach_a_quorum(
    lab: Lab, make_record: RecordFactory
) -> None:
    """Attack (a): two checkpoints of one size, each shown to a different set of witnesses."""
    log = lab.log("shared", 0)
    base = lab.grow(log, 10)
    for code in WITNESSES:
        lab.show(log, code, base)
    fork = lab.root / "fork.sqlite"
    copy_sqlite(log, fork)
    told_to_auditors = lab.grow(log, 5)  # the history the auditors see
    told_to_subject = lab.grow(fork, 5)  # another one, without this person's records
    assert told_to_auditors.tree_size == told_to_subject.tree_size
    assert told_to_auditors.root != told_to_subject.root

    first = [lab.show(log, code, told_to_auditors) for code in ("NLA", "UWV", "BD")]
    second = [lab.show(fork, code, told_to_subject) for code in ("RVIG", "GM0363")]
    with pytest.raises(WitnessAlarm) as raised:
        lab.show(fork, "BD", told_to_subject)  # BD is in both quorums, and refuses the second

    assert lab.verdict(told_to_auditors, first) == ["BD", "NLA", "UWV"]
    assert lab.verdict(told_to_subject, second) == [], "two co-signatures are not a quorum"
    alarm = raised.value.alarm
    assert alarm.kind is AlarmKind.SPLIT_VIEW
    assert (alarm.earlier, alarm.later) == (told_to_auditors, told_to_subject)
    assert check_evidence(alarm, lab.log_key.public_key()) is None, "the evidence proves it"
    kept = _alarm_files(lab, "BD")
    assert [a["kind"] for a in kept] == ["SPLIT_VIEW"]
    assert {kept[0]["earlier"]["note"], kept[0]["later"]["note"]} == {  # type: ignore[index]
        told_to_auditors.note_text(),
        told_to_subject.note_text(),
    }


def test_a_split_view_is_caught_after_the_witness_restarts(lab: Lab) -> None:
    """The witness's memory is on disk before it co-signs: a restart does not forget it."""
    log = lab.log("log", 4)
    fork = lab.root / "fork.sqlite"
    copy_sqlite(log, fork)
    one, other = lab.grow(log, 3), lab.grow(fork, 3)
    lab.show(log, "NLA", one)
    lab.witnesses["NLA"] = lab.witness("NLA")  # a new process, the same folder
    with pytest.raises(WitnessAlarm):
        lab.show(fork, "NLA", other)


def test_a_rolled_back_and_re_signed_log_is_caught(lab: Lab) -> None:
    """Attack (b): the operator restores an older copy of the database and signs again."""
    log = lab.log("log", 0)
    lab.grow(log, 20)
    backup = lab.root / "backup.sqlite"
    copy_sqlite(log, backup)
    cosigned = lab.grow(log, 15)  # records the operator wants gone
    for code in WITNESSES:
        lab.show(log, code, cosigned)

    copy_sqlite(backup, log)  # the rollback
    rolled_back = lab.grow(log, 0)
    with pytest.raises(WitnessAlarm) as raised:
        lab.show(log, "UWV", rolled_back)
    assert raised.value.alarm.kind is AlarmKind.ROLLBACK
    assert check_evidence(raised.value.alarm, lab.log_key.public_key()) is None

    regrown = lab.grow(log, 30)  # past the co-signed size, with other records
    alarms = []
    for code in WITNESSES:
        with pytest.raises(WitnessAlarm) as caught:
            lab.show(log, code, regrown)
        alarms.append(caught.value.alarm)
    assert {a.kind for a in alarms} == {AlarmKind.INCONSISTENT}
    assert all(check_evidence(a, lab.log_key.public_key()) is None for a in alarms)
    assert lab.verdict(regrown, []) == []


def test_a_dropped_record_and_a_re_signed_log_is_caught(lab: Lab) -> None:
    """Attack (c): the operator removes one record and rebuilds the log from there."""
    records = [lab.make_record() for _ in range(40)]
    log = lab.root / "log.sqlite"
    cosigned = lab.grow(log, records)
    for code in WITNESSES:
        lab.show(log, code, cosigned)

    rewritten = lab.root / "rewritten.sqlite"  # the same records but the 17th
    resigned = lab.grow(rewritten, [*records[:17], *records[18:], lab.make_record()])
    assert resigned.tree_size == cosigned.tree_size
    with pytest.raises(WitnessAlarm) as same_size:
        lab.show(rewritten, "RVIG", resigned)
    assert same_size.value.alarm.kind is AlarmKind.SPLIT_VIEW

    later = lab.grow(rewritten, 5)
    with pytest.raises(WitnessAlarm) as larger:
        lab.show(rewritten, "GM0363", later)
    assert larger.value.alarm.kind is AlarmKind.INCONSISTENT
    assert check_evidence(larger.value.alarm, lab.log_key.public_key()) is None


def test_a_checkpoint_not_signed_by_the_log_is_refused_without_an_alarm(lab: Lab) -> None:
    """Anyone can send junk; only the log's own signature makes evidence."""
    log = lab.log("log", 3)
    with AccessLogStore.open(str(log)) as store:
        forged = store.checkpoint(Ed25519PrivateKey.generate(), lab.clock, ORIGIN)
        other_log = store.checkpoint(lab.log_key, lab.clock, "sigex.test/another-log")
    for checkpoint, reason in ((forged, "not signed"), (other_log, "not a checkpoint of")):
        with pytest.raises(WitnessError, match=reason):
            lab.show(log, "NLA", checkpoint)
    assert _alarm_files(lab, "NLA") == []
    assert lab.witnesses["NLA"].last is None


def test_a_growing_log_without_a_proof_is_not_co_signed_and_not_alarmed(lab: Lab) -> None:
    log = lab.log("log", 0)
    witness = lab.witnesses["BD"]
    witness.observe(lab.grow(log, 3), [])
    with pytest.raises(WitnessError, match="no consistency proof"):
        witness.observe(lab.grow(log, 3), None)
    assert witness.last is not None and witness.last.tree_size == 3
    assert _alarm_files(lab, "BD") == []


def test_an_older_checkpoint_that_is_a_prefix_is_not_co_signed_again_nor_alarmed(
    lab: Lab,
) -> None:
    log = lab.log("log", 0)
    old = lab.grow(log, 4)
    new = lab.grow(log, 4)
    lab.show(log, "NLA", old)
    lab.show(log, "NLA", new)
    with pytest.raises(WitnessError, match="older checkpoint"):
        lab.show(log, "NLA", old)  # a stale copy, replayed: proven a prefix
    assert _alarm_files(lab, "NLA") == []


def test_a_damaged_witness_state_stops_the_witness(lab: Lab) -> None:
    log = lab.log("log", 2)
    lab.show(log, "UWV", lab.grow(log, 1))
    state = lab.witnesses["UWV"].state_file
    state.write_text(state.read_text()[:-20])
    with pytest.raises(WitnessError, match="damaged"):
        lab.witness("UWV")


def test_evidence_that_proves_nothing_is_said_to_prove_nothing(lab: Lab) -> None:
    log = lab.log("log", 6)
    fork = lab.root / "fork.sqlite"
    copy_sqlite(log, fork)
    one, other = lab.grow(log, 2), lab.grow(fork, 2)
    lab.show(log, "NLA", one)
    with pytest.raises(WitnessAlarm) as raised:
        lab.show(fork, "NLA", other)
    alarm = raised.value.alarm
    key = lab.log_key.public_key()
    assert check_evidence(alarm, key) is None
    assert check_evidence(alarm, Ed25519PrivateKey.generate().public_key()) is not None
    same = dataclasses.replace(alarm, later=alarm.earlier)
    assert check_evidence(same, key) == "not two different trees of one size"
    grown = lab.grow(log, 3)
    with AccessLogStore.open(str(log)) as store:
        honest_proof = tuple(store.consistency_proof(one.tree_size, grown.tree_size))
    consistent = dataclasses.replace(
        alarm, kind=AlarmKind.INCONSISTENT, later=grown, proof=honest_proof
    )
    assert check_evidence(consistent, key) == "the log's proof shows the two trees are consistent"


def test_the_shipped_witness_policy_is_valid_for_the_shipped_parties() -> None:
    from sigex.identity.federation import read_parties
    from sigex.policies.compiler import POLICY_DIRECTORY

    policy = load_witness_policy()
    parties = read_parties(POLICY_DIRECTORY / "parties.yaml")
    policy.check_parties({p.code: p.kind for p in parties})
    assert 2 * policy.quorum > len(policy.witnesses)


@pytest.mark.parametrize(
    ("witnesses", "quorum"),
    [(WITNESSES, 2), (WITNESSES, 6), (("NLA", "NLA", "UWV"), 2), ((), 1), (WITNESSES, True)],
)
def test_a_policy_that_cannot_prevent_a_split_view_is_refused(
    witnesses: tuple[str, ...], quorum: int
) -> None:
    with pytest.raises(WitnessPolicyError):
        WitnessPolicy(ORIGIN, witnesses, quorum)


def test_a_policy_naming_the_services_or_strangers_is_refused() -> None:
    kinds = {"NLA": "authority", "UWV": "authority", "AUDIT": "service"}
    with pytest.raises(WitnessPolicyError, match="cannot witness"):
        WitnessPolicy(ORIGIN, ("NLA", "UWV", "AUDIT"), 2).check_parties(kinds)
    with pytest.raises(WitnessPolicyError, match="unknown"):
        WitnessPolicy(ORIGIN, ("NLA", "UWV", "XYZ"), 2).check_parties(kinds)


def test_cosignatures_of_strangers_revoked_keys_or_other_trees_do_not_count(lab: Lab) -> None:
    log = lab.log("log", 0)
    checkpoint = lab.grow(log, 8)
    other = lab.grow(log, 1)
    stranger = fixed_identity("SVB", b"x")
    from sigex.audit.cosignature import cosign

    at = lab.clock.now()
    valid = [
        cosign(checkpoint, code, lab.identities[code].signing_key, at) for code in WITNESSES[:2]
    ]
    not_a_witness = cosign(checkpoint, "SVB", stranger.signing_key, at)
    wrong_key = cosign(checkpoint, "BD", stranger.signing_key, at)
    of_other_tree = cosign(other, "RVIG", lab.identities["RVIG"].signing_key, at)
    verdict = POLICY.verdict(
        checkpoint, [*valid, not_a_witness, wrong_key, of_other_tree], lab.directory, at
    )
    assert verdict.signed_by == ("NLA", "UWV") and not verdict.met
    assert verdict.failed == ("BD", "RVIG")

    start = datetime(2027, 1, 1, tzinfo=UTC)
    revoked: Callable[[], PartyDirectory] = lambda: directory_for(  # noqa: E731
        list(lab.identities.values()),
        start,
        start + timedelta(days=365),
        revoked_at=at - timedelta(days=1),
        revoked_codes=frozenset({"NLA"}),
    )
    after_revocation = POLICY.verdict(checkpoint, valid, revoked(), at)
    assert after_revocation.signed_by == ("UWV",)


def test_a_smaller_checkpoint_of_another_history_is_a_rollback_even_with_a_proof(
    lab: Lab,
) -> None:
    """The operator shows a smaller tree of a rewritten history, with the honest log's proof."""
    log = lab.log("log", 0)
    small_honest = lab.grow(log, 6)
    large = lab.grow(log, 6)
    witness = lab.witnesses["RVIG"]
    lab.show(log, "RVIG", large)
    rewritten = lab.root / "rewritten.sqlite"
    small_rewritten = lab.grow(rewritten, 6)
    assert small_rewritten.tree_size == small_honest.tree_size
    with AccessLogStore.open(str(log)) as store:
        honest_proof = store.consistency_proof(6, 12)
    with pytest.raises(WitnessAlarm) as raised:
        witness.observe(small_rewritten, honest_proof)
    assert raised.value.alarm.kind is AlarmKind.ROLLBACK
    assert check_evidence(raised.value.alarm, lab.log_key.public_key()) is None


def test_two_witness_processes_on_one_folder_cannot_both_co_sign(lab: Lab) -> None:
    log = lab.log("log", 3)
    checkpoint = lab.grow(log, 2)
    first, second = lab.witnesses["BD"], lab.witness("BD")
    with first._exclusive(), pytest.raises(WitnessError, match="another witness process"):
        second.observe(checkpoint, [])
    second.observe(checkpoint, [])  # once the first lets go


def test_a_conflict_shown_again_keeps_one_piece_of_evidence(lab: Lab) -> None:
    log = lab.log("log", 4)
    fork = lab.root / "fork.sqlite"
    copy_sqlite(log, fork)
    one, other = lab.grow(log, 2), lab.grow(fork, 2)
    lab.show(log, "UWV", one)
    with pytest.raises(WitnessAlarm) as first:
        lab.show(fork, "UWV", other)
    with pytest.raises(WitnessAlarm) as again:
        lab.show(fork, "UWV", other)
    assert not first.value.repeated and again.value.repeated
    assert again.value.evidence == first.value.evidence
    assert len(_alarm_files(lab, "UWV")) == 1


def test_a_made_up_rollback_alarm_against_an_honest_log_proves_nothing(lab: Lab) -> None:
    """Any party may publish an alarm; two genuine checkpoints of a growing log are not one."""
    from sigex.audit.witness import Alarm
    from sigex.audit.witness_check import check_witnesses
    from sigex.audit.witness_policy import Witnessing

    log = lab.log("log", 0)
    small, large = lab.grow(log, 10), lab.grow(log, 10)
    for code in ("NLA", "UWV", "BD"):
        lab.show(log, code, large)
    made_up = Alarm(AlarmKind.ROLLBACK, "RVIG", lab.clock.now(), large, small, None)
    assert check_evidence(made_up, lab.log_key.public_key()) is None, "alone it looks proven"
    witnessing = Witnessing(POLICY, lambda: lab.directory, lab.clock)
    with AccessLogStore.open(str(log)) as store:
        for code in ("NLA", "UWV", "BD"):
            cosignature = lab.show(log, code, large)
            store.add_cosignature(large, cosignature)
        report = check_witnesses(store, witnessing, lab.log_key.public_key(), [("topic", made_up)])
    assert report.witnessed is not None
    assert report.problems(require_witnessed=True) == []
    assert report.alarms[0].unproven == "the log holds both trees, so they are consistent"


def test_a_witness_co_signing_every_round_leaves_one_cosignature_per_witness(lab: Lab) -> None:
    log = lab.log("log", 5)
    checkpoint = lab.grow(log, 1)
    with AccessLogStore.open(str(log)) as store:
        for _ in range(20):
            lab.clock.advance(timedelta(seconds=5))
            for code in WITNESSES:
                store.add_cosignature(checkpoint, lab.show(log, code, checkpoint))
        kept = store.cosignatures(checkpoint)
    assert sorted(c.witness for c in kept) == sorted(WITNESSES)
    assert {c.timestamp for c in kept} == {int(lab.clock.now().timestamp())}


def test_a_cosignature_from_the_future_or_beyond_year_9999_does_not_count(lab: Lab) -> None:
    from sigex.audit.cosignature import cosign

    log = lab.log("log", 2)
    checkpoint = lab.grow(log, 1)
    signing = lab.identities["NLA"].signing_key
    ahead = cosign(checkpoint, "NLA", signing, lab.clock.now() + timedelta(hours=1))
    verdict = POLICY.verdict(checkpoint, [ahead], lab.directory, lab.clock.now())
    assert verdict.signed_by == ()
    far = Cosignature("NLA", ahead.key_id, 2**62, ahead.signature)
    assert POLICY.verdict(checkpoint, [far], lab.directory, lab.clock.now()).signed_by == ()


def test_malformed_state_or_evidence_is_a_typed_error_not_a_traceback(lab: Lab) -> None:
    from sigex.audit.errors import CheckpointError
    from sigex.audit.witness import Alarm

    folder = lab.root / "witness" / "NLA"
    folder.mkdir(parents=True)
    (folder / "last-checkpoint.json").write_text("null")
    with pytest.raises(WitnessError, match="damaged"):
        lab.witness("NLA")
    malformed: list[object] = [{"earlier": [], "later": []}, [], None, {"kind": "SPLIT_VIEW"}]
    for values in malformed:
        with pytest.raises(CheckpointError, match="alarm format"):
            Alarm.from_dict(values)
