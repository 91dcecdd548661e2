#!/bin/bash
# Health check of the Kafka container: the broker answers over its mutual-TLS
# listener LOCAL (localhost:19092), as principal BROKER. With the official image,
# an ApiVersions request (kafka-broker-api-versions.sh); with the local image built
# from Debian's packages (docker/images/), which has no Kafka tools, a TLS handshake
# with the broker's own certificate that must end in a verified session.
set -euo pipefail
tls=/etc/kafka/sigex-tls
if [ -x /opt/kafka/bin/kafka-broker-api-versions.sh ]; then
    exec /opt/kafka/bin/kafka-broker-api-versions.sh \
        --bootstrap-server localhost:19092 \
        --command-config /tmp/sigex-health.properties >/dev/null
fi
openssl s_client -connect localhost:19092 -verify_return_error -brief \
    -cert "$tls/keystore.pem" -key "$tls/keystore.pem" -CAfile "$tls/truststore.pem" \
    </dev/null 2>&1 | grep -q "Verification: OK"
