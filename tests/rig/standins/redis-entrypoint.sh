#!/bin/sh
# Stand-in for the redis image's entrypoint: redis-server on the rig host's address (RIG_ADDR,
# else the address /etc/hosts gives the service name `redis`).
set -e
addr=${RIG_ADDR:-$(awk '$1 ~ /^127\./ { for (i = 2; i <= NF; i++) if ($i == "redis") { print $1; exit } }' /etc/hosts)}
if [ "${1:-}" = redis-server ]; then
    shift
    exec /usr/bin/redis-server --bind "${addr:-127.0.0.1}" --port 6379 --dir /data \
        --protected-mode no --save 60 1 "$@"
fi
exec "$@"
