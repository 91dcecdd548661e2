"""``sigex keys``: create, show, rotate, revoke and shred the keys of a development federation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from sigex.clock import SystemClock
from sigex.identity.directory import PublicKeyRecord
from sigex.identity.federation import (
    RetentionOf,
    default_parties_file,
    default_state_dir,
    init_federation,
    load_directory,
    read_parties,
    rotate_party,
    shred_keys,
)
from sigex.roles import Role

_STATE_DIR = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the federation lives (default: $SIGEX_STATE_DIR or ~/.local/state/sigex).",
)


_POLICY_DIR = click.option(
    "--policy-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar="SIGEX_POLICY_DIR",
    default=None,
    help="The policy whose retention periods date key destruction"
    " (default: $SIGEX_POLICY_DIR, else the shipped policy).",
)


def _retention_of(policy_dir: Path | None) -> RetentionOf:
    """Each party's longest retention, from the compiled policy."""
    from sigex.policies.compiler import load_policy  # noqa: PLC0415 - only these commands need it

    policy = load_policy(policy_dir)
    return lambda code: timedelta(days=policy.longest_retention_days(code))


@click.group()
def keys() -> None:
    """Party identities: the federation CA, keys, certificates and the signed directory."""


@keys.command("init")
@_STATE_DIR
@click.option(
    "--parties",
    "parties_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The parties file (default: policies/parties.yaml here, else the installed one).",
)
@click.option("--force", is_flag=True, help="Replace an existing federation with a new one.")
@click.option(
    "--new-pseudonym-key",
    is_flag=True,
    help="Give an existing federation that never had one an audit pseudonym key"
    " (a lost key is restored from the backup instead).",
)
@click.option(
    "--broker-host",
    "broker_hosts",
    multiple=True,
    help="Another DNS name for the broker certificate (localhost is always there); repeatable.",
)
def init_command(
    state_dir: Path | None,
    parties_file: Path | None,
    force: bool,
    new_pseudonym_key: bool,
    broker_hosts: tuple[str, ...],
) -> None:
    """Create a development federation: CA, every party's keys and certificates, the directory."""
    result = init_federation(
        state_dir or default_state_dir(),
        read_parties(parties_file or default_parties_file()),
        SystemClock(),
        force=force,
        broker_hosts=broker_hosts,
        new_pseudonym_key=new_pseudonym_key,
    )
    if result.created:
        click.echo(f"created federation in {result.federation} for {', '.join(result.parties)}")
    else:
        click.echo(f"kept the existing federation in {result.federation} (use --force to replace)")
    for added in result.added:
        click.echo(f"added the missing {added}")


@keys.command("show")
@_STATE_DIR
def show_command(state_dir: Path | None) -> None:
    """List the parties of the signed directory and their keys."""
    directory = load_directory(state_dir or default_state_dir())
    click.echo(f"directory issued at {directory.issued_at.isoformat()}")
    for party in directory.parties:
        click.echo(
            f"{party.code:8} {party.oin} {party.kind:12} {party.name}"
            f" (certificate key generation {party.generation})"
        )
        for purpose, records in (("sign", party.signing_keys), ("encrypt", party.encryption_keys)):
            for record in records:
                click.echo(
                    f"    {purpose:7} {record.key_id.hex()} {record.not_before.isoformat()}"
                    f" .. {record.not_after.isoformat()} {_state(record)}"
                )


def _state(record: PublicKeyRecord) -> str:
    parts = [f"revoked {record.revoked_at.isoformat()}" if record.revoked_at else "valid"]
    if record.destroyed_at is not None:
        parts.append(f"destroyed {record.destroyed_at.isoformat()}")
    elif record.destroy_after is not None:
        parts.append(f"destroy after {record.destroy_after.isoformat()}")
    return ", ".join(parts)


@keys.command("rotate")
@_STATE_DIR
@_POLICY_DIR
@click.argument("party")
def rotate_command(state_dir: Path | None, policy_dir: Path | None, party: str) -> None:
    """New keys for PARTY; the old ones still verify what they signed before now.

    The old encryption key is dated for destruction at the end of the longest
    retention of the data sealed to it (see 'sigex keys shred').
    """
    retention = _retention_of(policy_dir)(party)
    entry = rotate_party(
        state_dir or default_state_dir(), party, SystemClock(), retention=retention
    )
    click.echo(f"rotated {entry.code}: signing key {entry.signing_keys[-1].key_id.hex()}")


@keys.command("revoke")
@_STATE_DIR
@_POLICY_DIR
@click.argument("party")
@click.option(
    "--bootstrap",
    default=None,
    help="Broker address: cut the old certificate's broker access right away by compiling "
    "the ACLs again for the new key generation (as ADMIN). Without it, run 'sigex provision'.",
)
def revoke_command(
    state_dir: Path | None, policy_dir: Path | None, party: str, bootstrap: str | None
) -> None:
    """Revoke PARTY's keys and TLS certificate from now on and issue new ones.

    The new certificate carries the next key generation. The broker refuses the
    old one once the ACLs are compiled for the new generation: at once with
    --bootstrap, else at the next 'sigex provision' (or round of 'sigex provision --watch').
    """
    state = state_dir or default_state_dir()
    clock = SystemClock()
    retention = _retention_of(policy_dir)(party)
    entry = rotate_party(state, party, clock, revoke=True, retention=retention)
    click.echo(
        f"revoked the old keys and certificate of {entry.code};"
        f" new signing key {entry.signing_keys[-1].key_id.hex()},"
        f" key generation {entry.generation}"
    )
    if bootstrap is None:
        click.echo(
            "the old certificate keeps its broker access until the ACLs are compiled again:"
            " run 'sigex provision' now"
        )
        return
    # imported here: the broker layer builds on sigex.identity, not the other way round
    from sigex.broker.provision import provision_cluster  # noqa: PLC0415
    from sigex.cli.options import broker_connection  # noqa: PLC0415
    from sigex.cli.provision import topology_now  # noqa: PLC0415
    from sigex.exchange.topology import ProvisioningDefaults  # noqa: PLC0415
    from sigex.policies.compiler import load_policy  # noqa: PLC0415

    topology = topology_now(load_policy(policy_dir), ProvisioningDefaults(), state, clock.now())
    connection = broker_connection(Role.ADMIN, state_dir=state, bootstrap=bootstrap)
    report = provision_cluster(connection, topology, acls_only=True)
    click.echo(
        f"broker ACLs compiled for generation {entry.generation}: {len(report.acls_created)}"
        f" created, {len(report.acls_deleted)} deleted; the old certificate has no access left"
    )


@keys.command("shred")
@_STATE_DIR
@_POLICY_DIR
@click.argument("parties", nargs=-1)
def shred_command(
    state_dir: Path | None, policy_dir: Path | None, parties: tuple[str, ...]
) -> None:
    """Destroy retired encryption keys whose destruction date has passed (all parties or PARTIES).

    Each key file is overwritten and removed, and the signed directory records
    when; what was sealed to the key can never be opened again. Run it daily.
    """
    shredded = shred_keys(
        state_dir or default_state_dir(),
        SystemClock(),
        _retention_of(policy_dir),
        parties=parties or None,
    )
    for key in shredded:
        click.echo(
            f"destroyed {key.party} encryption key {key.key_id.hex()}"
            f" (due {key.destroy_after.isoformat()})"
        )
    if not shredded:
        click.echo("no retired encryption key is due for destruction")
