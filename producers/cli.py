"""``sigex publish``: publish signals from a JSON-lines file as one party."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from broker.protocol import from_json_record
from policies.compiler import load_policy
from producers.publisher import Publisher, load_or_create_record_key
from schemas.catalogue import load_catalogue
from sigex.cli_support import read_json_lines, settings_with
from sigex.identity import load_directory, load_party
from sigex.transport import connection_for


@click.command()
@click.option("--as", "party", required=True, help="The party publishing (its code, e.g. UWV).")
@click.option("--signal", required=True, help="Signal name, e.g. payroll.bsn-mismatch.")
@click.option("--purpose", required=True, help="The one purpose these signals are sent for.")
@click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False), default=None)
@click.option("--bootstrap", default=None, help="Broker address [default: SIGEX_BOOTSTRAP].")
@click.option("--plaintext", is_flag=True, help="No TLS (local development only).")
@click.option("--batch", default=256, show_default=True, help="Records per signed batch.")
@click.argument("records", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def publish(
    party: str,
    signal: str,
    purpose: str,
    state_dir: Path | None,
    bootstrap: str | None,
    plaintext: bool,
    batch: int,
    records: Path,
) -> None:
    """Publish RECORDS (one JSON object per line; dates as ISO 8601)."""
    settings = settings_with(state_dir, bootstrap)
    catalogue = load_catalogue()
    spec = catalogue.signal(signal)
    published = refused = 0
    with Publisher(
        identity=load_party(settings.state_dir, party),
        directory=load_directory(settings.state_dir),
        policy=load_policy(settings.policy_dir),
        catalogue=catalogue,
        connection=connection_for(settings, party, plaintext=plaintext),
        record_key=load_or_create_record_key(settings.state_dir, party),
    ) as publisher:
        pending: list[tuple[int, dict[str, object]]] = []

        def flush() -> None:
            nonlocal published, refused
            if not pending:
                return
            result = publisher.publish(signal, purpose, [r for _, r in pending])
            published += len(result.published)
            for refusal in result.refused:
                line = pending[refusal.index][0]
                refused += 1
                click.echo(
                    f"line {line}: refused: "
                    + "; ".join(f"{r.code}: {r.text}" for r in refusal.reasons),
                    err=True,
                )
            pending.clear()

        for line, value in read_json_lines(records):
            pending.append((line, from_json_record(spec, value)))
            if len(pending) >= batch:
                flush()
        flush()
    click.echo(f"{party} published {published} {signal} signals for {purpose}; {refused} refused")
    if refused:
        sys.exit(1)
