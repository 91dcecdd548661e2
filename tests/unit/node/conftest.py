"""A partner node over a real federation, with no broker behind it (a closed port).

What the node must refuse or answer before it talks to Kafka is tested here;
the exchange itself is tested against the real broker in
``tests/integration/test_partner_node.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from sigex.clock import FixedClock, SystemClock
from sigex.identity import init_federation, read_parties
from sigex.node.access import PublishGrants
from sigex.node.app import create_app
from sigex.node.service import NodeSettings, PartnerNode, build_node
from sigex.policies.compiler import load_policy
from sigex.schemas.catalogue import load_catalogue
from sigex.transport import KafkaConnection
from tests.conftest import REPO, free_port

NodeClient = Callable[..., "contextmanager[TestClient]"]


class _ClosedPort(KafkaConnection):
    """A broker address nobody listens on, given up on after a second.

    kafka-python tries to bootstrap for 30 s by default: the node's connecting threads
    then outlived each test by that long and logged into later tests' captured output.
    """

    def options(self) -> dict[str, object]:
        return super().options() | {"bootstrap_timeout_ms": 1000}


@pytest.fixture(scope="session")
def node_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("node-state")
    init_federation(state, read_parties(REPO / "policies" / "parties.yaml"), SystemClock())
    return state


@contextmanager
def node_client(
    state: Path,
    party: str = "RVIG",
    *,
    grants: tuple[str, ...] = (),
    **settings: object,
) -> Iterator[TestClient]:
    """A TestClient of a node of ``party`` whose broker does not answer."""
    node = make_node(state, party, grants=grants, **settings)
    with TestClient(create_app(node), raise_server_exceptions=False) as client:
        yield client


def make_node(
    state: Path, party: str, *, grants: tuple[str, ...] = (), **settings: object
) -> PartnerNode:
    closed = f"127.0.0.1:{free_port()}"
    return build_node(
        state_dir=state,
        party=party,
        settings=NodeSettings(**settings),  # type: ignore[arg-type]
        connection=_ClosedPort.for_party(closed, state, party),
        catalogue=load_catalogue(),
        policy=load_policy(),
        clock=FixedClock(),
        grants=PublishGrants.parse(grants),
        idempotency_path=state / "idempotency" / f"{party}-{free_port()}.sqlite",
    )
