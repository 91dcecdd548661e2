"""A one-node KRaft Kafka broker in a Docker container, through testcontainers.

The image is any image with the official ``apache/kafka`` entry point (every
``KAFKA_*`` variable becomes a broker property): ``apache/kafka`` where a registry
answers, or the one ``docker/images/build.sh`` builds from Debian's packages
(``sigex-local/kafka``) where none does. testcontainers' own ``KafkaContainer``
expects Confluent's image layout, so the generic container is used here.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

OFFICIAL_IMAGE = "apache/kafka:4.1.1"
LOCAL_IMAGE = "sigex-local/kafka:4.3.1"


def image_present(image: str) -> bool:
    found = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, timeout=30, check=False
    )
    return found.returncode == 0


def choose_image() -> str | None:
    """``SIGEX_TEST_KAFKA_IMAGE``, else the first of the local and official images present."""
    configured = os.environ.get("SIGEX_TEST_KAFKA_IMAGE")
    if configured:
        return configured
    return next((image for image in (LOCAL_IMAGE, OFFICIAL_IMAGE) if image_present(image)), None)


@contextmanager
def kafka_container(image: str, host_port: int, timeout: int = 120) -> Iterator[str]:
    """Run a plaintext KRaft broker published on ``localhost:host_port``; yield its address.

    The port is chosen before the start because the broker must advertise the
    address clients on the host reach it by.
    """
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer

    if not image_present(testcontainers_config.ryuk_image):
        # Ryuk (the reaper of containers a killed session leaves) comes from a registry;
        # without it, the container is removed when the session ends
        testcontainers_config.ryuk_disabled = True
    settings = {
        "CLUSTER_ID": "c2lnZXgtdGVzdGNvbnRhaW5lcg",
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        # clients on the host use the published port; the broker's own clients (the
        # transaction coordinator writing markers) use BROKER, inside the container
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,BROKER://:9094,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://localhost:{host_port},BROKER://localhost:9094",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
            "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT"
        ),
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_LOG_DIRS": "/tmp/kafka-data",
    }
    container = DockerContainer(image).with_bind_ports(9092, host_port)
    for name, value in settings.items():
        container = container.with_env(name, value)
    with container:
        bootstrap = f"localhost:{host_port}"
        wait_until_serving(bootstrap, timeout)
        yield bootstrap


def wait_until_serving(bootstrap: str, timeout: float) -> None:
    """Until the broker answers Kafka requests and names itself in its metadata.

    Kafka 4 logs to its own files, not to the container's output, so the log is no
    sign of readiness; a published port accepts connections before the broker does.
    """
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
            try:
                if admin.describe_cluster()["brokers"]:
                    return
            finally:
                admin.close()
        except KafkaError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the Kafka container on {bootstrap} did not serve in {timeout} s")
        time.sleep(1)
