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

Two things bound the ACLs beyond the routes themselves:

- **time**: a party's WRITE on an ingress topic and READ on a delivery topic
  exist only while an agreement for that route is in force at the moment
  compiled for (agreement, legal basis and cooperation windows all open, the
  basis usable). Topics are still created for every agreement, early or
  late, so that the gateway's subscription and each topic's retention do not
  change with the calendar; a topic nobody may use is harmless.
  :attr:`Topology.next_change` says when the ACL set must be compiled again;
- **key generation**: a party's principal carries the generation of its
  current certificate (``User:NLA.g2``, see :func:`principal`), so a revoked
  certificate's principal, ``User:NLA.g1``, has no ACL left.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sigex.policies.compiled import EARLIEST, LATEST, CompiledPolicy
from sigex.policies.errors import PolicyError
from sigex.roles import Role

TOPIC_PREFIX = "sigex"
AUDIT_TOPIC = "sigex.audit"
DEAD_LETTER_TOPIC = "sigex.deadletter"
CHECKPOINT_TOPIC = "sigex.audit.checkpoints"
#: where witnesses publish the evidence of a conflicting checkpoint (docs/access-log.md)
WITNESS_ALARM_TOPIC = "sigex.audit.witness-alarms"
#: the gateway's durable replay ledger (see broker/replay_ledger.py)
LEDGER_TOPIC = "sigex.gateway.ledger"
RECEIPTS_PREFIX = "sigex.receipts."
GATEWAY_GROUP = "sigex-gateway"
GATEWAY_TRANSACTIONAL_PREFIX = "sigex-gateway"
AUDIT_GROUP_PREFIX = "sigex-audit"

DAY_MS = 24 * 60 * 60 * 1000
#: the generation of a party the federation state does not list (a new federation's)
FIRST_GENERATION = 1


def principal(code: str, generation: int = FIRST_GENERATION) -> str:
    """The Kafka principal of ``code``'s certificate of key ``generation``: ``User:NLA.g2``.

    The broker's ``ssl.principal.mapping.rules`` make it from the certificate's
    ``CN=<CODE>`` and ``OU=key-generation-<N>`` (see ``sigex.broker.local``).
    """
    return f"User:{code}.g{generation}"


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
    #: the moment the ACLs were compiled for, and the next moment an agreement window
    #: opens or closes after it (None: never), when they must be compiled again
    compiled_at: datetime | None = None
    next_change: datetime | None = None

    def topic(self, name: str) -> TopicSpec:
        for topic in self.topics:
            if topic.name == name:
                return topic
        raise KeyError(name)

    def acls_of(self, principal: str) -> frozenset[AclSpec]:
        return frozenset(acl for acl in self.acls if acl.principal == principal)


def _topic_acls(principal: str, topic: str, *operations: Operation) -> set[AclSpec]:
    return {
        AclSpec(principal, Resource.TOPIC, topic, Pattern.LITERAL, operation)
        for operation in (*operations, Operation.DESCRIBE)
    }


def routes_in_force(policy: CompiledPolicy, at: datetime) -> frozenset[tuple[str, str, str]]:
    """(sender, signal, recipient) of every route some agreement allows at ``at``."""
    return frozenset(
        (sender, signal, recipient)
        for (sender, signal, recipient, _purpose), entries in policy.route_index.items()
        if any(entry.clear_start <= at < entry.clear_end for entry in entries)
    )


def next_change(policy: CompiledPolicy, at: datetime) -> datetime | None:
    """The first moment after ``at`` at which a route comes into or goes out of force."""
    moments = {
        moment
        for entries in policy.route_index.values()
        for entry in entries
        if entry.clear_start < entry.clear_end  # a route never in force never changes
        for moment in (entry.clear_start, entry.clear_end)
        if at < moment and moment not in (EARLIEST, LATEST)
    }
    return min(moments, default=None)


