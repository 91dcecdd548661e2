"""``sigex keys``: create, show, rotate and revoke the keys of a development federation."""

from __future__ import annotations

from pathlib import Path

import click

from sigex.clock import SystemClock
from sigex.identity.federation import (
    default_parties_file,
    default_state_dir,
    init_federation,
    load_directory,
    read_parties,
    rotate_party,
)

_STATE_DIR = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the federation lives (default: $SIGEX_STATE_DIR or ~/.local/state/sigex).",
)


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
    "--broker-host",
    "broker_hosts",
    multiple=True,
    help="Another DNS name for the broker certificate (localhost is always there); repeatable.",
)
def init_command(
    state_dir: Path | None, parties_file: Path | None, force: bool, broker_hosts: tuple[str, ...]
) -> None:
    """Create a development federation: CA, every party's keys and certificates, the directory."""
    result = init_federation(
        state_dir or default_state_dir(),
        read_parties(parties_file or default_parties_file()),
        SystemClock(),
        force=force,
        broker_hosts=broker_hosts,
    )
    if result.created:
        click.echo(f"created federation in {result.federation} for {', '.join(result.parties)}")
    else:
        click.echo(f"kept the existing federation in {result.federation} (use --force to replace)")


@keys.command("show")
@_STATE_DIR
def show_command(state_dir: Path | None) -> None:
    """List the parties of the signed directory and their keys."""
    directory = load_directory(state_dir or default_state_dir())
    click.echo(f"directory issued at {directory.issued_at.isoformat()}")
    for party in directory.parties:
        click.echo(f"{party.code:8} {party.oin} {party.kind:12} {party.name}")
        for purpose, records in (("sign", party.signing_keys), ("encrypt", party.encryption_keys)):
            for record in records:
                state = f"revoked {record.revoked_at.isoformat()}" if record.revoked_at else "valid"
                click.echo(
                    f"    {purpose:7} {record.key_id.hex()} {record.not_before.isoformat()}"
                    f" .. {record.not_after.isoformat()} {state}"
                )


@keys.command("rotate")
@_STATE_DIR
@click.argument("party")
def rotate_command(state_dir: Path | None, party: str) -> None:
    """New keys for PARTY; the old ones still verify what they signed before now."""
    entry = rotate_party(state_dir or default_state_dir(), party, SystemClock())
    click.echo(f"rotated {entry.code}: signing key {entry.signing_keys[-1].key_id.hex()}")


@keys.command("revoke")
@_STATE_DIR
@click.argument("party")
def revoke_command(state_dir: Path | None, party: str) -> None:
    """Revoke PARTY's current keys from now on and issue new ones."""
    entry = rotate_party(state_dir or default_state_dir(), party, SystemClock(), revoke=True)
    click.echo(
        f"revoked the old keys of {entry.code};"
        f" new signing key {entry.signing_keys[-1].key_id.hex()}"
    )
