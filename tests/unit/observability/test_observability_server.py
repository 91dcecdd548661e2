"""sigex.observability: metrics on a private registry, served with real HTTP on loopback."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from sigex.clock import FixedClock
from sigex.config import load_settings
from sigex.logs import get_logger
from sigex.observability import (
    AuditMetrics,
    GatewayMetrics,
    MetricLabelError,
    NamedCheck,
    OperationsServer,
    Readiness,
    configure_logging,
    readiness_of,
    start_operations,
)

HEALTHCHECK = Path(__file__).resolve().parents[3] / "docker" / "healthcheck.py"


def fetch(port: int, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_gateway_metrics_are_served_on_metrics() -> None:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    metrics.signal_received("laa.frequent-mover")
    metrics.signal_received("laa.frequent-mover")
    metrics.delivered("laa.frequent-mover", "GM0363")
    metrics.refused("NO_AGREEMENT")
    metrics.observe_decision(0.0003)
    with metrics.time_decision():
        pass
    metrics.transaction_committed()
    metrics.transaction_aborted()
    metrics.set_consumer_lag("laa.frequent-mover.in", 0, 42)
    with OperationsServer(registry=registry, host="127.0.0.1", port=0) as server:
        status, content_type, body = fetch(server.port, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    found = samples(body)
    assert found[("sigex_gateway_signals_in_total", (("signal", "laa.frequent-mover"),))] == 2
    assert (
        found[
            (
                "sigex_gateway_delivered_total",
                (("recipient", "GM0363"), ("signal", "laa.frequent-mover")),
            )
        ]
        == 1
    )
    assert found[("sigex_gateway_refused_total", (("reason", "NO_AGREEMENT"),))] == 1
    assert found[("sigex_gateway_decision_seconds_count", ())] == 2
    assert found[("sigex_gateway_decision_seconds_bucket", (("le", "0.0005"),))] >= 1
    assert found[("sigex_gateway_transactions_total", (("outcome", "commit"),))] == 1
    assert found[("sigex_gateway_transactions_total", (("outcome", "abort"),))] == 1
    lag_key = (
        "sigex_gateway_consumer_lag",
        (("partition", "0"), ("topic", "laa.frequent-mover.in")),
    )
    assert found[lag_key] == 42


def test_consumer_lag_of_a_revoked_partition_disappears() -> None:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    metrics.set_consumer_lag("payroll.bsn-mismatch.in", 3, 7)
    metrics.forget_partition("payroll.bsn-mismatch.in", 3)
    metrics.forget_partition("payroll.bsn-mismatch.in", 3)  # twice is harmless
    assert (
        registry.get_sample_value(
            "sigex_gateway_consumer_lag", {"topic": "payroll.bsn-mismatch.in", "partition": "3"}
        )
        is None
    )


def test_metrics_use_a_private_registry() -> None:
    GatewayMetrics(CollectorRegistry())
    GatewayMetrics(CollectorRegistry())  # a second process-like instance does not clash
    assert REGISTRY.get_sample_value("sigex_gateway_signals_in_total", {"signal": "x"}) is None


@pytest.mark.parametrize("value", ["123456782", "", "has space", "a" * 200, "bsn=123456782"])
def test_label_values_must_be_codes(value: str) -> None:
    metrics = GatewayMetrics(CollectorRegistry())
    with pytest.raises(MetricLabelError) as raised:
        metrics.refused(value)
    assert "123456782" not in str(raised.value)


def test_audit_metrics_and_checkpoint_age() -> None:
    registry = CollectorRegistry()
    clock = FixedClock()
    metrics = AuditMetrics(registry, clock)
    assert registry.get_sample_value("sigex_audit_checkpoint_age_seconds") == -1
    metrics.records_appended(3, log_size=10)
    metrics.records_appended(2, log_size=12)
    metrics.checkpoint_signed(clock.now())
    clock.advance(timedelta(seconds=90))
    metrics.verify_failed()
    with OperationsServer(registry=registry, host="127.0.0.1", port=0) as server:
        found = samples(fetch(server.port, "/metrics")[2])
    assert found[("sigex_audit_records_appended_total", ())] == 5
    assert found[("sigex_audit_log_size", ())] == 12
    assert found[("sigex_audit_checkpoint_age_seconds", ())] == 90
    assert found[("sigex_audit_verify_failures_total", ())] == 1
    with pytest.raises(ValueError):
        metrics.records_appended(-1, log_size=0)


def test_livez_and_readyz_follow_the_callback() -> None:
    state = {"broker": False, "assignment": False}
    readiness = readiness_of(
        (
            NamedCheck("broker", lambda: state["broker"]),
            NamedCheck("assignment", lambda: state["assignment"]),
        )
    )
    with OperationsServer(
        registry=CollectorRegistry(), readiness=readiness, host="127.0.0.1", port=0
    ) as server:
        assert fetch(server.port, "/livez")[0] == 200
        status, _, body = fetch(server.port, "/readyz")
        assert status == 503
        assert "broker" in body and "assignment" in body
        state["broker"] = True
        status, _, body = fetch(server.port, "/readyz")
        assert (status, body) == (503, "not ready: assignment\n")
        state["assignment"] = True
        assert fetch(server.port, "/readyz")[:3:2] == (200, "ready\n")
        assert fetch(server.port, "/nothing")[0] == 404


def test_a_raising_readiness_callback_answers_503() -> None:
    def broken() -> Readiness:
        raise RuntimeError("boom")

    def raising_check() -> bool:
        raise OSError("broker gone")

    with OperationsServer(
        registry=CollectorRegistry(), readiness=broken, host="127.0.0.1", port=0
    ) as server:
        assert fetch(server.port, "/readyz")[0] == 503
        assert fetch(server.port, "/livez")[0] == 200
    checks = readiness_of((NamedCheck("broker", raising_check),))
    assert checks() == Readiness.no(("broker",))


def test_concurrent_requests_are_answered() -> None:
    registry = CollectorRegistry()
    GatewayMetrics(registry).signal_received("waadi.admission-violation")
    results: list[int] = []
    with OperationsServer(registry=registry, host="127.0.0.1", port=0) as server:
        threads = [
            threading.Thread(target=lambda: results.append(fetch(server.port, "/metrics")[0]))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [200] * 8


def test_separate_metrics_and_health_ports() -> None:
    registry = CollectorRegistry()
    first = OperationsServer(registry=registry, host="127.0.0.1", port=0)
    first.start()
    metrics_port = first.port
    first.stop()
    second = OperationsServer(registry=registry, host="127.0.0.1", port=0)
    second.start()
    health_port = second.port
    second.stop()
    servers = start_operations(
        registry=registry,
        readiness=Readiness.yes,
        metrics_port=metrics_port,
        health_port=health_port,
        host="127.0.0.1",
    )
    try:
        assert len(servers.servers) == 2
        assert fetch(metrics_port, "/metrics")[0] == 200
        assert fetch(metrics_port, "/livez")[0] == 404
        assert fetch(health_port, "/readyz")[0] == 200
        assert fetch(health_port, "/metrics")[0] == 404
    finally:
        servers.stop()


def test_one_server_when_ports_are_equal() -> None:
    probe = OperationsServer(registry=CollectorRegistry(), host="127.0.0.1", port=0)
    probe.start()
    port = probe.port
    probe.stop()
    servers = start_operations(
        registry=CollectorRegistry(),
        readiness=Readiness.yes,
        metrics_port=port,
        health_port=port,
        host="127.0.0.1",
    )
    try:
        assert len(servers.servers) == 1
        assert [fetch(port, path)[0] for path in ("/metrics", "/livez", "/readyz")] == [200] * 3
    finally:
        servers.stop()


def test_stopped_server_no_longer_answers() -> None:
    server = OperationsServer(registry=CollectorRegistry(), host="127.0.0.1", port=0)
    server.start()
    port = server.port
    server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=2)


def run_healthcheck(port: int, path: str | None) -> int:
    argv = [sys.executable, str(HEALTHCHECK)] + ([path] if path else [])
    return subprocess.run(
        argv, env={"SIGEX_HEALTH_PORT": str(port)}, capture_output=True, check=False, timeout=30
    ).returncode


def test_container_healthcheck_script_against_a_real_server() -> None:
    ready = {"now": False}
    readiness = readiness_of((NamedCheck("consumer", lambda: ready["now"]),))
    with OperationsServer(
        registry=CollectorRegistry(), readiness=readiness, host="127.0.0.1", port=0
    ) as server:
        assert run_healthcheck(server.port, "/livez") == 0
        assert run_healthcheck(server.port, None) == 1
        ready["now"] = True
        assert run_healthcheck(server.port, None) == 0
        assert run_healthcheck(server.port, f"tcp:{server.port}") == 0
        port = server.port
    assert run_healthcheck(port, "/livez") == 1
    assert run_healthcheck(port, f"tcp:{port}") == 1
    assert run_healthcheck(port, "tcp:none") == 1


def test_logging_follows_the_settings(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(load_settings({"SIGEX_LOG_FORMAT": "json", "SIGEX_LOG_LEVEL": "INFO"}))
    try:
        get_logger("test").info("delivered", subject="123456782", recipient="GM0363")
        get_logger("test").debug("below the level")
    finally:
        structlog.reset_defaults()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    line = lines[0]
    assert '"recipient": "GM0363"' in line
    assert "123456782" not in line
