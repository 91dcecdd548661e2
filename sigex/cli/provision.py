"""``sigex provision``: create the topics and ACLs the exchange agreements call for."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import click

from sigex.broker.provision import ProvisionReport, min_insync_replicas, provision_cluster
from sigex.cli.options import broker_connection, connection_options
from sigex.clock import Clock, SystemClock
from sigex.config import federation_dir
from sigex.exchange.topology import ProvisioningDefaults, Topology, compile_topology
from sigex.identity import default_state_dir, load_directory
from sigex.policies.compiled import CompiledPolicy
from sigex.policies.compiler import load_policy
from sigex.roles import Role

#: how often ``--watch`` compiles again at most (a revocation is picked up within this)
DEFAULT_WATCH_INTERVAL = 30.0


def party_generations(state_dir: Path, *, required: bool) -> dict[str, int]:
    """Each party's current key generation from the signed directory in ``state_dir``.

    Without a directory there: an empty mapping (every party at generation 1)
    unless ``required``, when :class:`~sigex.identity.errors.DirectoryError` says so.
    """
    if not required and not (federation_dir(state_dir) / "directory.json").exists():
        return {}
    return load_directory(state_dir).generations()


def topology_now(
    policy: CompiledPolicy,
    defaults: ProvisioningDefaults,
    state_dir: Path,
    at: datetime,
    *,
    generations_required: bool = True,
) -> Topology:
    """The topology of ``policy`` at ``at`` for the key generations the federation lists."""
    generations = party_generations(state_dir, required=generations_required)
    return compile_topology(policy, defaults, at=at, generations=generations)


def seconds_until_next_round(topology: Topology, now: datetime, interval: float) -> float:
    """How long ``--watch`` sleeps: until the next window change, at most ``interval``."""
    if topology.next_change is None:
        return interval
    return max(1.0, min(interval, (topology.next_change - now).total_seconds()))


def _summary(policy: CompiledPolicy, topology: Topology, report: ProvisionReport) -> str:
    at = topology.compiled_at.isoformat() if topology.compiled_at else "?"
    return (
        f"policy {policy.version} at {at}: {len(report.topics_created)} topics created, "
        f"{len(report.topics_grown)} grown, {len(report.topics_reconfigured)} reconfigured; "
        f"{len(report.acls_created)} ACLs created, {len(report.acls_deleted)} deleted"
        + ("" if report.acls_enforced else " (the broker enforces no ACLs)")
        + _replication_line(report)
    )


def _replication_line(report: ProvisionReport) -> str:
    if not report.replication_factor:
        return ""
    return (
        f"; {report.brokers} broker(s): topics with replication factor "
        f"{report.replication_factor}, min.insync.replicas "
        f"{min_insync_replicas(report.replication_factor)}"
    )


def _next_change_line(topology: Topology) -> str:
    if topology.next_change is None:
        return "no agreement window opens or closes after this moment"
    return (
        f"the ACLs change next at {topology.next_change.isoformat()}: "
        "run 'sigex provision' again then (or keep 'sigex provision --watch' running)"
    )


def _moment(value: datetime | None, clock: Clock) -> datetime:
    if value is None:
        return clock.now()
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@click.command()
@connection_options
@click.option(
    "--policy-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    envvar="SIGEX_POLICY_DIR",
    help="Policy files [default: the shipped ones].",
)
@click.option(
    "--partitions", default=6, show_default=True, help="Partitions of ingress and delivery topics."
)
@click.option(
    "--at",
    "at",
    type=click.DateTime(),
    default=None,
    help="Compile the ACLs of the agreements in force at this moment (UTC unless it says "
    "otherwise) [default: now]. For inspection with --dry-run; a broker should get now's.",
)
@click.option(
    "--watch",
    is_flag=True,
    help="Keep running: provision again when an agreement window opens or closes, and at "
    "least every --interval seconds (so a revocation is applied without a person).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=1.0),
    default=DEFAULT_WATCH_INTERVAL,
    show_default=True,
    help="With --watch: the longest pause between two rounds, in seconds.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be provisioned; change nothing.")
def provision(
    bootstrap: str | None,
    state_dir: Path | None,
    plaintext: bool,
    policy_dir: Path | None,
    partitions: int,
    at: datetime | None,
    watch: bool,
    interval: float,
    dry_run: bool,
) -> None:
    """Create topics and compile the agreements in force into Kafka ACLs (idempotent)."""
    policy = load_policy(policy_dir)
    defaults = ProvisioningDefaults(partitions=partitions)
    state = state_dir or default_state_dir()
    clock = SystemClock()
    if dry_run:
        moment = _moment(at, clock)
        topology = topology_now(
            policy,
            defaults,
            state,
            moment,
            generations_required=state_dir is not None and not plaintext,
        )
        for topic in topology.topics:
            click.echo(
                f"topic {topic.name} partitions={topic.partitions} "
                f"retention.ms={topic.retention_ms}"
            )
        for acl in sorted(topology.acls):
            click.echo(
                f"acl {acl.principal} {acl.operation} {acl.resource}:{acl.pattern}:{acl.name}"
            )
        click.echo(_next_change_line(topology))
        return
    if watch and at is not None:
        raise click.UsageError("--watch provisions for the present moment; leave out --at")
    connection = broker_connection(
        Role.ADMIN, state_dir=state_dir, bootstrap=bootstrap, plaintext=plaintext
    )
    while True:
        moment = _moment(at, clock)
        topology = topology_now(policy, defaults, state, moment, generations_required=not plaintext)
        report = provision_cluster(connection, topology)
        if report.changed or not watch:
            click.echo(_summary(policy, topology, report))
        if not watch:
            if not report.changed:
                click.echo("nothing to change: the cluster already matches the agreements")
            click.echo(_next_change_line(topology))
            return
        if report.changed:
            click.echo(_next_change_line(topology))
        time.sleep(seconds_until_next_round(topology, clock.now(), interval))
