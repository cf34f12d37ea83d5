"""maintain through the real CLI on the rig: a full run from v4.5.10 to v4.5.12, a dry run,
a failing update rolled back then chained tasks in one command, and --no-update with the
Dutch checklist and a reboot. Every scenario also proves the data is intact."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SEEDED = ("User", "Project", "RuntimeEnvironment", "TaskRun")
FAST = {"FABRIC_TRIGGER_OBSERVE_SECONDS": "2"}


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 that records the JSON bodies it is sent."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            server.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.bodies = []
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def webapp_image(host) -> str:
    """The image reference the webapp container runs, as Docker reports it."""
    return host.run("docker inspect --format '{{.Config.Image}}' $(docker ps -q "
                    "--filter label=com.docker.compose.service=webapp)").stdout.strip()


def folder(host) -> str:
    """The backup folder trigger-maint finds on the host."""
    return "/opt/trigger/backups" if host.layout == "runbook" else "/var/backups/trigger"


def backups(host) -> dict[str, str]:
    """sha256 of every file in the backup folder (not the rollback points)."""
    d = folder(host)
    out = host.run(f"[ ! -d {d} ] || find {d} -maxdepth 1 -type f -printf '%f\\n' "
                   f"| sort | (cd {d} && xargs -r sha256sum)").stdout
    return {name: digest for digest, name in (line.split() for line in out.splitlines())}


def sidecar(host, dump: str) -> dict:
    stem = dump.removesuffix(".sql.gz").removesuffix(".sql.zst")
    return json.loads(host.run(f"cat {folder(host)}/{stem}.json").stdout)


def boxes(doc: dict) -> dict:
    return {item["key"]: item["ticked"] for item in doc["checklist"]["items"]}


def steps(doc: dict) -> dict:
    return {step["phase"]: step for step in doc["steps"]}


def seeded(rows: dict) -> dict:
    return {table: rows[table] for table in SEEDED}


def test_full_run_updates_behind_a_verified_backup_and_ticks_every_box(
        v4_host, cli, github, receiver, tmp_path):
    host = v4_host
    rows = host.row_counts()
    env = {**FAST, "FABRIC_TRIGGER_WEBHOOK_URL": receiver.url}

    done = cli(host, "maintain", "--yes", "--json", env=env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["exit_code"] == 0 and doc["checklist"]["complete"], doc["checklist"]
    assert all(boxes(doc).values())
    phases = steps(doc)
    assert [s["phase"] for s in doc["steps"]] == [
        "preflight", "research", "status", "backup", "update", "verify", "cleanup", "reboot",
        "final_status"]
    assert {p: s["outcome"] for p, s in phases.items()} == {
        "preflight": "ok", "research": "ok", "status": "ok", "backup": "ok", "update": "ok",
        "verify": "ok", "cleanup": "ok", "reboot": "skipped", "final_status": "ok"}
    assert phases["reboot"]["reason"] == "not required"

    # Updated, behind this run's verified backup, with every seeded row still there.
    assert webapp_image(host).endswith("/triggerdotdev/trigger.dev:v4.5.12")
    after = host.row_counts()
    assert seeded(after) == seeded(rows)
    assert after["_prisma_migrations"] == rows["_prisma_migrations"] + 1  # 4.5.12 adds one
    made = phases["backup"]["result"]
    assert made["verified"] and sidecar(host, made["name"])["verified"] is True
    assert backups(host)[made["name"]] == made["sha256"]
    assert phases["update"]["result"]["backup"] == made["name"]

    # Report files, history, `report`, and the webhook all tell the same run.
    files = doc["files"]
    assert json.loads(open(files["json"]).read())["checklist"] == doc["checklist"]
    markdown = open(files["markdown"]).read()
    assert markdown.count("- [x] ") == 8
    assert "\nVersion:                 v4.5.10 -> v4.5.12\n" in markdown
    shown = cli(host, "report")
    assert shown.returncode == 0, shown.stderr
    assert "v4.5.10 -> v4.5.12" in shown.stdout and "8/8" in shown.stdout
    assert files["markdown"] in shown.stdout
    [body] = receiver.bodies
    assert body["exit_code"] == 0 and body["changed"] == ["update"]
    assert body["version_after"] == "v4.5.12" and body["ticked"] == 8


def test_dry_run_failing_update_then_chained_tasks(runbook_host, cli, github, tmp_path):
    host = runbook_host
    rows, image = host.row_counts(), webapp_image(host)

    plan = cli(host, "maintain", "--dry-run", "--scripts", env=FAST)
    assert plan.returncode == 0, plan.stderr
    for script in ("preflight", "status", "backup", "change-facts", "transaction", "verify",
                   "cleanup-list"):
        assert f": {script} (" in plan.stderr, script  # the scripts behind the plan
    assert "plan: update" in plan.stdout and "guard dump" in plan.stdout
    assert "would update v4.5.10 to v4.5.12" in plan.stdout
    assert "dry run: nothing was changed" in plan.stdout
    assert backups(host) == {} and webapp_image(host) == image
    assert not (tmp_path / "reports").exists()

    failed = cli(host, "maintain", "--yes", "--target", "v4.5.14", "--json", env=FAST)
    assert failed.returncode == 5, failed.stderr
    assert failed.stderr.strip().splitlines()[-1].startswith(
        f"trigger-maint: {host.address}:{host.port}: maintain: update failed (exit 5): ")
    doc = json.loads(failed.stdout)
    phases = steps(doc)
    assert phases["update"]["outcome"] == "failed" and phases["update"]["code"] == 5
    assert "rolled back" in phases["update"]["reason"]
    assert phases["cleanup"]["outcome"] == "skipped"
    assert {k for k, ticked in boxes(doc).items() if not ticked} == {
        "research", "update", "images"}  # research: --target does not ask GitHub
    assert webapp_image(host) == image and host.row_counts() == rows
    made = phases["backup"]["result"]["name"]
    before = backups(host)
    assert before[made] == phases["backup"]["result"]["sha256"]

    # Chained tasks share one session: research's target reaches update, one backup is made
    # (and gates the update), and the host that was rolled back updates fine.
    chained = cli(host, "research", "backup", "update", "--yes", "verify", env=FAST)
    assert chained.returncode == 0, chained.stderr
    assert chained.stderr.count("| backup: ") == 2  # one backup made: its start and its end
    new = set(backups(host)) - set(before)
    made = [n for n in new if ".sql." in n]
    assert sorted(sidecar(host, n)["purpose"] for n in made) == ["backup", "guard"]
    assert {n: backups(host)[n] for n in before} == before
    assert webapp_image(host).endswith("/triggerdotdev/trigger.dev:v4.5.12")
    assert seeded(host.row_counts()) == seeded(rows)


def test_no_update_in_dutch_with_a_reboot(v3_host, cli, github, tmp_path):
    host = v3_host
    rows, image, boot = host.row_counts(), webapp_image(host), host.boot_id()
    host.require_reboot("linux-image-6.1.0-28-amd64")

    done = cli(host, "maintain", "--no-update", "--reboot", "--lang", "nl", env=FAST)
    assert done.returncode == 1, done.stderr  # v3.3.18 is available and was not installed
    out = done.stdout
    assert "Maandelijkse checklist" in out
    assert "[ ] Update uitgevoerd (indien beschikbaar) - v3.3.18 beschikbaar, niet " \
           "geïnstalleerd: --no-update" in out
    assert "[x] Reboot uitgevoerd (indien nodig) - herstart (boot id" in out
    assert "[x] Backup gemaakt en geverifieerd" in out and "Images opgeschoond" in out
    assert "Update beschikbaar:" in out and "ja (v3.3.18)" in out
    assert "maintain: checklist not complete: update (v3.3.18 beschikbaar" in done.stderr
    [report] = (tmp_path / "reports").glob("*.json")
    doc = json.loads(report.read_text())
    assert {p: s["outcome"] for p, s in steps(doc).items()} == {
        "preflight": "ok", "research": "ok", "status": "ok", "backup": "ok",
        "update": "skipped", "verify": "ok", "cleanup": "ok", "reboot": "ok",
        "final_status": "ok"}
    assert steps(doc)["reboot"]["result"]["new_boot_id"] == host.boot_id() != boot
    assert webapp_image(host) == image and host.row_counts() == rows
