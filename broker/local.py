"""A local Apache Kafka broker in KRaft mode on loopback, run from the cached jars.

One JVM is both broker and controller. Its configuration, data, log and pid
live under ``<state>/broker`` (or a folder the caller chooses). With a
:class:`TlsSettings`, the client and controller listeners speak mutual TLS and
the StandardAuthorizer enforces ACLs; principals are taken from the
certificate's subject by principal mapping rules: a party's certificate
(``CN=NLA,OU=key-generation-2,...``) becomes ``User:NLA.g2``, a certificate
without a generation (ADMIN, BROKER) just its CN.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from sigex.broker.errors import BrokerStartFailed, JavaMissing, PortInUse
from sigex.broker.jars import ensure_jars, kafka_version
from sigex.identity import default_state_dir
from sigex.roles import Role

MIN_JAVA_MAJOR = 17
STARTED_MARKER = "Kafka Server started"
#: party certificates: ``CN=<CODE>,OU=key-generation-<N>,...`` -> ``<CODE>.g<N>`` (see
#: ``sigex.exchange.topology.principal``); then certificates without a generation -> ``<CN>``. No
#: second rule can make a principal with a dot, so only the first makes generation principals.
GENERATION_PRINCIPAL_RULE = "RULE:^CN=([A-Za-z0-9_-]+),OU=key-generation-([0-9]+),.*$/$1.g$2/"
PRINCIPAL_MAPPING_RULES = f"{GENERATION_PRINCIPAL_RULE},RULE:^CN=([A-Za-z0-9_-]+),.*$/$1/,DEFAULT"


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Mutual TLS and ACLs for the broker: PEM files and the principals that bypass ACLs."""

    keystore_pem: Path
    truststore_pem: Path
    super_users: tuple[str, ...] = (Role.BROKER, Role.ADMIN)
    principal_mapping_rules: str = PRINCIPAL_MAPPING_RULES


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Where and how the local broker runs."""

    home: Path
    port: int = 9092
    controller_port: int = 9093
    host: str = "127.0.0.1"
    tls: TlsSettings | None = None
    heap: str = "768m"
    version: str = field(default_factory=kafka_version)
    #: this node's id, and in a cluster every controller as (node id, controller port)
    node_id: int = 1
    voters: tuple[tuple[int, int], ...] = ()
    #: shared by every node of a cluster (a new one for a single node)
    cluster_id: str | None = None
    #: compile with the JVM's quick compiler only (C1): the broker is up in a few seconds,
    #: which tests and the demo want, but its hot paths run slower than a production
    #: broker's; a benchmark turns this off so that the broker runs as it would in operation
    quick_start: bool = True

    @property
    def cluster_size(self) -> int:
        return max(1, len(self.voters))

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def properties_path(self) -> Path:
        return self.home / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.home / "broker.log"

    @property
    def pid_path(self) -> Path:
        return self.home / "broker.pid"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"


class BrokerState(Enum):
    RUNNING = "running"
    STOPPED = "stopped"
    CRASHED = "crashed"


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    state: BrokerState
    bootstrap: str
    pid: int | None
    log_path: Path
    detail: str = ""


def default_home() -> Path:
    return default_state_dir() / "broker"


# ---------------------------------------------------------------- checks


def find_java() -> str:
    """Path of a Java 17+ executable, from JAVA_HOME or PATH."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not candidate or not Path(candidate).exists():
        raise JavaMissing(
            "Java not found: install Java 17 or newer (apt-get install openjdk-17-jre-headless) "
            "or set JAVA_HOME"
        )
    result = subprocess.run(  # noqa: S603 - the java executable itself
        [candidate, "-version"], capture_output=True, text=True, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        raise JavaMissing(f"could not read the Java version from {candidate}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < MIN_JAVA_MAJOR:
        raise JavaMissing(f"Java {major} found at {candidate}; Kafka 4 needs Java 17 or newer")
    return candidate


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- process


def _read_pid(settings: BrokerSettings) -> int | None:
    try:
        return int(settings.pid_path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _is_our_broker(pid: int) -> bool:
    """True when ``pid`` is alive and is a Kafka JVM (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if b"kafka.Kafka" not in cmdline:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def status(settings: BrokerSettings) -> BrokerStatus:
    pid = _read_pid(settings)
    if pid is None:
        return BrokerStatus(BrokerState.STOPPED, settings.bootstrap, None, settings.log_path)
    if _is_our_broker(pid):
        return BrokerStatus(BrokerState.RUNNING, settings.bootstrap, pid, settings.log_path)
    return BrokerStatus(
        BrokerState.CRASHED,
        settings.bootstrap,
        pid,
        settings.log_path,
        detail=f"process {pid} is gone without 'sigex broker stop'; last log lines:\n"
        + _log_tail(settings.log_path),
    )


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _classpath(jars: Path) -> str:
    return os.pathsep.join(str(jar) for jar in sorted(jars.glob("*.jar")))


def render_properties(settings: BrokerSettings) -> str:
    host, port, cport = settings.host, settings.port, settings.controller_port
    client_listener = "SSL" if settings.tls else "PLAINTEXT"
    replicas = min(3, settings.cluster_size)
    min_isr = max(1, min(2, replicas - 1))
    if settings.voters:
        quorum = "controller.quorum.voters=" + ",".join(
            f"{node}@{host}:{voter_port}" for node, voter_port in settings.voters
        )
    else:
        quorum = f"controller.quorum.bootstrap.servers={host}:{cport}"
    lines = [
        "process.roles=broker,controller",
        f"node.id={settings.node_id}",
        quorum,
        f"listeners={client_listener}://{host}:{port},CONTROLLER://{host}:{cport}",
        f"advertised.listeners={client_listener}://{host}:{port}",
        "controller.listener.names=CONTROLLER",
        f"inter.broker.listener.name={client_listener}",
        f"log.dirs={settings.data_dir}",
        "num.partitions=1",
        "auto.create.topics.enable=false",
        f"offsets.topic.replication.factor={replicas}",
        "offsets.topic.num.partitions=6",
        f"transaction.state.log.replication.factor={replicas}",
        f"transaction.state.log.min.isr={min_isr}",
        "transaction.state.log.num.partitions=6",
        f"share.coordinator.state.topic.replication.factor={replicas}",
        f"share.coordinator.state.topic.min.isr={min_isr}",
        f"default.replication.factor={replicas}",
        f"min.insync.replicas={min_isr}",
        "group.initial.rebalance.delay.ms=0",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=5000",
    ]
    if settings.tls is None:
        lines.append("listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT")
    else:
        tls = settings.tls
        super_users = ";".join(f"User:{name}" for name in tls.super_users)
        lines += [
            "listener.security.protocol.map=SSL:SSL,CONTROLLER:SSL",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={tls.keystore_pem}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={tls.truststore_pem}",
            "ssl.client.auth=required",
            f"ssl.principal.mapping.rules={tls.principal_mapping_rules}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users={super_users}",
            "allow.everyone.if.no.acl.found=false",
        ]
    return "\n".join(lines) + "\n"


_LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.controller.name = org.apache.kafka.controller
logger.controller.level = warn
logger.storage.name = org.apache.kafka.storage
logger.storage.level = warn
logger.log.name = kafka.log
logger.log.level = warn
logger.coordinator.name = org.apache.kafka.coordinator
logger.coordinator.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
"""


def _format_storage(settings: BrokerSettings, java: str, classpath: str) -> None:
    if (settings.data_dir / "meta.properties").exists():
        return
    cluster_id = settings.cluster_id or new_cluster_id()
    # a static quorum (controller.quorum.voters) is formatted as it is; one node stands alone
    quorum = [] if settings.voters else ["--standalone"]
    result = subprocess.run(  # noqa: S603 - java with our own arguments
        [
            java,
            "-cp",
            classpath,
            f"-Dlog4j2.configurationFile={settings.home / 'log4j2.properties'}",
            "kafka.tools.StorageTool",
            "format",
            *quorum,
            f"--cluster-id={cluster_id}",  # an id may start with "-"
            "-c",
            str(settings.properties_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BrokerStartFailed(
            "formatting the broker's storage failed: "
            + (result.stderr.strip() or result.stdout.strip())[-400:]
        )


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def cluster(
    home: Path,
    ports: Sequence[tuple[int, int]],
    *,
    tls: TlsSettings | None = None,
    heap: str = "512m",
) -> tuple[BrokerSettings, ...]:
    """Settings for a KRaft cluster on this host: one combined broker and controller per
    (client port, controller port), every one a voter, all formatted with one cluster id."""
    voters = tuple((node, cport) for node, (_, cport) in enumerate(ports, start=1))
    cluster_id = new_cluster_id()
    return tuple(
        BrokerSettings(
            home=home / f"node-{node}",
            port=port,
            controller_port=cport,
            tls=tls,
            heap=heap,
            node_id=node,
            voters=voters,
            cluster_id=cluster_id,
        )
        for node, (port, cport) in enumerate(ports, start=1)
    )


def start_cluster(nodes: Sequence[BrokerSettings], timeout: float = 120.0) -> None:
    """Start every node at once (a quorum needs a majority to elect its leader), then wait."""
    launched = [(node, _launch(node)) for node in nodes]
    deadline = time.monotonic() + timeout
    for node, (process, offset) in launched:
        _await(node, process, offset, max(1.0, deadline - time.monotonic()))


def start(settings: BrokerSettings, timeout: float = 90.0) -> BrokerStatus:
    """Start the broker and wait until it answers; harmless when it already runs."""
    current = status(settings)
    if current.state is BrokerState.RUNNING:
        return current
    process, offset = _launch(settings)
    return _await(settings, process, offset, timeout)


def _launch(settings: BrokerSettings) -> tuple[subprocess.Popen[bytes], int]:
    java = find_java()
    for port in (settings.port, settings.controller_port):
        if not port_is_free(settings.host, port):
            raise PortInUse(
                f"port {port} on {settings.host} is taken by another process: stop it, "
                "or choose other ports with --port and --controller-port"
            )
    jars = ensure_jars(settings.version)
    classpath = _classpath(jars)
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.properties_path.write_text(render_properties(settings))
    (settings.home / "log4j2.properties").write_text(_LOG4J2)
    _format_storage(settings, java, classpath)
    settings.pid_path.unlink(missing_ok=True)
    offset = settings.log_path.stat().st_size if settings.log_path.exists() else 0
    with settings.log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - java with our own arguments
            [
                java,
                f"-Xmx{settings.heap}",
                "-Xms256m",
                "-XX:+UseG1GC",
                *(["-XX:TieredStopAtLevel=1"] if settings.quick_start else []),
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={settings.home / 'log4j2.properties'}",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(settings.properties_path),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    settings.pid_path.write_text(str(process.pid))
    return process, offset


def _await(
    settings: BrokerSettings, process: subprocess.Popen[bytes], offset: int, timeout: float
) -> BrokerStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            settings.pid_path.unlink(missing_ok=True)
            raise BrokerStartFailed(
                f"the broker exited with code {process.returncode} while starting; "
                f"see {settings.log_path}:\n{_log_tail(settings.log_path)}"
            )
        if _started_since(settings.log_path, offset) and _answers(settings.host, settings.port):
            return status(settings)
        time.sleep(0.25)
    stop(settings)
    raise BrokerStartFailed(
        f"the broker did not answer within {timeout:.0f}s; see {settings.log_path}"
    )


def _started_since(log_path: Path, offset: int) -> bool:
    try:
        with log_path.open("rb") as log:
            log.seek(offset)
            return STARTED_MARKER.encode() in log.read()
    except FileNotFoundError:
        return False


def stop(settings: BrokerSettings, timeout: float = 30.0) -> BrokerStatus:
    """Stop the broker cleanly (SIGTERM, then SIGKILL after ``timeout``)."""
    pid = _read_pid(settings)
    if pid is not None and _is_our_broker(pid):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _is_our_broker(pid):
            time.sleep(0.2)
        if _is_our_broker(pid):
            os.killpg(pid, signal.SIGKILL)
            while _is_our_broker(pid):
                time.sleep(0.1)
    settings.pid_path.unlink(missing_ok=True)
    return status(settings)
