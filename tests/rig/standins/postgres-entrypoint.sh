#!/bin/bash
# Stand-in for the postgres image's entrypoint: initdb on first start, then run the server
# on the unix socket and on the rig host's address (RIG_ADDR, else the address /etc/hosts gives
# the service name `postgres`).
set -euo pipefail
: "${PGDATA:=/var/lib/postgresql/data}" "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
if [ "${1:0:1}" = - ]; then
    set -- postgres "$@"
fi
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ "${1:-}" = postgres ]; then
    shift
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        initdb -D "$PGDATA" -U "$POSTGRES_USER" -N --auth-local=trust --auth-host=scram-sha-256 \
            --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}") >/dev/null
        echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
        if [ "$POSTGRES_DB" != postgres ]; then
            echo "CREATE DATABASE \"$POSTGRES_DB\";" | postgres --single -D "$PGDATA" postgres >/dev/null
        fi
        echo "PostgreSQL init process complete; ready for start up."
    fi
    addr=${RIG_ADDR:-$(awk '$1 ~ /^127\./ { for (i = 2; i <= NF; i++) if ($i == "postgres") { print $1; exit } }' /etc/hosts)}
    exec postgres -D "$PGDATA" -c listen_addresses="${addr:-127.0.0.1}" \
        -c unix_socket_directories=/var/run/postgresql "$@"
fi
exec "$@"
