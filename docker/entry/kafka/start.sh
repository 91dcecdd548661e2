#!/bin/bash
# Start command of the apache/kafka container in the sigex stack.
#
# Waits until the init container has placed the broker's TLS identity in
# /etc/kafka/sigex-tls, writes the client settings the health check uses
# (the broker's own identity, principal BROKER, a super user), then hands
# over to the image's own start script, which turns the KAFKA_* variables
# into server.properties.
set -euo pipefail

tls=/etc/kafka/sigex-tls
waited=0
until [ -r "$tls/keystore.pem" ] && [ -r "$tls/truststore.pem" ]; do
    if [ "$waited" -ge "${TLS_WAIT_SECONDS:-300}" ]; then
        echo "kafka: no readable TLS identity in $tls after ${waited}s" >&2
        exit 1
    fi
    sleep 2
    waited=$((waited + 2))
done

umask 077
cat > /tmp/sigex-health.properties <<PROPERTIES
security.protocol=SSL
ssl.keystore.type=PEM
ssl.keystore.location=$tls/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$tls/truststore.pem
PROPERTIES

exec /etc/kafka/docker/run
