"""Apply a compiled :class:`~sigex.exchange.topology.Topology` to a Kafka cluster, idempotently.

Topics are created when missing, grown when they have fewer partitions than
asked, and their retention is set to what the agreements say. ACLs on sigex's
own resources are made equal to the compiled set: missing ones are created,
ones no agreement justifies any more are deleted. ACLs on other resources are
left alone. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.errors import KafkaError, SecurityDisabledError

from sigex.broker.errors import BrokerError
from sigex.exchange.topology import AclSpec, Operation, Pattern, Resource, Topology, is_managed
from sigex.logs import get_logger
from sigex.transport import KafkaConnection

_log = get_logger(__name__)

_RESOURCE = {
    Resource.TOPIC: ResourceType.TOPIC,
    Resource.GROUP: ResourceType.GROUP,
    Resource.TRANSACTIONAL_ID: ResourceType.TRANSACTIONAL_ID,
    Resource.CLUSTER: ResourceType.CLUSTER,
}
_PATTERN = {
    Pattern.LITERAL: ACLResourcePatternType.LITERAL,
    Pattern.PREFIXED: ACLResourcePatternType.PREFIXED,
}
_OPERATION = {
    Operation.READ: ACLOperation.READ,
    Operation.WRITE: ACLOperation.WRITE,
    Operation.DESCRIBE: ACLOperation.DESCRIBE,
    Operation.IDEMPOTENT_WRITE: ACLOperation.IDEMPOTENT_WRITE,
}


class ProvisioningFailed(BrokerError):
    """The broker refused to create a topic or an ACL."""


@dataclass
class ProvisionReport:
    topics_created: list[str] = field(default_factory=list)
    topics_grown: list[str] = field(default_factory=list)
    topics_reconfigured: list[str] = field(default_factory=list)
    acls_created: list[AclSpec] = field(default_factory=list)
    acls_deleted: list[AclSpec] = field(default_factory=list)
    stray_acls_deleted: int = 0
    acls_enforced: bool = True
    #: the brokers found, and the replication chosen for them (0 when topics were not touched)
    brokers: int = 0
    replication_factor: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            self.topics_created
            or self.topics_grown
            or self.topics_reconfigured
            or self.acls_created
            or self.acls_deleted
            or self.stray_acls_deleted
        )


def _to_kafka(spec: AclSpec) -> ACL:
    return ACL(
        principal=spec.principal,
        host="*",
        operation=_OPERATION[spec.operation],
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(
            _RESOURCE[spec.resource], spec.name, _PATTERN[spec.pattern]
        ),
    )


def _from_kafka(acl: ACL) -> AclSpec | None:
    if acl.permission_type != ACLPermissionType.ALLOW or acl.host != "*":
        return None
    try:
        resource = next(k for k, v in _RESOURCE.items() if v == acl.resource_pattern.resource_type)
        pattern = next(k for k, v in _PATTERN.items() if v == acl.resource_pattern.pattern_type)
        operation = next(k for k, v in _OPERATION.items() if v == acl.operation)
    except StopIteration:
        return None
    return AclSpec(acl.principal, resource, acl.resource_pattern.resource_name, pattern, operation)


def _describe_all(admin: KafkaAdminClient) -> list[ACL] | None:
    """Every ACL of the cluster, or None when it runs no authorizer."""
    any_filter = ACLFilter(
        principal=None,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    try:
        acls, _no_error = admin.describe_acls(any_filter)  # errors are raised, not returned
    except SecurityDisabledError:
        return None
    return list(acls)


def _on_sigex_resource(acl: ACL) -> bool:
    return str(acl.resource_pattern.resource_name).startswith(("sigex.", "sigex-"))


def existing_acls(admin: KafkaAdminClient) -> set[AclSpec] | None:
    """Every ALLOW ACL sigex could own, or None when the cluster runs no authorizer."""
    acls = _describe_all(admin)
    if acls is None:
        return None
    found = {spec for acl in acls if (spec := _from_kafka(acl)) is not None}
    return {spec for spec in found if is_managed(spec)}


def stray_acls(admin: KafkaAdminClient) -> list[ACL]:
    """ACLs on sigex's resources that no compiled rule can be: DENY rules, ALLOWs for one
    host, operations sigex never grants (ALL, ALTER, CREATE...). Provisioning removes them."""
    return [
        acl
        for acl in _describe_all(admin) or []
        if _on_sigex_resource(acl) and _from_kafka(acl) is None
    ]


def min_insync_replicas(replication: int) -> int:
    """Acknowledged writes survive the loss of one broker: 2 of 3 replicas, never more than rf-1.

    With ``acks=all`` a write is then on at least two brokers, and one broker may be
    down without stopping the exchange; on one broker it is 1.
    """
    return max(1, min(2, replication - 1))


def _apply_topics(
    admin: KafkaAdminClient, topology: Topology, replication: int, report: ProvisionReport
) -> None:
    present = {t["name"]: t for t in admin.describe_topics()}
    missing = [t for t in topology.topics if t.name not in present]
    if missing:
        admin.create_topics(
            {
                t.name: {
                    "num_partitions": t.partitions,
                    "replication_factor": replication,
                    "configs": {
                        "retention.ms": str(t.retention_ms),
                        "cleanup.policy": t.cleanup_policy,
                        "min.insync.replicas": str(min_insync_replicas(replication)),
                    },
                }
                for t in missing
            },
            wait_for_metadata=True,
        )
        report.topics_created += [t.name for t in missing]
    grow = {
        t.name: t.partitions
        for t in topology.topics
        if t.name in present and len(present[t.name]["partitions"]) < t.partitions
    }
    if grow:
        admin.create_partitions(grow)
        report.topics_grown += sorted(grow)
    existing = [t for t in topology.topics if t.name in present]
    if not existing:
        return
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, t.name) for t in existing],
        config_filter="all",
    )
    by_topic = described.get("topic", {})
    changes = []
    insync = str(min_insync_replicas(replication))
    for topic in existing:
        current = by_topic.get(topic.name, {})
        wanted = {"retention.ms": str(topic.retention_ms), "min.insync.replicas": insync}
        if any(current.get(name, {}).get("value") != value for name, value in wanted.items()):
            # alter_configs replaces the topic's whole set: give every setting sigex owns
            changes.append(
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    topic.name,
                    configs={**wanted, "cleanup.policy": topic.cleanup_policy},
                )
            )
            report.topics_reconfigured.append(topic.name)
    if changes:
        admin.alter_configs(changes)


def _apply_acls(admin: KafkaAdminClient, topology: Topology, report: ProvisionReport) -> None:
    current = existing_acls(admin)
    if current is None:
        report.acls_enforced = False
        _log.warning("provision.no_authorizer", detail="the broker runs without ACLs")
        return
    wanted = set(topology.acls)
    to_create = sorted(wanted - current)
    to_delete = sorted(current - wanted)
    if to_create:
        result = admin.create_acls([_to_kafka(spec) for spec in to_create])
        if result.get("failed"):
            raise ProvisioningFailed(f"{len(result['failed'])} ACLs were refused by the broker")
        report.acls_created += to_create
    if to_delete:
        filters = [_exact_filter(_to_kafka(spec)) for spec in to_delete]
        admin.delete_acls(filters)
        report.acls_deleted += to_delete
    strays = stray_acls(admin)
    if strays:
        admin.delete_acls([_exact_filter(acl) for acl in strays])
        report.stray_acls_deleted += len(strays)
    if to_create or to_delete or strays:
        _await_acls(admin, wanted)


def _exact_filter(acl: ACL) -> ACLFilter:
    return ACLFilter(
        principal=acl.principal,
        host=acl.host,
        operation=acl.operation,
        permission_type=acl.permission_type,
        resource_pattern=ResourcePatternFilter(
            acl.resource_pattern.resource_type,
            acl.resource_pattern.resource_name,
            acl.resource_pattern.pattern_type,
        ),
    )


def _await_acls(admin: KafkaAdminClient, wanted: set[AclSpec], timeout: float = 30.0) -> None:
    """Wait until the broker's authorizer enforces ``wanted`` (ACL changes propagate async)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if existing_acls(admin) == wanted:
            return
        time.sleep(0.2)
    raise ProvisioningFailed(f"the broker did not apply the ACLs within {timeout:.0f}s")


