#!/bin/sh
# Stand-in for the redis image's entrypoint: redis-server on the rig host's address.
set -e
if [ "${1:-}" = redis-server ]; then
    shift
    exec /usr/bin/redis-server --bind "${RIG_ADDR:-127.0.0.1}" --port 6379 --dir /data \
        --protected-mode no --save 60 1 "$@"
fi
exec "$@"
