#!/bin/sh
# Stand-in for the webapp image's scripts/entrypoint.sh (migrations, then the server).
exec python3 /triggerdotdev/rig/webapp.py "$@"
