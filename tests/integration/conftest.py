"""A secure exchange for integration tests: a federation, a TLS broker with ACLs, provisioned."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient

from sigex.broker import local
from sigex.broker.provision import provision
from sigex.clock import SystemClock
from sigex.exchange.topology import ProvisioningDefaults, Topology, compile_topology
from sigex.identity import init_federation, load_directory, read_parties
from sigex.policies.compiled import CompiledPolicy
from sigex.policies.compiler import load_policy
from sigex.roles import Role
from sigex.transport import KafkaConnection
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
#: the moment the exchange's ACLs are compiled for: the gateway clock of the exchange tests
#: (``exchange_kit.EXCHANGE_TIME``), when the agreements they use are in force
PROVISIONED_AT = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SecureExchange:
    """A running broker with mutual TLS and ACLs, and the federation that can reach it."""

    bootstrap: str
    state_dir: Path

    def connection(self, party: str) -> KafkaConnection:
        return KafkaConnection.for_party(self.bootstrap, self.state_dir, party)

    def admin(self) -> KafkaAdminClient:
        return KafkaAdminClient(**self.connection(Role.ADMIN).options())

    def topology(
        self, policy: CompiledPolicy | None = None, at: datetime = PROVISIONED_AT
    ) -> Topology:
        """The topics and ACLs at ``at``, for the key generations the federation lists now."""
        return compile_topology(
            policy or load_policy(),
            ProvisioningDefaults(partitions=3),
            at=at,
            generations=load_directory(self.state_dir).generations(),
        )


@pytest.fixture(scope="session")
def secure_exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureExchange]:
    """One exchange shared by the tests that publish a few signals each."""
    yield from running_exchange(tmp_path_factory.mktemp("federation"))


def running_exchange(state: Path) -> Iterator[SecureExchange]:
    """A new federation and TLS broker in ``state``, provisioned; stopped afterwards."""
    init_federation(state, read_parties(REPO / "policies" / "parties.yaml"), SystemClock())
    federation = state / "federation"
    settings = local.BrokerSettings(
        home=state / "broker",
        port=free_port(),
        controller_port=free_port(),
        tls=local.TlsSettings(
            keystore_pem=federation / "broker" / "keystore.pem",
            truststore_pem=federation / "broker" / "truststore.pem",
        ),
    )
    local.start(settings)
    exchange = SecureExchange(settings.bootstrap, state)
    admin = exchange.admin()
    try:
        provision(admin, exchange.topology())
    finally:
        admin.close()
    try:
        yield exchange
    finally:
        local.stop(settings)
