"""``sigex broker start|status|stop`` against a real broker, and its clear errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sigex.broker.jars import cache_dir, is_cached, kafka_version

SIGEX = str(Path(sys.executable).parent / "sigex")


def run_sigex(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SIGEX, *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        check=False,
        timeout=240,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def assert_clear_error(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_start_status_stop_and_crash_detection(tmp_path: Path) -> None:
    ports = ["--port", str(free_port()), "--controller-port", str(free_port())]
    home = ["--home", str(tmp_path / "broker")]

    assert run_sigex("broker", "status", *home, *ports).returncode == 1

    started = run_sigex("broker", "start", *home, *ports)
    assert started.returncode == 0, started.stderr
    assert "started" in started.stdout
    try:
        again = run_sigex("broker", "start", *home, *ports)
        assert again.returncode == 0
        assert "already running" in again.stdout

        running = run_sigex("broker", "status", *home, *ports)
        assert running.returncode == 0
        assert "running" in running.stdout

        pid = int((tmp_path / "broker" / "broker.pid").read_text())
        os.killpg(pid, signal.SIGKILL)
        for _ in range(100):
            crashed = run_sigex("broker", "status", *home, *ports)
            if crashed.returncode == 3:
                break
            time.sleep(0.1)
        assert crashed.returncode == 3
        assert "crashed" in crashed.stdout

        # After a crash a new start recovers on the same data.
        restarted = run_sigex("broker", "start", *home, *ports)
        assert restarted.returncode == 0, restarted.stderr
    finally:
        stopped = run_sigex("broker", "stop", *home, *ports)
    assert stopped.returncode == 0
    assert "stopped" in stopped.stdout
    assert run_sigex("broker", "status", *home, *ports).returncode == 1


def test_port_taken_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        result = run_sigex(
            "broker",
            "start",
            "--home",
            str(tmp_path),
            "--port",
            str(taken),
            "--controller-port",
            str(free_port()),
        )
    assert_clear_error(result, f"port {taken}")


def _env_without(*tools: str, tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH holds only python, sigex and the named tools' absence."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    keep = {"java", "mvn"} - set(tools)
    for tool in keep:
        for folder in os.environ["PATH"].split(os.pathsep):
            candidate = Path(folder) / tool
            if candidate.exists():
                (bin_dir / tool).symlink_to(candidate)
                break
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(bin_dir)])
    return env


def test_missing_java_is_a_clear_error(tmp_path: Path) -> None:
    env = _env_without("java", tmp_path=tmp_path)
    result = run_sigex(
        "broker",
        "start",
        "--home",
        str(tmp_path / "b"),
        "--port",
        str(free_port()),
        "--controller-port",
        str(free_port()),
        env=env,
    )
    assert_clear_error(result, "Java not found")


def test_missing_maven_is_a_clear_error_when_nothing_is_cached(tmp_path: Path) -> None:
    env = _env_without("mvn", tmp_path=tmp_path)
    env["SIGEX_CACHE_DIR"] = str(tmp_path / "empty-cache")
    result = run_sigex(
        "broker",
        "start",
        "--home",
        str(tmp_path / "b"),
        "--port",
        str(free_port()),
        "--controller-port",
        str(free_port()),
        env=env,
    )
    assert_clear_error(result, "'mvn' is not on PATH")


def test_failed_download_is_a_clear_error_and_leaves_nothing_behind(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["SIGEX_CACHE_DIR"] = str(tmp_path / "cache")
    env["SIGEX_KAFKA_VERSION"] = "0.0.404-no-such-release"
    result = run_sigex("broker", "fetch", env=env)
    assert_clear_error(result, "could not fetch Kafka 0.0.404-no-such-release")
    leftovers = list((tmp_path / "cache").rglob("*.jar"))
    assert leftovers == []


@pytest.mark.skipif(not is_cached(kafka_version(), cache_dir()), reason="jars not cached yet")
def test_cached_jars_start_without_maven(tmp_path: Path) -> None:
    env = _env_without("mvn", tmp_path=tmp_path)
    home = ["--home", str(tmp_path / "broker")]
    ports = ["--port", str(free_port()), "--controller-port", str(free_port())]
    started = run_sigex("broker", "start", *home, *ports, env=env)
    try:
        assert started.returncode == 0, started.stderr
    finally:
        run_sigex("broker", "stop", *home, *ports, env=env)
