#!/bin/bash
# A local sandbox host and the monthly maintenance against it, on a fresh machine (as root):
# installs and starts the rig's first host (Docker, Compose v2, a local registry, an sshd on
# 127.0.0.11:2222) with a Trigger.dev v4 installation at v4.5.10, serves the fake GitHub API
# on 127.0.0.1:18080, then runs `trigger-maint maintain` on it exactly as an operator would.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/venv.sh
python -m tests.rig install
python -m tests.rig up --hosts 1
python -m tests.rig reset 1 v4
python -m tests.rig.fake_github --port 18080 >/dev/null 2>&1 &
GITHUB_PID=$!
trap 'kill "$GITHUB_PID" 2>/dev/null || true' EXIT
RIG=${TRIGGER_RIG_DIR:-/var/tmp/trigger-maint-rig}
export FABRIC_TRIGGER_KNOWN_HOSTS=$RIG/ssh/known_hosts
export FABRIC_TRIGGER_REGISTRY=127.0.0.1:5000
export FABRIC_TRIGGER_GITHUB_API=http://127.0.0.1:18080
export FABRIC_TRIGGER_REPORT_DIR=${FABRIC_TRIGGER_REPORT_DIR:-$RIG/reports}
for _ in $(seq 50); do
    python - 2>/dev/null <<'PY' && break || sleep 0.1
import socket; socket.create_connection(("127.0.0.1", 18080), 1).close()
PY
done
trigger-maint -H root@127.0.0.11:2222 -i "$RIG/ssh/id_ed25519" maintain --yes "$@"
