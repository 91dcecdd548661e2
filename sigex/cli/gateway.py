"""``sigex gateway run``: the policy gateway as a long-running service."""

from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path
from types import FrameType

import click
from prometheus_client import CollectorRegistry

from sigex.broker.gateway import GatewayRunner
from sigex.broker.gateway_core import PolicyGateway
from sigex.broker.gateway_progress import DEFAULT_STALL_SECONDS
from sigex.broker.gateway_transactions import DEFAULT_STEP_SECONDS
from sigex.cli.options import connect, connection_options, settings_with
from sigex.errors import ConfigurationError
from sigex.exchange.pseudonyms import SubjectPseudonyms, load_pseudonym_key
from sigex.exchange.topology import ingress_topics
from sigex.identity import load_directory, load_party
from sigex.observability import GatewayMetrics, Readiness, start_operations
from sigex.policies.compiler import load_policy
from sigex.roles import Role
from sigex.schemas.catalogue import load_catalogue

_INSTANCE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


@click.group()
def gateway() -> None:
    """The policy gateway: decide, minimise, re-seal, deliver, audit."""


@gateway.command()
@click.option(
    "--instance",
    default=lambda: os.environ.get("HOSTNAME", "1"),
    help="Stable id of this instance (its transactional id); reuse it after a restart.",
)
@connection_options
@click.option("--no-metrics", is_flag=True, help="Do not serve /metrics, /livez and /readyz.")
@click.option(
    "--step-seconds",
    type=click.FloatRange(1, 600),
    default=DEFAULT_STEP_SECONDS,
    show_default=True,
    help="Deadline of each transaction step (offsets, commit, abort) before it is aborted.",
)
@click.option(
    "--stall-seconds",
    type=click.FloatRange(1, 3600),
    default=DEFAULT_STALL_SECONDS,
    show_default=True,
    help="Records wait and nothing commits this long: /readyz says not ready.",
)
def run(
    instance: str,
    state_dir: Path | None,
    bootstrap: str | None,
    plaintext: bool,
    no_metrics: bool,
    step_seconds: float,
    stall_seconds: float,
) -> None:
    """Run the gateway until SIGTERM or SIGINT; the batch in hand is finished first.

    It rides through a broker's loss by itself (docs/operations.md, "When a broker is
    lost"); /readyz turns false while it is stalled with records waiting.
    """
    if not _INSTANCE.match(instance):
        raise ConfigurationError("--instance may hold only letters, digits, '.', '_', '-'")
    settings = settings_with(state_dir, bootstrap)
    # first: without the audit pseudonym key the gateway must not start at all
    pseudonyms = SubjectPseudonyms(load_pseudonym_key(settings.state_dir))
    policy = load_policy(settings.policy_dir)
    metrics = GatewayMetrics(CollectorRegistry())
    core = PolicyGateway(
        identity=load_party(settings.state_dir, Role.GATEWAY),
        directory=load_directory(settings.state_dir),
        policy=policy,
        catalogue=load_catalogue(),
        pseudonymiser=pseudonyms,
        metrics=metrics,
    )
    runner = GatewayRunner(
        core,
        connect(settings, Role.GATEWAY, plaintext=plaintext),
        ingress_topics(policy),
        instance=instance,
        group=settings.gateway_group,
        metrics=metrics,
        step_seconds=step_seconds,
        stall_seconds=stall_seconds,
    )
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    servers = None
    if not no_metrics:
        servers = start_operations(
            registry=metrics.registry,
            readiness=lambda: (
                Readiness.yes()
                if runner.ready
                else Readiness.no(("stalled",) if runner.progress.stalled else ("no assignment",))
            ),
            metrics_port=settings.metrics_port,
            health_port=settings.health_port,
        )
    click.echo(
        f"gateway {instance}: policy {policy.version}, "
        f"{len(ingress_topics(policy))} ingress topics",
        err=True,
    )
    try:
        runner.run(stop)
    finally:
        if servers is not None:
            servers.stop()
    click.echo(f"gateway {instance}: stopped after {runner.processed} records", err=True)
