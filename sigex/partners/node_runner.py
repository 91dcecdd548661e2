"""A partner node served in-process for the demo, and its case system run against it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import uvicorn

from sigex.clock import Clock
from sigex.errors import SigexError
from sigex.node.server import server_config
from sigex.node.service import DEFAULT_PORT, NodeSettings, build_node
from sigex.partners import case_system
from sigex.policies.compiled import CompiledPolicy
from sigex.schemas.catalogue import Catalogue
from sigex.transport import KafkaConnection

DEFAULT_NODE_PORT = DEFAULT_PORT
PARTY = "GM0363"


class NodeDidNotStart(SigexError):
    """The demo's partner node could not serve (its port is taken, or it never got ready)."""


@dataclass
class DemoNode:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    @classmethod
    def start(
        cls,
        state: Path,
        bootstrap: str,
        policy: CompiledPolicy,
        catalogue: Catalogue,
        clock: Clock,
        port: int,
        party: str = PARTY,
        timeout: float = 60.0,
    ) -> DemoNode:
        node = build_node(
            state_dir=state,
            party=party,
            settings=NodeSettings(port=port, rate=0),
            connection=KafkaConnection.for_party(bootstrap, state, party),
            catalogue=catalogue,
            policy=policy,
            clock=clock,
        )
        server = uvicorn.Server(server_config(node))
        thread = threading.Thread(target=server.run, name=f"node-{party}", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and thread.is_alive():
            if server.started and not node.not_ready() and node.pump.subscribed:
                return cls(f"http://127.0.0.1:{port}", server, thread)
            time.sleep(0.1)
        server.should_exit = True
        raise NodeDidNotStart(
            f"{party}'s partner node on 127.0.0.1:{port} did not become ready "
            f"({', '.join(node.not_ready()) or 'port in use?'}); try --node-port"
        )

    def run_case_system(self, state: Path, now: datetime) -> case_system.Summary:
        """The case system takes everything waiting, answers it, and returns when idle."""
        folder = state / "case-system"
        folder.mkdir(exist_ok=True)
        cases = case_system.CaseFile(str(folder / f"{PARTY}.sqlite"))
        try:
            return case_system.run(
                case_system.NodeClient(self.url), cases, PARTY, until_idle=4.0, now=now, wait=1.0
            )
        finally:
            cases.close()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
