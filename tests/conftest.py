"""Session fixtures: a real Kafka broker and a real PostgreSQL, never fakes.

``kafka_bootstrap`` uses ``SIGEX_BOOTSTRAP`` when set (``.ci/run`` starts a
broker and sets it), a testcontainers Kafka container when a Docker engine
answers and a Kafka image is there (``tests/kafka_container.py``), and
otherwise starts the project's own local broker on free ports in a temporary
folder. ``postgres_dsn`` works the same way with
``SIGEX_TEST_POSTGRES_DSN`` and Debian's PostgreSQL server binaries.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import kafka_container

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real plaintext Apache Kafka broker."""
    configured = os.environ.get("SIGEX_BOOTSTRAP")
    if configured:
        yield configured
        return
    if _docker_answers() and (image := kafka_container.choose_image()):
        with kafka_container.kafka_container(image, free_port()) as bootstrap:
            yield bootstrap
        return
    from sigex.broker import local

    settings = local.BrokerSettings(
        home=tmp_path_factory.mktemp("kafka"),
        port=free_port(),
        controller_port=free_port(),
    )
    local.start(settings)
    try:
        yield settings.bootstrap
    finally:
        local.stop(settings)


def _postgres_bin() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


def _start_postgres(base: Path) -> tuple[str, list[str]] | None:
    bindir = _postgres_bin()
    if bindir is None:
        return None
    run_as: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root; the server runs as Debian's postgres user,
        # in a folder of its own (pytest's temporary folders are closed to other users).
        if shutil.which("runuser") is None:
            return None
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, user="postgres")
    data = base / "pgdata"
    port = free_port()
    subprocess.run(
        [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "sigex", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *run_as,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1",
            "-l",
            str(base / "postgres.log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    stop = [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]
    return f"postgresql://sigex@127.0.0.1:{port}/postgres", stop


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DSN of a real PostgreSQL server (skipped outside CI when none can be had)."""
    configured = os.environ.get("SIGEX_TEST_POSTGRES_DSN")
    if configured:
        yield configured
        return
    started = None
    base = Path(tempfile.mkdtemp(prefix="sigex-test-postgres-"))
    try:
        started = _start_postgres(base)
    except subprocess.CalledProcessError as failure:
        reason = f"could not start PostgreSQL: {failure.stderr!r}"
    else:
        reason = "no PostgreSQL server binaries (apt-get install postgresql)"
    if started is None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    dsn, stop = started
    try:
        yield dsn
    finally:
        subprocess.run(stop, check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
