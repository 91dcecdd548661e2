"""``sigex subscribe``: receive signals as one party and write them as JSON lines."""

from __future__ import annotations

import json
import re
import signal as signals
import sys
import threading
from pathlib import Path
from types import FrameType

import click
from prometheus_client import CollectorRegistry

from sigex.cli.options import connect, connection_options, settings_with
from sigex.consumers.errors import ConsumerError
from sigex.consumers.signal_file import SignalFile
from sigex.consumers.subscriber import ReceivedSignal, Subscriber, delivery_topics_for
from sigex.exchange.protocol import to_json_value
from sigex.exchange.topology import subscriber_group_prefix
from sigex.identity import load_directory, load_party
from sigex.observability import (
    OperationsServers,
    Readiness,
    SubscriberMetrics,
    start_operations,
)
from sigex.policies.compiler import load_policy
from sigex.schemas.catalogue import load_catalogue


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
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Drain: stop once every signal waiting has been taken and none came for this many "
    "seconds (counted from when the group assigned this subscriber its partitions). Exits "
    "non-zero, never 0, when signals wait that it could not take.",
)
@click.option("--name", default="inbox", show_default=True, help="Consumer group suffix.")
@click.option(
    "--instance",
    default=None,
    help="Static member id in the group [default: the group itself]; a restart with the same "
    "instance takes its partitions back at once. Give each process of one group its own.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve /metrics (lag per partition, rejoins), /livez and /readyz on this port.",
)
@connection_options
def subscribe(
    party: str,
    purposes: tuple[str, ...],
    signal_names: tuple[str, ...],
    out: Path | None,
    max_messages: int | None,
    idle_timeout: float | None,
    name: str,
    instance: str | None,
    metrics_port: int | None,
    state_dir: Path | None,
    bootstrap: str | None,
    plaintext: bool,
) -> None:
    """Receive signals for the declared purposes; each is acknowledged once written.

    With --out, each batch is on disk (fsync) before its offsets are committed,
    and the message ids already in the file are read back at start, so a
    restart after a crash neither loses nor repeats a signal. A last line cut
    short by a crash is removed (its signal comes again).
    """
    settings = settings_with(state_dir, bootstrap)
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signals.signal(signals.SIGTERM, request_stop)
    signals.signal(signals.SIGINT, request_stop)
    group = f"{subscriber_group_prefix(party)}{name}"
    member = instance if instance is not None else group
    if not _INSTANCE.match(member):
        raise ConsumerError("--name and --instance may hold only letters, digits, '.', '_', '-'")
    catalogue = load_catalogue()
    policy = load_policy(settings.policy_dir)
    delivery_topics_for(party, catalogue, policy, signal_names or None)  # before any waiting
    output = SignalFile(out) if out is not None else None
    metrics = SubscriberMetrics(CollectorRegistry())
    try:
        with Subscriber(
            identity=load_party(settings.state_dir, party),
            directory=load_directory(settings.state_dir),
            catalogue=catalogue,
            connection=connect(settings, party, plaintext=plaintext),
            purposes=purposes,
            policy=policy,
            signals=signal_names or None,
            name=name,
            instance=member,
            already_handed=output.message_ids if output is not None else (),
            metrics=metrics,
        ) as subscriber:
            servers = _serve(metrics, metrics_port, subscriber)
            try:
                _receive(subscriber, output, stop, max_messages, idle_timeout)
            finally:
                click.echo(
                    f"{party} received {subscriber.acknowledged} signals, "
                    f"refused {subscriber.refused}, dropped {subscriber.duplicates} duplicates, "
                    f"rejoined {subscriber.rejoins} time(s)",
                    err=True,
                )
                if servers is not None:
                    servers.stop()
    finally:
        if output is not None:
            output.close()


_INSTANCE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def _receive(
    subscriber: Subscriber,
    output: SignalFile | None,
    stop: threading.Event,
    max_messages: int | None,
    idle_timeout: float | None,
) -> None:
    def write(received: ReceivedSignal) -> None:
        line = signal_as_json(received)
        if output is not None:
            output.write(line)
        else:
            sys.stdout.write(line + "\n")

    sync = output.sync if output is not None else sys.stdout.flush
    if idle_timeout is None:
        subscriber.run(write, stop, max_messages=max_messages, sync=sync)
    else:
        subscriber.drain(
            write, idle_seconds=idle_timeout, stop=stop, max_messages=max_messages, sync=sync
        )


def _serve(
    metrics: SubscriberMetrics, port: int | None, subscriber: Subscriber
) -> OperationsServers | None:
    if port is None:
        return None
    return start_operations(
        registry=metrics.registry,
        readiness=lambda: (
            Readiness.yes() if subscriber.assigned else Readiness.no(("no-partitions",))
        ),
        metrics_port=port,
        health_port=port,
    )
