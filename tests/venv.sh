# Sourced by tests/run.sh and tests/sandbox.sh: a project virtualenv with trigger-maint installed.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${TRIGGER_MAINT_VENV:-$ROOT/.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[test]"
export PATH=$VENV/bin:$PATH
