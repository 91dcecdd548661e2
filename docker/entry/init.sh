#!/bin/sh
# The one-shot init container of the compose stack.
#
# 1. Create the federation (CA, party keys and certificates, signed directory,
#    the audit pseudonym key and the audit API certificate) with
#    `sigex keys init`. On a volume that already holds one it keeps it and only
#    adds a missing audit API certificate; it never replaces a key, and stops
#    when the audit pseudonym key has gone (restore it from the backup).
# 2. Hand the broker its TLS identity: copy it into the broker-tls volume,
#    readable by the sigex group (the Kafka container is given that group).
# 3. Wait until the broker answers, then create the topics and ACLs from the
#    agreements with `sigex provision` (idempotent: safe on every start).
set -eu

federation="${SIGEX_STATE_DIR:?SIGEX_STATE_DIR is not set}/federation"
broker_tls="${BROKER_TLS_DIR:-/var/lib/sigex-broker-tls}"
attempts="${INIT_ATTEMPTS:-60}"
retry_seconds="${INIT_RETRY_SECONDS:-5}"

# The services mount the federation read-only: everything they need, the audit
# pseudonym key included, must exist before they start (none of them makes keys).
sigex keys init --broker-host kafka-1 --broker-host kafka-2 --broker-host kafka-3

umask 027
for name in keystore.pem truststore.pem; do
    if [ ! -f "$federation/broker/$name" ]; then
        echo "init: $federation/broker/$name is missing" >&2
        exit 1
    fi
    cp "$federation/broker/$name" "$broker_tls/$name.new"
    chmod 0640 "$broker_tls/$name.new"
    mv "$broker_tls/$name.new" "$broker_tls/$name"
done

sigex config check

n=0
until sigex provision; do
    n=$((n + 1))
    if [ "$n" -ge "$attempts" ]; then
        echo "init: provisioning failed $n times, giving up" >&2
        exit 1
    fi
    echo "init: broker not ready or provisioning failed, retry in ${retry_seconds}s ($n/$attempts)"
    sleep "$retry_seconds"
done
echo "init: done"
