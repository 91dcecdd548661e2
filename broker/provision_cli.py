"""``sigex provision``: create the topics and ACLs the exchange agreements call for."""

from __future__ import annotations

from pathlib import Path

import click

from broker.provision import provision_cluster
from broker.topology import ProvisioningDefaults, compile_topology
from policies.compiler import load_policy
from sigex.identity import default_state_dir
from sigex.transport import ADMIN, KafkaConnection


@click.command()
@click.option(
    "--bootstrap",
    envvar="SIGEX_BOOTSTRAP",
    default="127.0.0.1:9092",
    show_default=True,
    help="Broker address.",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Federation state folder (its ADMIN certificate is used for mutual TLS).",
)
@click.option(
    "--plaintext",
    is_flag=True,
    help="Connect without TLS (local development only; no ACLs are enforced).",
)
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
@click.option("--dry-run", is_flag=True, help="Print what would be provisioned; change nothing.")
def provision(
    bootstrap: str,
    state_dir: Path | None,
    plaintext: bool,
    policy_dir: Path | None,
    partitions: int,
    dry_run: bool,
) -> None:
    """Create topics and compile the agreements into Kafka ACLs (idempotent)."""
    policy = load_policy(policy_dir)
    topology = compile_topology(policy, ProvisioningDefaults(partitions=partitions))
    if dry_run:
        for topic in topology.topics:
            click.echo(
                f"topic {topic.name} partitions={topic.partitions} "
                f"retention.ms={topic.retention_ms}"
            )
        for acl in sorted(topology.acls):
            click.echo(
                f"acl {acl.principal} {acl.operation} {acl.resource}:{acl.pattern}:{acl.name}"
            )
        return
    connection = KafkaConnection.for_party(
        bootstrap, None if plaintext else (state_dir or default_state_dir()), ADMIN
    )
    report = provision_cluster(connection, topology)
    click.echo(
        f"policy {policy.version}: {len(report.topics_created)} topics created, "
        f"{len(report.topics_grown)} grown, {len(report.topics_reconfigured)} reconfigured; "
        f"{len(report.acls_created)} ACLs created, {len(report.acls_deleted)} deleted"
        + ("" if report.acls_enforced else " (the broker enforces no ACLs)")
    )
    if not report.changed:
        click.echo("nothing to change: the cluster already matches the agreements")
