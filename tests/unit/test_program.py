"""The command line itself: flags, config files and env vars, without any host."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).with_name("trigger-maint")
# Nothing listens here: a run that got past validation would fail with exit 3, not 2.
HOST = ["-H", "root@127.0.0.1:9"]


def run(*args, cwd=None, env=None):
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_version_and_task_list():
    assert run("--version").stdout.startswith("trigger-maint 0.1.0")
    listing = run("-l").stdout
    assert "preflight" in listing


def test_unknown_flag_is_usage_error():
    done = run(*HOST, "preflight", "--bogus")
    assert done.returncode == 2
    assert "--bogus" in done.stderr


def test_project_fabric_yaml_is_read_and_validated(tmp_path):
    (tmp_path / "fabric.yaml").write_text("trigger:\n  bakups_keep: 3\n")
    done = run(*HOST, "preflight", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"trigger-maint: {tmp_path}/fabric.yaml: "
                                   "trigger.bakups_keep: unknown setting (see "
                                   "docs/configuration.md)")


def test_environment_overrides_file_and_flag_overrides_environment(tmp_path):
    (tmp_path / "fabric.yaml").write_text("trigger:\n  layout: v4\n")
    env = {"FABRIC_TRIGGER_LAYOUT": "v9"}
    done = run(*HOST, "preflight", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr == ("trigger-maint: trigger.layout (FABRIC_TRIGGER_LAYOUT): must be one "
                           "of auto, v4, v3, runbook, got 'v9'\n")
    done = run(*HOST, "preflight", "--layout", "v3", cwd=tmp_path, env=env)
    assert done.returncode == 3, done.stderr  # valid now: it tried to connect
    assert "cannot connect" in done.stderr


def test_connection_refused_is_one_line_exit_3():
    done = run(*HOST, "preflight", "--json")
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and "127.0.0.1:9: cannot connect" in done.stderr
    assert '"exit_code": 3' in done.stdout


def test_fabfile_shim_serves_fab(tmp_path):
    fab = Path(sys.executable).with_name("fab")
    done = subprocess.run([str(fab), "-l"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "preflight" in done.stdout
