#!/bin/bash
# Health check of the Kafka container: the broker answers an ApiVersions
# request over its mutual-TLS listener.
set -euo pipefail
exec /opt/kafka/bin/kafka-broker-api-versions.sh \
    --bootstrap-server kafka:9092 \
    --command-config /tmp/sigex-health.properties >/dev/null
