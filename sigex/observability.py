"""Metrics and health endpoints for the long-running services (gateway, audit service).

Each process builds its own :class:`~prometheus_client.CollectorRegistry`
(never the library's global one), wraps it in :class:`GatewayMetrics` or
:class:`AuditMetrics`, and serves it with an :class:`OperationsServer`:

- ``/metrics``: the Prometheus text format of that registry;
- ``/livez``:   200 while the process can answer at all;
- ``/readyz``:  200 when the readiness callback the service supplies says
  ready (the broker answers, the consumer has its partitions), else 503 with
  the reasons, one per line.

Label values are codes (signal names, party codes, reason codes), never
identifiers of people: a label value made only of digits is refused, so a
BSN cannot end up in a time series by mistake.

The operator's log is structlog, configured by :func:`sigex.logs.configure`;
:func:`configure_logging` applies the settings to it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from sigex.clock import Clock
from sigex.config import Settings
from sigex.errors import SigexError
from sigex.logs import configure, get_logger

_log = get_logger(__name__)

NAMESPACE: Final = "sigex"
#: Seconds; a policy decision is expected in well under a millisecond, a slow one in tens.
DECISION_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


class MetricLabelError(SigexError):
    """A metric label value is not a short code (it might carry an identifier)."""


def _label(name: str, value: str) -> str:
    if not _LABEL_VALUE.match(value) or value.isdigit():
        raise MetricLabelError(f"metric label {name!r}: must be a short code, not an identifier")
    return value


# --- metrics --------------------------------------------------------------------------------


class GatewayMetrics:
    """What the policy gateway counts. One instance per process, on its own registry."""

    @classmethod
    def unscraped(cls) -> GatewayMetrics:
        """Counts on a registry that no endpoint serves: a gateway run without /metrics."""
        return cls(CollectorRegistry())

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._signals_in = Counter(
            "gateway_signals_in",
            "Signals read from the .in topics, by signal type.",
            ["signal"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self._delivered = Counter(
            "gateway_delivered",
            "Deliveries written to a recipient's .out topic, by signal type and recipient.",
            ["signal", "recipient"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self._refused = Counter(
            "gateway_refused",
            "Refusals (dead-lettered and audited), by reason code.",
            ["reason"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self._decision_seconds = Histogram(
            "gateway_decision_seconds",
            "Time from reading a signal to its decision for all recipients.",
            namespace=NAMESPACE,
            registry=registry,
            buckets=DECISION_BUCKETS,
        )
        self._transactions = Counter(
            "gateway_transactions",
            "Kafka transactions ended, by outcome (commit or abort).",
            ["outcome"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self._delivery_failures = Counter(
            "gateway_delivery_failures",
            "Deliveries refused DELIVERY_FAILED: their topic could not be written after "
            "bounded tries (an alarm: a delivery topic is missing or refused).",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._consumer_renewals = Counter(
            "gateway_consumer_renewals",
            "Consumers replaced because they got nowhere for the renewal time (stalled, or "
            "the backlog could not be measured); what was not committed is read again.",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._stalled = Gauge(
            "gateway_stalled",
            "1 while records wait and nothing was committed for the stall time (not ready).",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._consumer_lag = Gauge(
            "gateway_consumer_lag",
            "Records not yet consumed, per assigned topic partition.",
            ["topic", "partition"],
            namespace=NAMESPACE,
            registry=registry,
        )

        # labelled children by label values, so the hot path is one dict lookup and an
        # increment (the label check and prometheus-client's own lookup run once per value)
        self._signals_in_children: dict[str, Counter] = {}
        self._delivered_children: dict[tuple[str, str], Counter] = {}
        self._refused_children: dict[str, Counter] = {}

    def signal_received(self, signal: str) -> None:
        child = self._signals_in_children.get(signal)
        if child is None:
            child = self._signals_in.labels(signal=_label("signal", signal))
            self._signals_in_children[signal] = child
        child.inc()

    def delivered(self, signal: str, recipient: str) -> None:
        key = (signal, recipient)
        child = self._delivered_children.get(key)
        if child is None:
            child = self._delivered.labels(
                signal=_label("signal", signal), recipient=_label("recipient", recipient)
            )
            self._delivered_children[key] = child
        child.inc()

    def refused(self, reason: str) -> None:
        child = self._refused_children.get(reason)
        if child is None:
            child = self._refused.labels(reason=_label("reason", reason))
            self._refused_children[reason] = child
        child.inc()

    def observe_decision(self, seconds: float) -> None:
        self._decision_seconds.observe(seconds)

    @contextmanager
    def time_decision(self) -> Iterator[None]:
        """Observe the time the ``with`` body takes as one decision."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self._decision_seconds.observe(time.perf_counter() - started)

    def transaction_committed(self) -> None:
        self._transactions.labels(outcome="commit").inc()

    def transaction_aborted(self) -> None:
        self._transactions.labels(outcome="abort").inc()

    def delivery_failed(self, count: int = 1) -> None:
        self._delivery_failures.inc(count)

    def set_stalled(self, stalled: bool) -> None:
        self._stalled.set(1 if stalled else 0)

    def consumer_renewed(self) -> None:
        self._consumer_renewals.inc()

    def set_consumer_lag(self, topic: str, partition: int, lag: int) -> None:
        self._consumer_lag.labels(topic=_label("topic", topic), partition=str(partition)).set(
            max(lag, 0)
        )

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop the lag series of a partition this replica no longer owns (after a rebalance)."""
        with suppress(KeyError):
            self._consumer_lag.remove(topic, str(partition))


class AuditMetrics:
    """What the audit indexer and the audit API count. One instance per process."""

    @classmethod
    def unscraped(cls, clock: Clock) -> AuditMetrics:
        """Counts on a registry that no endpoint serves: an indexer run without /metrics."""
        return cls(CollectorRegistry(), clock)

    def __init__(self, registry: CollectorRegistry, clock: Clock) -> None:
        self.registry = registry
        self._clock = clock
        self._last_checkpoint: datetime | None = None
        self._lock = threading.Lock()
        self._appended = Counter(
            "audit_records_appended",
            "Access-log records appended to the Merkle log.",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._log_size = Gauge(
            "audit_log_size",
            "Records in the access log (the size of the Merkle tree).",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._checkpoint_age = Gauge(
            "audit_checkpoint_age_seconds",
            "Seconds since the last signed checkpoint (-1 before the first one).",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._checkpoint_age.set_function(self._age_seconds)
        self._rejected = Counter(
            "audit_records_rejected",
            "Events refused at indexing: unreadable, a party speaking for another, or a forged "
            "operation id (an alarm: look at the indexer's log).",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._conflicts = Counter(
            "audit_record_conflicts",
            "Records refused because the log holds a different record under the same trace id "
            "and operation id (an alarm: someone tried to pre-empt or rewrite an event).",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._verify_failures = Counter(
            "audit_verify_failures",
            "Verifications of the log or of a record that failed.",
            namespace=NAMESPACE,
            registry=registry,
        )

    def _age_seconds(self) -> float:
        with self._lock:
            last = self._last_checkpoint
        if last is None:
            return -1.0
        return max((self._clock.now() - last).total_seconds(), 0.0)

    def records_appended(self, count: int, log_size: int) -> None:
        """``count`` records were appended; the log now holds ``log_size`` records."""
        if count < 0 or log_size < 0:
            raise ValueError("record counts cannot be negative")
        self._appended.inc(count)
        self._log_size.set(log_size)

    def records_refused(self, rejected: int, conflicts: int) -> None:
        """Events refused at indexing (``rejected``) and key conflicts (``conflicts``)."""
        self._rejected.inc(rejected)
        self._conflicts.inc(conflicts)

    def checkpoint_signed(self, at: datetime) -> None:
        with self._lock:
            self._last_checkpoint = at

    def verify_failed(self) -> None:
        self._verify_failures.inc()


class WitnessMetrics:
    """What a witness of the access log counts. One instance per process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._cosigned = Counter(
            "witness_cosigned",
            "Checkpoints this witness co-signed and handed to the audit API.",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._alarms = Counter(
            "witness_alarms",
            "Checkpoints refused because they conflict with one co-signed before: the log "
            "operator signed two histories (an alarm: the evidence is in the witness's folder).",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._not_cosigned = Counter(
            "witness_rounds_not_cosigned",
            "Rounds that co-signed nothing and proved nothing (the API did not answer, no "
            "proof, an older checkpoint): the log goes unwitnessed while this grows.",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._size = Gauge(
            "witness_cosigned_tree_size",
            "The size of the largest tree this witness co-signed.",
            namespace=NAMESPACE,
            registry=registry,
        )

    def round(self, *, cosigned: bool, alarm: bool, tree_size: int | None) -> None:
        if alarm:
            self._alarms.inc()
        elif cosigned:
            self._cosigned.inc()
        else:
            self._not_cosigned.inc()
        if cosigned and tree_size is not None:
            self._size.set(tree_size)


class SubscriberMetrics:
    """What a partner's subscriber counts: its lag per partition, and its rejoins."""

    @classmethod
    def unscraped(cls) -> SubscriberMetrics:
        """Counts on a registry that no endpoint serves: a subscriber run without /metrics."""
        return cls(CollectorRegistry())

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._lag = Gauge(
            "subscriber_consumer_lag",
            "Signals waiting on the subscriber's delivery topics, per assigned partition.",
            ["topic", "partition"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self._rejoins = Counter(
            "subscriber_rejoins",
            "Times the subscriber found itself stalled and rejoined its consumer group.",
            namespace=NAMESPACE,
            registry=registry,
        )
        self._partitions: set[tuple[str, int]] = set()

    def set_lag(self, lag: dict[tuple[str, int], int]) -> None:
        """The lag of every partition held now; series of partitions no longer held go."""
        for topic, partition in self._partitions - set(lag):
            with suppress(KeyError):
                self._lag.remove(topic, str(partition))
        for (topic, partition), waiting in lag.items():
            self._lag.labels(topic=_label("topic", topic), partition=str(partition)).set(
                max(waiting, 0)
            )
        self._partitions = set(lag)

    def rejoined(self) -> None:
        self._rejoins.inc()


# --- readiness ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Readiness:
    """The answer of a readiness callback: ready, or the reasons it is not (codes, no data)."""

    ready: bool
    reasons: tuple[str, ...] = ()

    @classmethod
    def yes(cls) -> Readiness:
        return cls(ready=True)

    @classmethod
    def no(cls, reasons: tuple[str, ...]) -> Readiness:
        return cls(ready=False, reasons=reasons)


ReadinessCheck = Callable[[], Readiness]


@dataclass(frozen=True, slots=True)
class NamedCheck:
    """One condition of readiness, e.g. ``("broker", broker_answers)``."""

    name: str
    passes: Callable[[], bool]


def readiness_of(checks: tuple[NamedCheck, ...]) -> ReadinessCheck:
    """A readiness callback that is ready when every check passes; a check that raises fails."""

    def check() -> Readiness:
        failing: list[str] = []
        for named in checks:
            try:
                passed = named.passes()
            except Exception:  # a probe must answer, whatever the check does
                _log.warning("readiness check raised", check=named.name, exc_info=True)
                passed = False
            if not passed:
                failing.append(named.name)
        return Readiness(ready=not failing, reasons=tuple(failing))

    return check


def always_ready() -> Readiness:
    return Readiness.yes()


# --- the HTTP server ------------------------------------------------------------------------

METRICS_PATH: Final = "/metrics"
LIVENESS_PATH: Final = "/livez"
READINESS_PATH: Final = "/readyz"


class _Handler(BaseHTTPRequestHandler):
    server: _OperationsHTTPServer
    server_version = "sigex"
    sys_version = ""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        endpoints = self.server.endpoints
        if path == METRICS_PATH and "metrics" in endpoints:
            self._answer(HTTPStatus.OK, generate_latest(self.server.registry), CONTENT_TYPE_LATEST)
        elif path == LIVENESS_PATH and "health" in endpoints:
            self._answer(HTTPStatus.OK, b"alive\n")
        elif path == READINESS_PATH and "health" in endpoints:
            readiness = self._readiness()
            if readiness.ready:
                self._answer(HTTPStatus.OK, b"ready\n")
            else:
                lines = "".join(f"not ready: {reason}\n" for reason in readiness.reasons)
                self._answer(HTTPStatus.SERVICE_UNAVAILABLE, lines.encode() or b"not ready\n")
        else:
            self._answer(HTTPStatus.NOT_FOUND, b"not found\n")

    def do_HEAD(self) -> None:
        self.do_GET()

    def _readiness(self) -> Readiness:
        try:
            return self.server.readiness()
        except Exception:  # the probe answers 503 rather than dropping the connection
            _log.warning("readiness callback raised", exc_info=True)
            return Readiness.no(("readiness-check-failed",))

    def _answer(self, status: HTTPStatus, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        _log.debug("operations request", line=format % args)


class _OperationsHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        readiness: ReadinessCheck,
        endpoints: frozenset[str],
    ) -> None:
        self.registry = registry
        self.readiness = readiness
        self.endpoints = endpoints
        super().__init__(address, _Handler)


ALL_ENDPOINTS: Final = frozenset({"metrics", "health"})


class OperationsServer:
    """A small threaded HTTP server for ``/metrics``, ``/livez`` and ``/readyz``.

    ``endpoints`` picks what this server answers (``{"metrics"}``, ``{"health"}``
    or both); port 0 picks a free port (read :attr:`port` after :meth:`start`).
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        readiness: ReadinessCheck = always_ready,
        host: str = "0.0.0.0",  # noqa: S104 (a container's probes come from outside it)
        port: int,
        endpoints: frozenset[str] = ALL_ENDPOINTS,
    ) -> None:
        unknown = endpoints - ALL_ENDPOINTS
        if unknown or not endpoints:
            raise ValueError(f"endpoints must be a non-empty subset of {sorted(ALL_ENDPOINTS)}")
        self._registry = registry
        self._readiness = readiness
        self._address = (host, port)
        self._endpoints = endpoints
        self._server: _OperationsHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the operations server is not started")
        return int(self._server.server_address[1])

    @property
    def endpoints(self) -> frozenset[str]:
        return self._endpoints

    def start(self) -> None:
        if self._server is not None:
            return
        self._server = _OperationsHTTPServer(
            self._address, self._registry, self._readiness, self._endpoints
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"sigex-operations-{self.port}",
            daemon=True,
        )
        self._thread.start()
        _log.info("operations server listening", port=self.port, endpoints=sorted(self._endpoints))

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> OperationsServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass(frozen=True, slots=True)
class OperationsServers:
    """One server when metrics and health share a port, two otherwise."""

    servers: tuple[OperationsServer, ...]

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def start_operations(
    *,
    registry: CollectorRegistry,
    readiness: ReadinessCheck,
    metrics_port: int,
    health_port: int,
    host: str = "0.0.0.0",  # noqa: S104 (a container's probes come from outside it)
) -> OperationsServers:
    """Start the endpoints on the configured ports (``settings.metrics_port``, ``health_port``)."""
    plan: tuple[tuple[int, frozenset[str]], ...]
    if metrics_port == health_port:
        plan = ((metrics_port, ALL_ENDPOINTS),)
    else:
        plan = ((metrics_port, frozenset({"metrics"})), (health_port, frozenset({"health"})))
    started: list[OperationsServer] = []
    try:
        for port, endpoints in plan:
            server = OperationsServer(
                registry=registry, readiness=readiness, host=host, port=port, endpoints=endpoints
            )
            server.start()
            started.append(server)
    except OSError:
        for server in started:
            server.stop()
        raise
    return OperationsServers(tuple(started))


def configure_logging(settings: Settings) -> None:
    """Apply ``SIGEX_LOG_FORMAT`` and ``SIGEX_LOG_LEVEL`` to the structlog setup (BSNs redacted)."""
    configure(json=settings.log_format.value == "json", level=settings.log_level)
