"""research through the real CLI: rig host at v4.5.10, the fake GitHub API, the local registry."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.conftest import UNREACHABLE_GITHUB

ADVISORY = {"ghsa_id": "GHSA-7r4x-rig0-q5m2", "cve_id": "CVE-2026-80011",
            "severity": "critical", "summary": "Webhook signatures not checked for batch runs",
            "vulnerable_version_range": ">= 4.5.10, < 4.5.12", "patched_versions": "4.5.12"}
EDGE = {"ghsa_id": "GHSA-3k9w-rig0-x8v4", "summary": "Fixed just before the running version",
        "vulnerable_version_range": "<= 4.5.9", "patched_versions": "4.5.10"}


def one_line(done):
    """The single stderr line of a failed run (in a chain: besides each task's header and
    exit line)."""
    lines = [line for line in done.stderr.splitlines() if line.strip() and " | == " not in line]
    assert len(lines) == 1, done.stderr
    return lines[0]


def documents(done) -> list[dict]:
    """The JSON documents on stdout: one per line, each in the common envelope."""
    docs = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(d["schema"] == "trigger-maint/1" and d["task"] == "research" for d in docs)
    return docs


def untouched(host):
    """What research must never change: data and the pinned version."""
    return host.row_counts(), host.run("cat /opt/trigger/.env").stdout


class BadGitHub(BaseHTTPRequestHandler):
    """GitHub misbehaving; the first path segment picks how."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        mode = self.path.split("/")[1]
        if mode == "slow":
            time.sleep(3)
        if mode == "rate-limit":
            body = b'{"message": "API rate limit exceeded for 127.0.0.1."}'
            self.send_response(403)
            self.send_header("X-RateLimit-Limit", "60")
            self.send_header("X-RateLimit-Remaining", "0")
            self.send_header("X-RateLimit-Reset", "1788000000")
        else:
            body = b'[{"tag_name": "v4.5.12", "draft": false'
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the client gave up (slow mode)
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def bad_github():
    server = ThreadingHTTPServer(("127.0.0.1", 0), BadGitHub)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_research_on_v4_5_10(v4_host, cli, github, bad_github, tmp_path):
    """One scenario: target and skip, cache, --pre, --target, an advisory, GitHub failures,
    then a floating tag; research never changes the host."""
    host = v4_host
    before = untouched(host)

    done = cli(host, "research", "--json")
    assert done.returncode == 0, done.stderr
    (found,) = documents(done)
    assert (found["host"], found["exit_code"]) == (f"{host.address}:{host.port}", 0)
    assert (found["running"], found["latest"], found["target"], found["target_tag"]) == (
        "4.5.10", "4.5.12", "4.5.12", "v4.5.12")
    assert found["update_available"] and found["ok"] and found["advisories_checked"]
    assert (found["running_tag"], found["floating"]) == ("v4.5.10", False)
    assert found["target_digest"].startswith("sha256:")
    assert found["skipped"] == [{"version": "4.5.13",
                                 "reason": "no image v4.5.13 in the registry"}]
    assert found["advisories"] == []  # the fake's advisories all end before 4.5.10
    assert [n["version"] for n in found["notes"]] == ["4.5.11", "4.5.12"]
    assert "add_task_run_priority" in found["notes"][1]["breaking"]
    assert found["notes"][0]["breaking"] == "" and found["hazards"] == []
    log = github.request_log()
    assert {r["path"].split("?")[0] for r in log} == {
        "/repos/triggerdotdev/trigger.dev/releases",
        "/repos/triggerdotdev/trigger.dev/security-advisories"}
    asked = len(log)

    text = cli(host, "research")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0] == "Update available: v4.5.10 -> v4.5.12"
    assert "skipped     v4.5.13: no image v4.5.13 in the registry" in text.stdout
    assert github.requests() == asked  # inside the cache lifetime: no request at all

    for path in (tmp_path / "cache" / "github").glob("*.json"):  # let the cache expire
        entry = json.loads(path.read_text())
        path.write_text(json.dumps({**entry, "fetched_at": entry["fetched_at"] - 3600}))
    pre = cli(host, "research", "--pre", "--json")
    assert pre.returncode == 0, pre.stderr
    assert (json.loads(pre.stdout)["target_tag"]) == "v4.6.0-rc.1"
    revalidated = github.request_log()[asked:]  # ETag: 304s, answered from the cache
    assert len(revalidated) == asked and all(r["if_none_match"] for r in revalidated)
    asked = github.requests()

    given = cli(host, "research", "--target", "v4.5.11", "research", "--target", "v4.5.13")
    assert given.stdout.splitlines()[0] == "Update available: v4.5.10 -> v4.5.11"
    assert "advisories  not checked" in given.stdout
    assert given.returncode == 4
    # Two tasks in one command: each framed by its header and exit line, the error inside.
    label = f"{host.address}:{host.port}"
    assert [line for line in given.stderr.splitlines() if line.startswith("trigger-maint:")] \
        == [f"trigger-maint: {label}: --target v4.5.13: no image 127.0.0.1:5000/triggerdotdev/"
            "trigger.dev:v4.5.13 in the registry; refusing to propose it"]
    assert given.stderr.splitlines()[-1].startswith(f"{label} | == research: exit 4 in ")
    assert github.requests() == asked  # --target never asks GitHub
    # Under --json: one document per task, the failed one in the same envelope with "error".
    given = cli(host, "research", "--target", "v4.5.11", "--json",
                "research", "--target", "v4.5.13", "--json")
    assert given.returncode == 4
    first, second = documents(given)
    assert (first["ok"], first["exit_code"], first["target_tag"]) == (True, 0, "v4.5.11")
    assert (second["ok"], second["exit_code"]) == (False, 4) and "target" not in second
    assert second["error"] == one_line(given).removeprefix("trigger-maint: ")
    assert second["error"].endswith("v4.5.13 in the registry; refusing to propose it")

    github(advisories=[ADVISORY, EDGE])
    affected = cli(host, "research", env={"FABRIC_TRIGGER_CACHE_DIR": str(tmp_path / "c2")})
    assert affected.returncode == 1, affected.stderr
    assert "advisories  1 affect v4.5.10:" in affected.stdout
    line = next(x for x in affected.stdout.splitlines() if "GHSA-7r4x-rig0-q5m2" in x)
    assert "CRITICAL" in line and "CVE-2026-80011" in line and "fixed in 4.5.12" in line
    assert "GHSA-3k9w-rig0-x8v4" not in affected.stdout

    label = f"trigger-maint: {host.address}:{host.port}: GitHub: "
    cases = {
        UNREACHABLE_GITHUB: "cannot connect to http://127.0.0.1:9/repos/",
        f"{bad_github}/rate-limit": "API rate limit exceeded (60 requests/hour); it resets "
                                    "at 2026-08-29 10:40:00 UTC; set GITHUB_TOKEN",
        f"{bad_github}/malformed": "malformed answer for ",
        f"{bad_github}/slow": "no answer within 1 s (",
    }
    for url, message in cases.items():
        failed = cli(host, "research", env={"FABRIC_TRIGGER_GITHUB_API": url,
                                            "FABRIC_TRIGGER_HTTP_TIMEOUT": "1",
                                            "FABRIC_TRIGGER_CACHE_DIR": str(tmp_path / "c3"),
                                            "GITHUB_TOKEN": ""})
        assert failed.returncode == 3, (url, failed.stderr)
        assert one_line(failed).startswith(label + message), failed.stderr
        assert failed.stdout == ""
    failed = cli(host, "research", "--json", env={"FABRIC_TRIGGER_GITHUB_API": UNREACHABLE_GITHUB,
                                                  "FABRIC_TRIGGER_CACHE_DIR": str(tmp_path / "c3"),
                                                  "GITHUB_TOKEN": ""})
    assert failed.returncode == 3
    (error,) = documents(failed)
    assert (error["ok"], error["exit_code"], error["host"]) == (
        False, 3, f"{host.address}:{host.port}")
    assert error["error"].startswith(f"{host.address}:{host.port}: GitHub: cannot connect")
    assert untouched(host) == before

    host.run("sed -i 's/^TRIGGER_IMAGE_TAG=.*/TRIGGER_IMAGE_TAG=v4/' /opt/trigger/.env")
    host.compose("up", "-d", "--no-deps", "--quiet-pull", "webapp")
    floating = cli(host, "research", "--json")
    assert floating.returncode == 0, floating.stderr
    (found,) = documents(floating)
    assert (found["running"], found["running_tag"], found["floating"]) == ("4.5.11", "v4", True)
    assert found["running_digest"].startswith("sha256:")
    assert found["running_digest"] != documents(done)[0]["running_digest"]
    assert found["target"] == "4.5.12" and [n["version"] for n in found["notes"]] == ["4.5.12"]
    assert host.row_counts() == before[0]


