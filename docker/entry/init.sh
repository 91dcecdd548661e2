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
# 3. Prepare GM0363's partner node: its record key, and the TLS files of the node and
#    of the case system that calls it (made once).
# 4. Wait until the broker answers, then create the topics and ACLs from the
#    agreements with `sigex provision` (idempotent: safe on every start).
set -eu

federation="${SIGEX_STATE_DIR:?SIGEX_STATE_DIR is not set}/federation"
broker_tls="${BROKER_TLS_DIR:-/var/lib/sigex-broker-tls}"
attempts="${INIT_ATTEMPTS:-60}"
retry_seconds="${INIT_RETRY_SECONDS:-5}"

# The services mount the federation read-only: everything they need, the audit
# pseudonym key included, must exist before they start (none of them makes keys).
# the same names go into the audit API's certificate: the witnesses reach it as audit-api
sigex keys init --broker-host kafka-1 --broker-host kafka-2 --broker-host kafka-3 \
    --broker-host audit-api

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

# 3. Amsterdam (GM0363) takes part through its partner node, called by its case
#    system over mutual TLS: the node's record key, and a CA with the node's
#    certificate and the case system's (made once, kept on later starts). The
#    case system gets only the CA and its own key pair.
node_tls="${NODE_TLS_DIR:-/var/lib/sigex-node-tls}"
case_tls="${CASE_SYSTEM_TLS_DIR:-/var/lib/sigex-case-system-tls}"
sigex node init --as GM0363 --tls-out "$node_tls" \
    --host node-gm0363 --host localhost --host 127.0.0.1 --client case-system
if [ -f "$node_tls/client-case-system.pem" ]; then
    for name in ca.pem client-case-system.pem client-case-system.key; do
        cp "$node_tls/$name" "$case_tls/$name.new"
        chmod 0600 "$case_tls/$name.new"
        mv "$case_tls/$name.new" "$case_tls/$name"
    done
    rm -f "$node_tls/client-case-system.pem" "$node_tls/client-case-system.key" "$node_tls/ca.key"
fi

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
