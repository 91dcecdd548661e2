#!/bin/bash
# Initialise the cluster on first start (user, database, password from a file), then run.
set -euo pipefail
bin=$(echo /usr/lib/postgresql/*/bin)
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    user=${POSTGRES_USER:-postgres}
    password=$(cat "${POSTGRES_PASSWORD_FILE:?POSTGRES_PASSWORD_FILE is not set}")
    pwfile=$(mktemp)
    printf '%s\n' "$password" > "$pwfile"
    "$bin/initdb" --username="$user" --pwfile="$pwfile" --auth=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    PGPASSWORD=$password "$bin/createdb" --host=/var/run/postgresql --username="$user" \
        "${POSTGRES_DB:-$user}" 2>/dev/null || true
    "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec "$bin/postgres" -D "$PGDATA"
