"""The command line as a Fabric user and a CI job use it: Fabric's -t, inventory names with a
single-host task, `--dry-run --json` and chained tasks under --json (one document per line,
each valid against docs/json-schema.json), and the cron and GitHub Actions recipes of
docs/scheduling.md run as written."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.rig.config import KNOWN_HOSTS, REGISTRY

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs" / "json-schema.json").read_text())
EXE = Path(sys.executable).parent / "trigger-maint"


def documents(stdout: str) -> list[dict]:
    """Every line of stdout is one JSON document that the schema accepts."""
    docs = [json.loads(line) for line in stdout.splitlines()]
    for doc in docs:
        jsonschema.validate(doc, SCHEMA)
    return docs


def test_fabric_options_inventory_names_and_json_lines(v4_host, cli, tmp_path):
    host = v4_host
    done = cli(host, "-t", "7", "preflight", "--json")
    assert done.returncode == 0, done.stderr
    [doc] = documents(done.stdout)
    assert doc["task"] == "preflight" and doc["installation"]["layout"]["name"] == "v4"

    (tmp_path / "cwd" / "fabric.yaml").write_text(
        f"trigger:\n  hosts:\n    acme:\n      host: root@{host.address}:{host.port}\n"
        "      observe_seconds: 1\n")
    by_name = subprocess.run([str(EXE), "-H", "acme", "-i", host.key, "verify", "--json"],
                             cwd=tmp_path / "cwd", text=True, capture_output=True, timeout=300,
                             env={**os.environ, "FABRIC_TRIGGER_KNOWN_HOSTS": str(KNOWN_HOSTS)})
    assert by_name.returncode == 0, by_name.stderr
    [doc] = documents(by_name.stdout)
    restarts = next(c for c in doc["checks"] if c["name"] == "restarts")
    assert doc["host"] == "acme" and restarts["detail"] == "no restarts in 1 s"

    planned = cli(host, "update", "--target", "v4.5.12", "--dry-run", "--scripts", "--json")
    assert planned.returncode == 0, planned.stderr
    [doc] = documents(planned.stdout)
    assert doc["dry_run"] and doc["plan"]["kind"] == "update"
    assert [s["step"] for s in doc["plan"]["forward"]][-3:] == ["recreate", "wait_healthy",
                                                               "finish"]
    assert "# ---- " in planned.stderr and "runner" not in planned.stdout

    chained = cli(host, "status", "--report-only", "backup", "backups", "--json")
    assert chained.returncode == 0, chained.stderr
    docs = documents(chained.stdout)
    assert [d["task"] for d in docs] == ["status", "backup", "backups"]
    assert docs[0]["exit_code"] == 0 and docs[0]["ok"] is False  # no backup yet: reported
    assert docs[2]["backups"][0]["name"] == docs[1]["backup"]["name"]


def recipe(name: str, marker: str) -> str:
    """The code block of docs/scheduling.md that starts with `marker`."""
    text = (REPO / "docs" / "scheduling.md").read_text()
    start = text.index(marker)
    return text[start:text.index("```", start)]


@pytest.fixture
def ops_home(tmp_path, v4_host) -> Path:
    """A home folder as the recipes' user has one: ~/.ssh with the key and known_hosts,
    ~/.fabric.yaml pointing at the rig, trigger-maint in ~/.local/bin."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "trigger-maint").symlink_to(EXE)
    (home / ".ssh" / "id_ed25519").write_bytes(Path(v4_host.key).read_bytes())
    (home / ".ssh" / "id_ed25519").chmod(0o600)
    (home / ".ssh" / "known_hosts").write_text(KNOWN_HOSTS.read_text())
    (home / ".fabric.yaml").write_text(
        f"trigger:\n  registry: {REGISTRY}\n  github_api: http://127.0.0.1:9\n"
        f"  report_dir: {home}/reports\n  observe_seconds: 1\n")
    return home


def host_args(host, text: str) -> str:
    """The recipe's command with the rig host in place of the example one."""
    return text.replace("root@trigger.example.com", f"root@{host.address}:{host.port}")


def test_the_cron_recipe_runs_as_written(v4_host, ops_home, cli):
    assert cli(v4_host, "backup").returncode == 0
    block = recipe("cron", "# /etc/cron.d/trigger-maint")
    line = next(ln for ln in block.splitlines() if ln.startswith("17 4"))
    command = host_args(v4_host, " ".join(line.split()[6:]))  # minute..weekday and user out
    command = command.replace("/home/ops", str(ops_home))
    done = subprocess.run(["/bin/sh", "-c", command], cwd=ops_home, text=True,
                          capture_output=True, timeout=900,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(ops_home), "SHELL": "/bin/sh"})
    log = (ops_home / "trigger-maint.log").read_text()
    # research cannot reach GitHub from the rig: that box stays open and the exit is 1, so
    # cron gets the end of the log (the checklist and the line saying why), as documented
    assert done.returncode == 0 and done.stdout.strip().endswith(
        log.strip().splitlines()[-1]), done.stderr
    assert "Monthly checklist" in log and "[x] Backup made and verified" in log


def test_the_github_actions_recipe_runs_as_written(v4_host, ops_home):
    workflow = yaml.safe_load(recipe("github", "# .github/workflows/trigger-maint.yml"))
    step = next(s for s in workflow["jobs"]["maintain"]["steps"] if s.get("name") == "maintain")
    for dry_run in (True, False):
        expression = "${{ (github.event_name == 'workflow_dispatch' && inputs.dry_run) && " \
                     "'--dry-run' || '--yes --reboot' }}"
        command = step["run"].replace(expression, "--dry-run" if dry_run else "--yes --reboot")
        command = command.replace("${{ secrets.TRIGGER_HOST }}",
                                  f"{v4_host.address}:{v4_host.port}")
        env = {**os.environ, "HOME": str(ops_home), "PATH": f"{EXE.parent}:/usr/bin:/bin",
               "FABRIC_TRIGGER_REPORT_DIR": str(ops_home / "reports")}
        done = subprocess.run(["/bin/bash", "-c", command], cwd=ops_home, env=env, text=True,
                              capture_output=True, timeout=900)
        [doc] = documents((ops_home / "maintain.json").read_text())
        assert doc["task"] == "maintain" and doc["dry_run"] is dry_run
        assert done.returncode == doc["exit_code"], done.stderr
        assert shlex.split(command)[0] == "trigger-maint"
