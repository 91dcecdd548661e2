#!/bin/bash
# Health check of the Kafka container: the broker answers an ApiVersions
# request over its mutual-TLS listener LOCAL (localhost:19092), as principal
# BROKER.
set -euo pipefail
exec /opt/kafka/bin/kafka-broker-api-versions.sh \
    --bootstrap-server localhost:19092 \
    --command-config /tmp/sigex-health.properties >/dev/null
