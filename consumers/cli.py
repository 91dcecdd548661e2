"""``sigex subscribe``: receive signals as one party and write them as JSON lines."""

from __future__ import annotations

import json
import signal as signals
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import IO

import click

from broker.protocol import to_json_value
from consumers.subscriber import ReceivedSignal, Subscriber
from policies.compiler import load_policy
from schemas.catalogue import load_catalogue
from sigex.cli_support import settings_with
from sigex.identity import load_directory, load_party
from sigex.identity.keyfiles import create_private_file
from sigex.transport import connection_for


def signal_as_json(received: ReceivedSignal) -> str:
    return json.dumps(
        {
            "message_id": received.message_id,
            "signal": received.signal,
            "sender": received.sender,
            "purpose": received.purpose,
            "legal_basis": received.legal_basis,
            "agreement": f"{received.agreement_id} v{received.agreement_version}",
            "retention_days": received.retention_days,
            "decided_at": received.decided_at.isoformat(),
            "fields": to_json_value(dict(received.fields)),
        },
        sort_keys=True,
    )


def open_output_file(path: Path) -> IO[str]:
    """``--out``, opened for appending; a new file is created 0600 (it holds personal data)."""
    create_private_file(path)
    return path.open("a", encoding="utf-8")


@click.command()
@click.option("--as", "party", required=True, help="The receiving party (its code).")
@click.option(
    "--purpose",
    "purposes",
    required=True,
    multiple=True,
    help="A purpose this party processes signals for; repeatable.",
)
@click.option("--signal", "signal_names", multiple=True, help="Only these signals; repeatable.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Append received signals here as JSON lines [default: stdout].",
)
@click.option("--max", "max_messages", type=int, default=None, help="Stop after N signals.")
@click.option(
    "--idle-timeout",
    type=float,
    default=None,
    help="Stop after this many seconds without a new signal.",
)
@click.option("--name", default="inbox", show_default=True, help="Consumer group suffix.")
@click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False), default=None)
@click.option("--bootstrap", default=None, help="Broker address [default: SIGEX_BOOTSTRAP].")
@click.option("--plaintext", is_flag=True, help="No TLS (local development only).")
def subscribe(
    party: str,
    purposes: tuple[str, ...],
    signal_names: tuple[str, ...],
    out: Path | None,
    max_messages: int | None,
    idle_timeout: float | None,
    name: str,
    state_dir: Path | None,
    bootstrap: str | None,
    plaintext: bool,
) -> None:
    """Receive signals for the declared purposes; each is acknowledged once written."""
    settings = settings_with(state_dir, bootstrap)
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signals.signal(signals.SIGTERM, request_stop)
    signals.signal(signals.SIGINT, request_stop)
    sink: IO[str] = open_output_file(out) if out is not None else sys.stdout

    def write(received: ReceivedSignal) -> None:
        sink.write(signal_as_json(received) + "\n")
        sink.flush()

    with Subscriber(
        identity=load_party(settings.state_dir, party),
        directory=load_directory(settings.state_dir),
        catalogue=load_catalogue(),
        connection=connection_for(settings, party, plaintext=plaintext),
        purposes=purposes,
        policy=load_policy(settings.policy_dir),
        signals=signal_names or None,
        name=name,
    ) as subscriber:
        last = time.monotonic()
        while not stop.is_set():
            if subscriber.poll(write, timeout_ms=500):
                last = time.monotonic()
            if max_messages is not None and subscriber.acknowledged >= max_messages:
                break
            if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                break
        click.echo(
            f"{party} received {subscriber.acknowledged} signals, refused {subscriber.refused}, "
            f"dropped {subscriber.duplicates} duplicates",
            err=True,
        )
    if out is not None:
        sink.close()
