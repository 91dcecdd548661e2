"""Partner nodes served for real (uvicorn on a free port) in front of the test exchange."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import uvicorn

from sigex.node.access import PublishGrants
from sigex.node.server import server_config
from sigex.node.service import NodeSettings, PartnerNode, build_node
from tests.conftest import free_port
from tests.integration.exchange_kit import ExchangeKit


@dataclass
class RunningNode:
    party: str
    node: PartnerNode
    url: str


@contextmanager
def running_node(
    kit: ExchangeKit,
    party: str,
    *,
    settings: NodeSettings | None = None,
    grants: tuple[str, ...] = (),
    idempotency: Path | None = None,
) -> Iterator[RunningNode]:
    """A node of ``party`` served by uvicorn until the block ends (graceful shutdown)."""
    settings = replace(settings or NodeSettings(rate=0), port=free_port())
    node = build_node(
        state_dir=kit.state_dir,
        party=party,
        settings=settings,
        connection=kit.exchange.connection(party),
        catalogue=kit.catalogue,
        policy=kit.policy,
        clock=kit.clock,
        grants=PublishGrants.parse(grants),
        idempotency_path=idempotency,
    )
    server = uvicorn.Server(server_config(node))
    thread = threading.Thread(target=server.run, name=f"node-{party}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, f"the node of {party} did not start"
    scheme = "https" if settings.tls else "http"
    try:
        yield RunningNode(party, node, f"{scheme}://127.0.0.1:{settings.port}")
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_ready(node: RunningNode, timeout: float = 60.0) -> None:
    """Until the node's publisher is connected and its pump holds its partitions."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not node.node.not_ready() and node.node.pump.subscribed:
            return
        time.sleep(0.2)
    raise AssertionError(f"node {node.party} not ready: {node.node.not_ready()}")


def caught_up(kit: ExchangeKit, quiet: float = 5.0, timeout: float = 300.0) -> None:
    """Until the kit's gateway has worked through what earlier tests left on the ingress
    topics (a new gateway group starts at the earliest offset): ``quiet`` s with nothing new."""
    deadline = time.monotonic() + timeout
    last, since = kit.runner.processed, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if kit.runner.processed != last:
            last, since = kit.runner.processed, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise AssertionError(f"the gateway still works through a backlog after {timeout:.0f} s")
