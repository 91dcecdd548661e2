"""Crypto-shredding: retired encryption keys are destroyed after the longest retention.

A delivery sealed for GM0363 opens while its key is retired but kept; once
``shred_keys`` has run past the destruction date the key file is gone, the
signed directory says so, and the old delivery no longer opens (KeyDestroyed),
while the access log, which never depended on those keys, still verifies.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from sigex.audit.store import AccessLogStore, RecordFilter
from sigex.audit.verify import verify_store
from sigex.cli import main
from sigex.clock import FixedClock, SystemClock
from sigex.envelope import (
    EnvelopeError,
    Forwarding,
    KeyDestroyed,
    Opener,
    OutgoingRecord,
    Sealer,
    project,
)
from sigex.envelope.testing import (
    IN_TOPIC,
    OUT_TOPIC,
    delivery_context,
    sample_fields,
    submission_context,
)
from sigex.exchange.access_record import AccessRecord
from sigex.exchange.pseudonyms import SubjectPseudonymiser, load_pseudonym_key
from sigex.identity import (
    PartyDirectory,
    init_federation,
    load_directory,
    load_party,
    read_parties,
    rotate_party,
    shred_keys,
)
from sigex.identity import _primitives as primitives
from sigex.identity._primitives import Ed25519PublicKey
from sigex.policies.compiler import load_policy
from tests.access_records import delivered_record

REPOSITORY = Path(__file__).resolve().parents[3]
PARTIES_FILE = REPOSITORY / "policies" / "parties.yaml"
START = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
BSN = "123456782"


def _retention(code: str) -> timedelta:
    return timedelta(days=load_policy().longest_retention_days(code))


def _deliver(state: Path, clock: FixedClock) -> bytes:
    """RVIG submits, the gateway opens and re-seals for GM0363: one delivery envelope."""
    directory = load_directory(state)
    sealer = Sealer(identity=load_party(state, "RVIG"), directory=directory, clock=clock)
    (submission,) = sealer.seal([OutgoingRecord.of(submission_context(), sample_fields(0))])
    gateway = load_party(state, "GATEWAY")
    opened = Opener(identity=gateway, directory=directory, clock=clock).open_submission(
        submission, topic=IN_TOPIC
    )
    projected = project(opened, {"address", "moves_last_year"})
    decision = b"agreement=AGR-LAA-0001;recipient=GM0363"
    (delivery,) = Sealer(identity=gateway, directory=directory, clock=clock).forward(
        [Forwarding(projected, delivery_context(), decision)]
    )
    return delivery


def _opener(state: Path, clock: FixedClock) -> Opener:
    return Opener(
        identity=load_party(state, "GM0363"), directory=load_directory(state), clock=clock
    )


def _record(state: Path, clock: FixedClock) -> AccessRecord:
    return delivered_record(
        1,
        SubjectPseudonymiser(load_pseudonym_key(state)).pseudonym(BSN),
        occurred_at=clock.now(),
        agreement_id="AGR-LAA-0001",
        disclosed_fields=("address", "moves_last_year"),
    )


def _audit_keys(directory: PartyDirectory) -> list[Ed25519PublicKey]:
    return [primitives.verifying_key(r.public_key) for r in directory.party("AUDIT").signing_keys]


def test_the_retention_of_a_party_s_keys_comes_from_its_agreements() -> None:
    policy = load_policy()
    for code in ("GM0363", "NLA"):
        days = max(a.retention_days for a in policy.agreements_for_recipient(code))
        assert policy.longest_retention_days(code) == days > 0
    longest = max(a.retention_days for a in policy.agreements)
    assert policy.longest_retention_days("GATEWAY") == longest  # opens every submission
    assert policy.longest_retention_days("AUDIT") == longest


def test_old_deliveries_no_longer_open_after_shredding_but_the_access_log_verifies(
    tmp_path: Path,
) -> None:
    clock = FixedClock(START)
    state = tmp_path / "state"
    init_federation(state, read_parties(PARTIES_FILE), clock)
    delivery = _deliver(state, clock)
    long_lived = _opener(state, clock)  # a subscriber that keeps running through it all
    assert long_lived.open_delivery(delivery, topic=OUT_TOPIC).disclosed

    with AccessLogStore.open(str(tmp_path / "audit.sqlite")) as store:
        store.append([_record(state, clock)])
        store.checkpoint(load_party(state, "AUDIT").signing_key, clock)

    clock.advance(timedelta(days=30))
    rotated_at = clock.now()
    for code in ("GM0363", "AUDIT"):  # the audit service's keys go too: the log must not care
        rotate_party(state, code, clock, retention=_retention(code))
    old = load_directory(state).party("GM0363").encryption_keys[0]
    assert old.not_after == rotated_at
    assert old.destroy_after == rotated_at + _retention("GM0363")
    assert not old.destroyed
    retired = state / "federation" / "parties" / "GM0363" / "retired"
    retired_file = retired / f"encryption-{old.key_id.hex()}.key"
    assert retired_file.is_file()

    # before the destruction date nothing is destroyed and the old delivery still opens
    clock.current = old.destroy_after - timedelta(seconds=1)
    assert shred_keys(state, clock) == ()
    assert _opener(state, clock).open_delivery(delivery, topic=OUT_TOPIC).disclosed

    clock.current = old.destroy_after + timedelta(days=1)
    shredded = shred_keys(state, clock)
    assert {(k.party, k.key_id) for k in shredded} >= {("GM0363", old.key_id)}
    assert not retired_file.exists()

    directory = load_directory(state)  # re-signed by the operator, signature checked
    record = directory.party("GM0363").encryption_keys[0]
    assert record.destroyed_at == clock.now()
    assert not directory.party("GM0363").encryption_keys[-1].destroyed  # the current key stays
    assert load_party(state, "GM0363").retired_encryption_keys == ()

    with pytest.raises(KeyDestroyed, match="destroyed encryption key") as raised:
        _opener(state, clock).open_delivery(delivery, topic=OUT_TOPIC)
    assert isinstance(raised.value, EnvelopeError)
    long_lived.replace_directory(directory)  # it held the key in memory: it forgets it now
    with pytest.raises(KeyDestroyed):
        long_lived.open_delivery(delivery, topic=OUT_TOPIC)

    with AccessLogStore.open(str(tmp_path / "audit.sqlite")) as store:
        report = verify_store(store, public_key=_audit_keys(directory))
        assert report.ok, report.summary()
        assert report.tree_size == 1 and report.signatures_checked
        subject = _record(state, clock).subject
        found = list(store.query_all(RecordFilter(subject=subject)))
    assert [r.record.message_id for r in found] == ["00000000-0000-0000-0000-000000000001"]

    assert shred_keys(state, clock) == ()  # a second run has nothing left to do


def test_a_key_retired_before_destruction_dates_existed_is_dated_from_the_policy(
    tmp_path: Path,
) -> None:
    clock = FixedClock(START)
    state = tmp_path / "state"
    init_federation(state, read_parties(PARTIES_FILE), clock)
    rotate_party(state, "NLA", clock)  # as an older sigex did: no destruction date
    old = load_directory(state).party("NLA").encryption_keys[0]
    assert old.destroy_after is None
    clock.advance(_retention("NLA") + timedelta(days=1))
    assert shred_keys(state, clock) == ()  # without a retention it is kept, not guessed
    shredded = shred_keys(state, clock, _retention, parties=["NLA"])
    assert [(k.party, k.key_id) for k in shredded] == [("NLA", old.key_id)]
    assert shredded[0].destroy_after == old.not_after + _retention("NLA")


def test_keys_shred_on_the_command_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    long_ago = FixedClock(datetime(2019, 1, 1, tzinfo=UTC))
    init_federation(state, read_parties(PARTIES_FILE), long_ago)
    rotate_party(state, "GM0363", long_ago, retention=_retention("GM0363"))
    runner = CliRunner()
    shown = runner.invoke(main, ["keys", "show", "--state-dir", str(state)])
    assert shown.exit_code == 0, shown.output
    assert "destroy after 20" in shown.output
    result = runner.invoke(main, ["keys", "shred", "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    old = load_directory(state).party("GM0363").encryption_keys[0]
    assert f"destroyed GM0363 encryption key {old.key_id.hex()}" in result.output
    assert old.destroyed
    again = runner.invoke(main, ["keys", "shred", "--state-dir", str(state)])
    assert "no retired encryption key is due" in again.output
    shown = runner.invoke(main, ["keys", "show", "--state-dir", str(state)])
    assert "destroyed 20" in shown.output


def test_keys_rotate_dates_the_old_key_from_the_policy(tmp_path: Path) -> None:
    state = tmp_path / "state"
    init_federation(state, read_parties(PARTIES_FILE), SystemClock())
    result = CliRunner().invoke(main, ["keys", "rotate", "GM0363", "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    old = load_directory(state).party("GM0363").encryption_keys[0]
    assert old.destroy_after == old.not_after + _retention("GM0363")
