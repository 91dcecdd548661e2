"""compile_topology(): ACLs for the routes in force at a moment and current key generations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from sigex.exchange.topology import (
    AclSpec,
    Operation,
    Pattern,
    Resource,
    Topology,
    compile_topology,
    delivery_topic,
    ingress_topic,
    is_managed,
    principal,
)
from sigex.policies.compiled import CompiledPolicy, day_start
from sigex.policies.compiler import load_policy
from sigex.policies.errors import PolicyError
from sigex.roles import Role

BEFORE_WTTA = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
AFTER_WTTA = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
JUSTIS_IN = ingress_topic("waadi.admission-violation", "JUSTIS")
RVIG_PAYROLL_OUT = delivery_topic("payroll.bsn-mismatch", "RVIG")


@pytest.fixture(scope="module")
def policy() -> CompiledPolicy:
    return load_policy()


def _may(topology: Topology, who: str, operation: Operation, topic: str) -> bool:
    return AclSpec(who, Resource.TOPIC, topic, Pattern.LITERAL, operation) in topology.acls


def test_justis_may_not_write_its_ingress_before_its_agreements_start(
    policy: CompiledPolicy,
) -> None:
    wtta_start = day_start(date(2027, 1, 1), policy.zone)
    for at in (BEFORE_WTTA, wtta_start - timedelta(microseconds=1)):
        topology = compile_topology(policy, at=at)
        assert JUSTIS_IN in {t.name for t in topology.topics}, "the topic exists early"
        assert not _may(topology, principal("JUSTIS"), Operation.WRITE, JUSTIS_IN)
        assert not _may(topology, principal("JUSTIS"), Operation.DESCRIBE, JUSTIS_IN)
    for at in (wtta_start, AFTER_WTTA):
        assert _may(
            compile_topology(policy, at=at), principal("JUSTIS"), Operation.WRITE, JUSTIS_IN
        )


def test_the_acls_end_with_the_agreements(policy: CompiledPolicy) -> None:
    after_everything = datetime(2040, 1, 1, tzinfo=UTC)
    topology = compile_topology(policy, at=after_everything)
    parties = {acl.principal for acl in topology.acls if ".in." in acl.name or ".out." in acl.name}
    assert parties == {principal(Role.GATEWAY)}, "only the gateway keeps ACLs on signal topics"
    assert topology.next_change is None


def test_rvig_may_never_read_a_delivery_topic_backed_only_by_a_basis_under_review(
    policy: CompiledPolicy,
) -> None:
    for at in (BEFORE_WTTA, AFTER_WTTA, datetime(2028, 6, 1, tzinfo=UTC)):
        topology = compile_topology(policy, at=at)
        assert RVIG_PAYROLL_OUT in {t.name for t in topology.topics}
        assert not _may(topology, principal("RVIG"), Operation.READ, RVIG_PAYROLL_OUT)
        assert not _may(topology, principal("RVIG"), Operation.DESCRIBE, RVIG_PAYROLL_OUT)
        # RVIG's lawful deliveries stay readable
        laa_out = delivery_topic("laa.investigation-outcome", "RVIG")
        assert _may(topology, principal("RVIG"), Operation.READ, laa_out)


def test_next_change_is_the_next_window_boundary(policy: CompiledPolicy) -> None:
    topology = compile_topology(policy, at=BEFORE_WTTA)
    assert topology.compiled_at == BEFORE_WTTA
    assert topology.next_change == day_start(date(2027, 1, 1), policy.zone)
    assert topology.next_change is not None
    # just before it, the ACLs are those of BEFORE_WTTA; at it, they differ
    just_before = compile_topology(policy, at=topology.next_change - timedelta(microseconds=1))
    assert just_before.acls == topology.acls
    assert compile_topology(policy, at=topology.next_change).acls != topology.acls


def test_acls_go_to_the_current_key_generation_only(policy: CompiledPolicy) -> None:
    first = compile_topology(policy, at=AFTER_WTTA)
    revoked = compile_topology(policy, at=AFTER_WTTA, generations={"NLA": 2, Role.GATEWAY: 3})
    assert not revoked.acls_of(principal("NLA", 1))
    assert not revoked.acls_of(principal(Role.GATEWAY, 1))
    renamed = {
        AclSpec(principal("NLA", 2), a.resource, a.name, a.pattern, a.operation)
        for a in first.acls_of(principal("NLA", 1))
    }
    assert revoked.acls_of(principal("NLA", 2)) == renamed
    assert revoked.acls_of(principal("UWV", 1)) == first.acls_of(principal("UWV", 1))
    cluster = [a for a in revoked.acls if a.resource is Resource.CLUSTER]
    assert [a.principal for a in cluster] == [principal(Role.GATEWAY, 3)]
    assert all(is_managed(a) for a in revoked.acls)


def test_the_principal_names_code_and_generation() -> None:
    assert principal("NLA") == "User:NLA.g1"
    assert principal("GM0363", 12) == "User:GM0363.g12"


def test_a_gateway_cluster_acl_of_any_generation_is_managed() -> None:
    for who in ("User:GATEWAY", "User:GATEWAY.g1", "User:GATEWAY.g7"):
        acl = AclSpec(who, Resource.CLUSTER, "kafka-cluster", Pattern.LITERAL, Operation.WRITE)
        assert is_managed(acl)
    other = AclSpec(
        "User:NLA.g1", Resource.CLUSTER, "kafka-cluster", Pattern.LITERAL, Operation.WRITE
    )
    assert not is_managed(other)


def test_a_moment_without_a_time_zone_is_refused(policy: CompiledPolicy) -> None:
    with pytest.raises(PolicyError):
        compile_topology(policy, at=datetime(2027, 2, 1))
