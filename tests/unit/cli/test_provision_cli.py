"""``sigex provision --dry-run``: the ACLs of a moment, for the federation's key generations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from sigex.cli.provision import provision, seconds_until_next_round
from sigex.clock import FixedClock
from sigex.exchange.topology import Topology
from sigex.identity import init_federation, read_parties, rotate_party

REPO = Path(__file__).resolve().parents[3]
JUSTIS_WRITES = "acl User:JUSTIS.g1 write topic:literal:sigex.waadi.admission-violation.in.JUSTIS"


def _dry_run(*arguments: str) -> str:
    result = CliRunner().invoke(provision, ["--dry-run", *arguments], env={"SIGEX_STATE_DIR": ""})
    assert result.exit_code == 0, result.output
    return result.output


def test_dry_run_at_a_moment_shows_only_the_agreements_in_force(tmp_path: Path) -> None:
    empty = str(tmp_path / "no-federation")
    before = _dry_run("--at", "2026-12-03", "--state-dir", empty, "--plaintext")
    after = _dry_run("--at", "2027-02-01T10:00:00", "--state-dir", empty, "--plaintext")
    assert JUSTIS_WRITES not in before
    assert JUSTIS_WRITES in after
    assert "topic sigex.waadi.admission-violation.in.JUSTIS " in before
    assert "the ACLs change next at 2026-12-31T23:00:00+00:00" in before


def test_dry_run_grants_the_revoked_partys_new_generation(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2026, 12, 3, tzinfo=UTC))
    init_federation(tmp_path, read_parties(REPO / "policies" / "parties.yaml"), clock)
    rotate_party(tmp_path, "NLA", clock, revoke=True)
    shown = _dry_run("--at", "2027-02-01", "--state-dir", str(tmp_path))
    assert "acl User:NLA.g2 read topic:literal:sigex.payroll.bsn-mismatch.out.NLA" in shown
    assert "User:NLA.g1 " not in shown
    assert "acl User:UWV.g1 write topic:literal:sigex.payroll.bsn-mismatch.in.UWV" in shown


def test_watch_sleeps_until_the_next_change_at_most_the_interval() -> None:
    now = datetime(2026, 12, 31, 22, 59, 50, tzinfo=UTC)
    soon = Topology((), frozenset(), compiled_at=now, next_change=now + timedelta(seconds=10))
    assert seconds_until_next_round(soon, now, 30.0) == 10.0
    assert seconds_until_next_round(soon, now, 5.0) == 5.0
    never = Topology((), frozenset(), compiled_at=now, next_change=None)
    assert seconds_until_next_round(never, now, 30.0) == 30.0