def bootstrap_brokers(bootstrap: str) -> int:
    """How many brokers a bootstrap list names (``host:port`` entries, comma-separated)."""
    return len({entry.strip() for entry in bootstrap.split(",") if entry.strip()})


def provision(
    admin: KafkaAdminClient, topology: Topology, *, expected_brokers: int = 1
) -> ProvisionReport:
    """Make the cluster's topics and ACLs match ``topology``.

    Topics are made with a replication factor from the brokers registered *now*; a cluster
    that has not yet seen all ``expected_brokers`` (those its bootstrap list names: one that
    is still starting) would get topics with too few replicas for good, so provisioning
    refuses until they are all there (``init`` tries again).
    """
    report = ProvisionReport()
    try:
        report.brokers = len(admin.describe_cluster()["brokers"])
        if report.brokers < expected_brokers:
            raise ProvisioningFailed(
                f"{report.brokers} of the {expected_brokers} brokers in the bootstrap list have "
                "registered with the cluster: topics are not made with too few replicas; "
                "try again when every broker is up"
            )
        report.replication_factor = min(3, max(1, report.brokers))
        _apply_topics(admin, topology, report.replication_factor, report)
        _apply_acls(admin, topology, report)
    except KafkaError as failure:
        raise ProvisioningFailed(f"the broker refused provisioning: {failure}") from failure
    _log.info(
        "provision.done",
        topics_created=len(report.topics_created),
        acls_created=len(report.acls_created),
        acls_deleted=len(report.acls_deleted),
    )
    return report


def provision_acls(admin: KafkaAdminClient, topology: Topology) -> ProvisionReport:
    """Make only the cluster's ACLs match ``topology``; topics are left as they are.

    What a revocation needs: the principals change, the topics do not.
    """
    report = ProvisionReport()
    try:
        _apply_acls(admin, topology, report)
    except KafkaError as failure:
        raise ProvisioningFailed(f"the broker refused provisioning: {failure}") from failure
    _log.info(
        "provision.acls_done",
        acls_created=len(report.acls_created),
        acls_deleted=len(report.acls_deleted),
    )
    return report


def provision_cluster(
    connection: KafkaConnection, topology: Topology, *, acls_only: bool = False
) -> ProvisionReport:
    """Connect as ``connection`` (the ADMIN principal) and apply ``topology``."""
    admin = KafkaAdminClient(**connection.options())
    try:
        if acls_only:
            return provision_acls(admin, topology)
        return provision(admin, topology, expected_brokers=bootstrap_brokers(connection.bootstrap))
    finally:
        admin.close()
