#!/bin/sh
# Entry of the sigex containers that use PostgreSQL: hand the database password
# from the Docker secret to libpq through a password file, then run sigex.
#
# SIGEX_AUDIT_DB holds a DSN without a password; SIGEX_AUDIT_DB_PASSWORD_FILE
# names the secret. libpq (under psycopg) reads PGPASSFILE, so the password is
# never in an environment variable, a command line or the compose file.
set -eu

if [ -n "${SIGEX_AUDIT_DB_PASSWORD_FILE:-}" ]; then
    passfile="${TMPDIR:-/tmp}/sigex.pgpass"
    umask 077
    # pgpass format: host:port:database:user:password, with \ and : escaped
    password=$(sed -e 's/\\/\\\\/g' -e 's/:/\\:/g' "$SIGEX_AUDIT_DB_PASSWORD_FILE" | head -n 1)
    printf '*:*:*:*:%s\n' "$password" > "$passfile"
    PGPASSFILE="$passfile"
    export PGPASSFILE
fi

exec sigex "$@"
