"""``sigex publish``: publish signals from a JSON-lines file as one party."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sigex.cli.options import connect, connection_options, settings_with
from sigex.identity import load_directory, load_party
from sigex.policies.compiler import load_policy
from sigex.preflight import BrokerConnectionError
from sigex.producers.publisher import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Publisher,
    load_or_create_record_key,
)
from sigex.producers.records_file import check_file, publish_file
from sigex.schemas.catalogue import load_catalogue


@click.command()
@click.option("--as", "party", required=True, help="The party publishing (its code, e.g. UWV).")
@click.option("--signal", required=True, help="Signal name, e.g. payroll.bsn-mismatch.")
@click.option("--purpose", required=True, help="The one purpose these signals are sent for.")
@connection_options
@click.option(
    "--batch",
    default=256,
    show_default=True,
    type=click.IntRange(1, 512),
    help="Records per signed batch.",
)
@click.option(
    "--max-message-bytes",
    default=DEFAULT_MAX_MESSAGE_BYTES,
    show_default=True,
    type=click.IntRange(4096),
    help="The most one Kafka record may hold (the broker's message.max.bytes).",
)
@click.argument("records", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def publish(
    party: str,
    signal: str,
    purpose: str,
    state_dir: Path | None,
    bootstrap: str | None,
    plaintext: bool,
    batch: int,
    max_message_bytes: int,
    records: Path,
) -> None:
    """Publish RECORDS (one JSON object per line; dates and times as ISO 8601, times with a zone).

    \b
    All or nothing on bad input: a first pass reads the whole file and checks
    every record (UTF-8, JSON, exact types, identifier checks, the sealed size
    against --max-message-bytes, no signal_id twice) before anything is sent.
    A bad record stops the command with its line number, and nothing is sent.
    Records the policy refuses are listed by line and audited; the rest go out.

    \b
    Idempotent: each record is sent under a message id derived from its
    signal_id, so running the same command again (after a broker failure, or
    by mistake) delivers nothing twice; the gateway refuses the copies.
    """
    settings = settings_with(state_dir, bootstrap)
    catalogue = load_catalogue()
    spec = catalogue.signal(signal)
    checked = check_file(records, spec, party, purpose, max_message_bytes)
    try:
        connection = connect(settings, party, plaintext=plaintext)
    except BrokerConnectionError as error:
        raise type(error)(f"{error}; nothing was sent") from None
    with Publisher(
        identity=load_party(settings.state_dir, party),
        directory=load_directory(settings.state_dir),
        policy=load_policy(settings.policy_dir),
        catalogue=catalogue,
        connection=connection,
        record_key=load_or_create_record_key(settings.state_dir, party),
        max_message_bytes=max_message_bytes,
    ) as publisher:
        outcome = publish_file(publisher, checked, spec, purpose, batch)
    for refusal in outcome.refused:
        click.echo(
            f"line {refusal.line}: refused: "
            + "; ".join(f"{r.code}: {r.text}" for r in refusal.reasons),
            err=True,
        )
    click.echo(
        f"{party} published {len(outcome.published)} {signal} signals for {purpose}; "
        f"{len(outcome.refused)} refused"
    )
    if outcome.refused:
        sys.exit(1)