def compile_topology(
    policy: CompiledPolicy,
    defaults: ProvisioningDefaults | None = None,
    *,
    at: datetime,
    generations: Mapping[str, int] | None = None,
) -> Topology:
    """Every topic the agreements need, and the ACLs in force at ``at``, and nothing more.

    ``generations`` gives each party's current key generation (from the signed
    directory, :meth:`~sigex.identity.PartyDirectory.generations`); a party it
    does not list is at generation 1.
    """
    if at.tzinfo is None:
        raise PolicyError("compile_topology() needs a timezone-aware moment")
    defaults = defaults or ProvisioningDefaults()
    known = generations or {}

    def user(code: str) -> str:
        return principal(code, known.get(code, FIRST_GENERATION))

    in_force = routes_in_force(policy, at)
    writers = {(sender, signal) for sender, signal, _recipient in in_force}
    readers = {(recipient, signal) for _sender, signal, recipient in in_force}
    ingress: dict[str, int] = {}
    deliveries: dict[str, int] = {}
    acls: set[AclSpec] = set()
    for agreement in policy.agreements:
        for sender in agreement.possible_senders:
            topic = ingress_topic(agreement.signal, sender)
            ingress[topic] = min(
                ingress.get(topic, defaults.ingress_retention_days), agreement.retention_days
            )
            if (sender, agreement.signal) in writers:
                acls |= _topic_acls(user(sender), topic, Operation.WRITE)
            acls |= _topic_acls(user(Role.GATEWAY), topic, Operation.READ)
        for recipient in agreement.possible_recipients:
            topic = delivery_topic(agreement.signal, recipient)
            deliveries[topic] = max(deliveries.get(topic, 0), agreement.retention_days)
            if (recipient, agreement.signal) in readers:
                acls |= _topic_acls(user(recipient), topic, Operation.READ)
            acls |= _topic_acls(user(Role.GATEWAY), topic, Operation.WRITE)

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
        TopicSpec(WITNESS_ALARM_TOPIC, 1, -1),
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
        acls |= _topic_acls(user(party), receipts_topic(party), Operation.WRITE)
        acls |= _topic_acls(user(party), CHECKPOINT_TOPIC, Operation.READ)
        # any party may witness, and anyone may read the evidence (signed checkpoints only)
        acls |= _topic_acls(user(party), WITNESS_ALARM_TOPIC, Operation.WRITE, Operation.READ)
        acls.add(
            AclSpec(
                user(party),
                Resource.GROUP,
                subscriber_group_prefix(party),
                Pattern.PREFIXED,
                Operation.READ,
            )
        )

    gateway = user(Role.GATEWAY)
    acls |= _topic_acls(gateway, AUDIT_TOPIC, Operation.WRITE)
    acls |= _topic_acls(gateway, DEAD_LETTER_TOPIC, Operation.WRITE)
    acls |= _topic_acls(gateway, LEDGER_TOPIC, Operation.WRITE, Operation.READ)
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

    audit = user(Role.AUDIT)
    acls |= _topic_acls(audit, AUDIT_TOPIC, Operation.READ)
    acls |= _topic_acls(audit, CHECKPOINT_TOPIC, Operation.WRITE, Operation.READ)
    acls |= _topic_acls(audit, WITNESS_ALARM_TOPIC, Operation.READ)
    acls |= {
        AclSpec(audit, Resource.TOPIC, RECEIPTS_PREFIX, Pattern.PREFIXED, Operation.READ),
        AclSpec(audit, Resource.TOPIC, RECEIPTS_PREFIX, Pattern.PREFIXED, Operation.DESCRIBE),
        AclSpec(audit, Resource.GROUP, AUDIT_GROUP_PREFIX, Pattern.PREFIXED, Operation.READ),
    }
    return Topology(
        tuple(sorted(topics)), frozenset(acls), compiled_at=at, next_change=next_change(policy, at)
    )


def is_managed(acl: AclSpec) -> bool:
    """True for ACLs provisioning owns: those on sigex's own resources, and the gateway's
    cluster ACL (of any of its key generations, and of the name without one)."""
    if acl.resource is Resource.CLUSTER:
        return acl.principal == f"User:{Role.GATEWAY}" or acl.principal.startswith(
            f"User:{Role.GATEWAY}.g"
        )
    return acl.name.startswith((f"{TOPIC_PREFIX}.", f"{TOPIC_PREFIX}-"))
