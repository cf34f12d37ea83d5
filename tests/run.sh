#!/bin/bash
# The whole test suite on a fresh machine (run as root): installs and starts the rig,
# then ruff, the unit tests and the integration tests against the rig's hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/venv.sh
python -m tests.rig install
python -m tests.rig up --hosts "${TRIGGER_RIG_HOST_COUNT:-3}"
ruff check trigger_maint tests bench fabfile.py
python -m pytest -q -p no:cacheprovider tests/unit tests/integration "$@"
