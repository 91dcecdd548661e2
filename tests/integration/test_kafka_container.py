"""The fixtures' Docker path: with no SIGEX_BOOTSTRAP and an engine up, the
session broker is a testcontainers container of the chosen Kafka image.

Runs only when ``SIGEX_TEST_KAFKA_IMAGE`` names the image (``make
testcontainers-test`` sets it, unsets SIGEX_BOOTSTRAP and runs the Kafka tests
against it); otherwise the session broker is not a container and this says nothing.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from kafka import KafkaAdminClient


@pytest.mark.skipif(
    not os.environ.get("SIGEX_TEST_KAFKA_IMAGE") or bool(os.environ.get("SIGEX_BOOTSTRAP")),
    reason="the Docker path: make testcontainers-test",
)
def test_the_session_broker_is_a_container_of_the_chosen_image(kafka_bootstrap: str) -> None:
    image = os.environ["SIGEX_TEST_KAFKA_IMAGE"]
    port = kafka_bootstrap.rsplit(":", 1)[1]
    running = subprocess.run(
        ["docker", "ps", "--filter", f"ancestor={image}", "--format", "{{json .Ports}}"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.splitlines()  # fmt: skip
    published = [json.loads(line) for line in running]
    assert any(f":{port}->9092/tcp" in ports for ports in published), published
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        assert len(admin.describe_cluster()["brokers"]) == 1
    finally:
        admin.close()
