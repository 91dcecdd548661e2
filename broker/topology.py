"""Topics and Kafka ACLs compiled from the exchange agreements; pure data, no I/O.

The broker enforces what the agreements allow even against a client that
bypasses every sigex library:

- a sender writes only ``sigex.<signal>.in.<SENDER>``, and only for signals
  some agreement lets it send. Ingress is per signal *and* sender, so the
  topic a record arrives on is the sender the broker authenticated (Kafka
  does not tell a consumer who produced a record); the gateway checks that
  the envelope's signer and the agreement's sender are that same party;
- a recipient reads only ``sigex.<signal>.out.<RECIPIENT>``, its own
  deliveries;
- the gateway reads ingress and writes deliveries, the audit topic and the
  dead-letter topic, transactionally;
- each party writes its own ``sigex.receipts.<PARTY>`` (acknowledgements and
  refusals at publish) and the audit service reads them all;
- everyone may read the published audit checkpoints;
- the gateway alone reads and writes its replay ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from policies.compiled import CompiledPolicy

TOPIC_PREFIX = "sigex"
AUDIT_TOPIC = "sigex.audit"
DEAD_LETTER_TOPIC = "sigex.deadletter"
CHECKPOINT_TOPIC = "sigex.audit.checkpoints"
#: the gateway's durable replay ledger (see broker/replay_ledger.py)
LEDGER_TOPIC = "sigex.gateway.ledger"
RECEIPTS_PREFIX = "sigex.receipts."
GATEWAY = "GATEWAY"
AUDIT_SERVICE = "AUDIT"
GATEWAY_GROUP = "sigex-gateway"
GATEWAY_TRANSACTIONAL_PREFIX = "sigex-gateway"
AUDIT_GROUP_PREFIX = "sigex-audit"

DAY_MS = 24 * 60 * 60 * 1000


def ingress_topic(signal: str, sender: str) -> str:
    return f"{TOPIC_PREFIX}.{signal}.in.{sender}"


def delivery_topic(signal: str, recipient: str) -> str:
    return f"{TOPIC_PREFIX}.{signal}.out.{recipient}"


def ingress_topics(policy: CompiledPolicy) -> tuple[str, ...]:
    """Every ingress topic the agreements call for (what the gateway consumes)."""
    return tuple(
        sorted({ingress_topic(a.signal, s) for a in policy.agreements for s in a.possible_senders})
    )


def receipts_topic(party: str) -> str:
    return f"{RECEIPTS_PREFIX}{party}"


def subscriber_group_prefix(party: str) -> str:
    return f"{TOPIC_PREFIX}.{party}."


class Resource(StrEnum):
    TOPIC = "topic"
    GROUP = "group"
    TRANSACTIONAL_ID = "transactional_id"
    CLUSTER = "cluster"


class Pattern(StrEnum):
    LITERAL = "literal"
    PREFIXED = "prefixed"


class Operation(StrEnum):
    READ = "read"
    WRITE = "write"
    DESCRIBE = "describe"
    IDEMPOTENT_WRITE = "idempotent_write"


@dataclass(frozen=True, slots=True, order=True)
class AclSpec:
    """One ALLOW rule: ``principal`` may ``operation`` on a resource (from any host)."""

    principal: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation


@dataclass(frozen=True, slots=True, order=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    cleanup_policy: str = "delete"


@dataclass(frozen=True, slots=True)
class ProvisioningDefaults:
    """Numbers the agreements do not say; an operator may change them."""

    partitions: int = 6
    ingress_retention_days: int = 7
    dead_letter_retention_days: int = 30
    audit_retention_days: int = 30
    receipts_retention_days: int = 30


@dataclass(frozen=True, slots=True)
class Topology:
    topics: tuple[TopicSpec, ...]
    acls: frozenset[AclSpec]

    def topic(self, name: str) -> TopicSpec:
        for topic in self.topics:
            if topic.name == name:
                return topic
        raise KeyError(name)

    def acls_of(self, principal: str) -> frozenset[AclSpec]:
        return frozenset(acl for acl in self.acls if acl.principal == principal)


def _topic_acls(principal: str, topic: str, *operations: Operation) -> set[AclSpec]:
    return {
        AclSpec(f"User:{principal}", Resource.TOPIC, topic, Pattern.LITERAL, operation)
        for operation in (*operations, Operation.DESCRIBE)
    }


def compile_topology(
    policy: CompiledPolicy, defaults: ProvisioningDefaults | None = None
) -> Topology:
    """Every topic and ACL the agreements need, and nothing more."""
    defaults = defaults or ProvisioningDefaults()
    ingress: dict[str, int] = {}
    deliveries: dict[str, int] = {}
    acls: set[AclSpec] = set()
    for agreement in policy.agreements:
        for sender in agreement.possible_senders:
            topic = ingress_topic(agreement.signal, sender)
            ingress[topic] = min(
                ingress.get(topic, defaults.ingress_retention_days), agreement.retention_days
            )
            acls |= _topic_acls(sender, topic, Operation.WRITE)
            acls |= _topic_acls(GATEWAY, topic, Operation.READ)
        for recipient in agreement.possible_recipients:
            topic = delivery_topic(agreement.signal, recipient)
            deliveries[topic] = max(deliveries.get(topic, 0), agreement.retention_days)
            acls |= _topic_acls(recipient, topic, Operation.READ)
            acls |= _topic_acls(GATEWAY, topic, Operation.WRITE)

    parties = sorted(code for code, party in policy.parties.items() if party.kind != "service")
    topics = [TopicSpec(name, defaults.partitions, days * DAY_MS) for name, days in ingress.items()]
    topics += [
        TopicSpec(name, defaults.partitions, days * DAY_MS) for name, days in deliveries.items()
    ]
    topics += [
        TopicSpec(AUDIT_TOPIC, defaults.partitions, defaults.audit_retention_days * DAY_MS),
        TopicSpec(
            DEAD_LETTER_TOPIC, defaults.partitions, defaults.dead_letter_retention_days * DAY_MS
        ),
        TopicSpec(CHECKPOINT_TOPIC, 1, -1),
        TopicSpec(
            LEDGER_TOPIC,
            defaults.partitions,
            (defaults.ingress_retention_days + 1) * DAY_MS,
            "compact,delete",
        ),
    ]
    for party in parties:
        topics.append(
            TopicSpec(receipts_topic(party), 1, defaults.receipts_retention_days * DAY_MS)
        )
        acls |= _topic_acls(party, receipts_topic(party), Operation.WRITE)
        acls |= _topic_acls(party, CHECKPOINT_TOPIC, Operation.READ)
        acls.add(
            AclSpec(
                f"User:{party}",
                Resource.GROUP,
                subscriber_group_prefix(party),
                Pattern.PREFIXED,
                Operation.READ,
            )
        )

    gateway = f"User:{GATEWAY}"
    acls |= _topic_acls(GATEWAY, AUDIT_TOPIC, Operation.WRITE)
    acls |= _topic_acls(GATEWAY, DEAD_LETTER_TOPIC, Operation.WRITE)
    acls |= _topic_acls(GATEWAY, LEDGER_TOPIC, Operation.WRITE, Operation.READ)
    acls |= {
        AclSpec(gateway, Resource.GROUP, GATEWAY_GROUP, Pattern.PREFIXED, Operation.READ),
        AclSpec(
            gateway,
            Resource.TRANSACTIONAL_ID,
            GATEWAY_TRANSACTIONAL_PREFIX,
            Pattern.PREFIXED,
            Operation.WRITE,
        ),
        AclSpec(
            gateway,
            Resource.TRANSACTIONAL_ID,
            GATEWAY_TRANSACTIONAL_PREFIX,
            Pattern.PREFIXED,
            Operation.DESCRIBE,
        ),
        AclSpec(
            gateway, Resource.CLUSTER, "kafka-cluster", Pattern.LITERAL, Operation.IDEMPOTENT_WRITE
        ),
    }

    audit = f"User:{AUDIT_SERVICE}"
    acls |= _topic_acls(AUDIT_SERVICE, AUDIT_TOPIC, Operation.READ)
    acls |= _topic_acls(AUDIT_SERVICE, CHECKPOINT_TOPIC, Operation.WRITE, Operation.READ)
    acls |= {
        AclSpec(audit, Resource.TOPIC, RECEIPTS_PREFIX, Pattern.PREFIXED, Operation.READ),
        AclSpec(audit, Resource.TOPIC, RECEIPTS_PREFIX, Pattern.PREFIXED, Operation.DESCRIBE),
        AclSpec(audit, Resource.GROUP, AUDIT_GROUP_PREFIX, Pattern.PREFIXED, Operation.READ),
    }
    return Topology(tuple(sorted(topics)), frozenset(acls))


def is_managed(acl: AclSpec) -> bool:
    """True for ACLs provisioning owns: those on sigex's own resources."""
    if acl.resource is Resource.CLUSTER:
        return acl.principal in (f"User:{GATEWAY}",)
    return acl.name.startswith((f"{TOPIC_PREFIX}.", f"{TOPIC_PREFIX}-"))
