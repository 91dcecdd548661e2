"""The compose stack, run for real: three brokers, two gateways, the audit services.

These tests need a Docker engine and the images (``docker/images/build.sh``); they
run only when ``SIGEX_STACK_TEST=1`` (``make stack-test`` sets it, builds the images,
and brings the stack up and down). Partners act from the host, with certificates
the stack's own init container made, on the brokers' published mutual-TLS ports.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient

REPO = Path(__file__).resolve().parents[2]
PROJECT = "sigex-stack-test"
PORTS = {
    "KAFKA_1_HOST_PORT": "39092",
    "KAFKA_2_HOST_PORT": "39093",
    "KAFKA_3_HOST_PORT": "39094",
    "NODE_GM0363_HOST_PORT": "38470",
}
BOOTSTRAP = ",".join(f"localhost:{port}" for name, port in PORTS.items() if "KAFKA" in name)
HEALTHY_WITHIN = 300
API_PORT = 8443
CONSOLE_PORT = 8444


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("SIGEX_STACK_TEST") != "1":
        skip = pytest.mark.skip(reason="the compose stack: make stack-test (SIGEX_STACK_TEST=1)")
        for item in items:
            if "tests/stack/" in str(item.fspath):
                item.add_marker(skip)


def compose_command() -> list[str]:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        base = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        base = ["docker-compose"]
    else:
        raise RuntimeError("neither 'docker compose' nor 'docker-compose' is installed")
    return [*base, "--env-file", env_file(), "-p", PROJECT, "-f", str(REPO / "docker/compose.yaml")]


def env_file() -> str:
    """The compose variables: the local images unless SIGEX_STACK_ENV_FILE names others."""
    return os.environ.get("SIGEX_STACK_ENV_FILE", str(REPO / "docker/images/local.env"))


@dataclass
class Stack:
    state_dir: Path
    bootstrap: str = BOOTSTRAP

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*compose_command(), *args],
            env=os.environ | PORTS,
            capture_output=True,
            text=True,
            check=check,
            timeout=600,
        )

    def container(self, service: str, index: int = 1) -> str:
        return (
            f"{PROJECT}_{service}_{index}"
            if "docker-compose" in compose_command()[0]
            else (f"{PROJECT}-{service}-{index}")
        )

    def docker(self, *args: str) -> str:
        return subprocess.run(
            ["docker", *args], capture_output=True, text=True, check=True, timeout=300
        ).stdout

    def unhealthy(self) -> list[str]:
        names = self.docker("ps", "-a", "--filter", f"label=com.docker.compose.project={PROJECT}",
                            "--format", "{{.Names}}").split()  # fmt: skip
        waiting = []
        for name in names:
            state = json.loads(self.docker("inspect", "--format", "{{json .State}}", name))
            health = (state.get("Health") or {}).get("Status")
            finished_ok = state["Status"] == "exited" and state["ExitCode"] == 0
            if not finished_ok and health not in (None, "healthy"):
                waiting.append(f"{name} ({health})")
            elif state["Status"] == "exited" and state["ExitCode"] != 0:
                waiting.append(f"{name} (exited {state['ExitCode']})")
        return waiting

    def extract_federation(self, into: Path) -> Path:
        """Copy the federation volume (keys, certificates, directory) to ``into``/federation."""
        archive = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "tar",
             "-v", f"{PROJECT}_federation:/var/lib/sigex/federation",
             "sigex:" + os.environ.get("IMAGE_TAG", "0.1.0"),
             "-C", "/var/lib/sigex", "-c", "federation"],
            capture_output=True, check=True, timeout=120,
        ).stdout  # fmt: skip
        into.mkdir(mode=0o700, parents=True, exist_ok=True)
        if (into / "federation").exists():
            shutil.rmtree(into / "federation")
        subprocess.run(["tar", "-C", str(into), "-x"], input=archive, check=True)
        for path in (into / "federation").rglob("*"):
            path.chmod(0o700 if path.is_dir() else 0o600)
        return into / "federation"

    def audit(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``sigex audit ARGS`` inside the audit API's container (it reaches the database)."""
        return subprocess.run(
            ["docker", "exec", self.container("audit-api"), "/bin/sh",
             "/opt/sigex/entry/with-db-password.sh", "audit", *args],
            capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip

    def _auditor_tls(self) -> ssl.SSLContext:
        federation = self.state_dir / "federation"
        context = ssl.create_default_context(cafile=str(federation / "ca.pem"))
        auditor = federation / "parties" / "AUDITOR"
        context.load_cert_chain(str(auditor / "tls.pem"), str(auditor / "tls.key"))
        return context

    def api(self, path: str) -> dict[str, Any]:
        """GET the audit API as the auditor (mutual TLS with the AUDITOR certificate)."""
        with urllib.request.urlopen(  # our own https API
            f"https://localhost:{API_PORT}{path}", context=self._auditor_tls(), timeout=30
        ) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def console(self, path: str) -> str:
        """GET a page of the auditor's console as the auditor."""
        with urllib.request.urlopen(  # our own https console
            f"https://localhost:{CONSOLE_PORT}{path}", context=self._auditor_tls(), timeout=30
        ) as response:
            return str(response.read().decode("utf-8"))

    def admin(self) -> KafkaAdminClient:
        """An admin client as ADMIN, from the host, over the partners' mutual-TLS ports."""
        federation = self.state_dir / "federation"
        return KafkaAdminClient(
            bootstrap_servers=self.bootstrap.split(","),
            security_protocol="SSL",
            ssl_cafile=str(federation / "ca.pem"),
            ssl_certfile=str(federation / "admin" / "tls.pem"),
            ssl_keyfile=str(federation / "admin" / "tls.key"),
            ssl_check_hostname=True,
            request_timeout_ms=30_000,
        )

    def wait_healthy(self, seconds: float = HEALTHY_WITHIN) -> None:
        deadline = time.monotonic() + seconds
        while (waiting := self.unhealthy()) and time.monotonic() < deadline:
            time.sleep(3)
        assert not waiting, f"not healthy after {seconds:.0f} s: {', '.join(waiting)}"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("stack-state")
    running = Stack(state)
    running.compose("down", "-v", "--remove-orphans", check=False)
    # as an operator starts it: docker/stack.py checks the secret (made when missing) and
    # the images, brings the stack up and waits until every service is healthy
    started = subprocess.run(
        [sys.executable, str(REPO / "docker" / "stack.py"), "up", "-p", PROJECT,
         "--make-secret", "--wait", str(HEALTHY_WITHIN),
         "--env-file", env_file()],
        env=os.environ | PORTS, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        running.extract_federation(state)  # the partners' certificates, as init made them
        yield running
    finally:
        if os.environ.get("SIGEX_STACK_KEEP") != "1":
            running.compose("down", "-v", "--remove-orphans", check=False)
