"""Rendering a status report: summary block, aligned table, verdict and JSON."""

import json
from pathlib import Path
from types import SimpleNamespace

from trigger_maint.checks import FAIL, OK, UNKNOWN, WARN, Check, StatusReport, evaluate
from trigger_maint.config import settings
from trigger_maint.status_report import summary, table, text, to_json, verdict

DATA = Path(__file__).parent / "data" / "status"


def report(name: str, research=None, **tree) -> StatusReport:
    raw = json.loads((DATA / f"{name}.json").read_text())
    return StatusReport("web-1", tuple(evaluate(raw, settings(tree), research)))


def test_summary_of_a_healthy_host():
    block = summary(report("v4_healthy", domain="trigger-5.rig.test"))
    assert list(block) == ["containers", "disk", "certificate", "last backup", "reboot needed",
                           "update available"]
    assert block["containers"] == "5 of 5 ok"
    assert block["disk"].startswith("/var/backups 28% used")
    assert block["certificate"] == "trigger-5.rig.test valid until 2027-01-30 (59 days)"
    assert block["last backup"] == "2026-12-01 02:15 UTC, 3 h ago, 2.0 KiB, verified"
    assert block["reboot needed"] == "no"
    assert block["update available"] == "not checked (running v4.5.10; run research)"


def test_summary_names_what_is_wrong():
    block = summary(report("v3_failures", domain="trigger-6.rig.test"))
    assert block["containers"] == "4 of 5 ok; coordinator exited (exit code 0)"
    assert "/var/backups/trigger 100% used" in block["disk"]
    assert block["certificate"].startswith("trigger-6.rig.test expired on 2026-11-29")
    assert block["last backup"].endswith("(older than 26 h)")
    crash = summary(report("v4_crash_loop"))
    assert "webapp restarting, 6 restarts" in crash["containers"]
    assert crash["last backup"].startswith("none (")
    assert summary(report("v4_warnings"))["reboot needed"] == "yes"


def test_summary_says_whether_research_found_an_update():
    newer = SimpleNamespace(update_available=True, target="4.5.12", latest="4.5.12")
    assert summary(report("v4_healthy", newer))["update available"] == \
        "yes: v4.5.10, v4.5.12 available"
    same = SimpleNamespace(update_available=False, target=None, latest="4.5.10")
    assert summary(report("v4_healthy", same))["update available"] == "no"


def test_no_certificate_source_is_said_plainly():
    checks = (Check("backup", OK, "x"),)
    assert summary(StatusReport("h", checks))["certificate"] == \
        "not checked (no trigger.domain, no certbot)"


def test_table_columns_line_up():
    rendered = table(report("v4_warnings", domain="trigger-5.rig.test").checks)
    header, *rows = rendered.splitlines()
    assert header.split() == ["STATE", "CHECK", "VALUE", "THRESHOLD", "DETAIL"]
    columns = [header.index(word) for word in ("CHECK", "VALUE", "THRESHOLD")]
    for row in rows:
        assert row == row.rstrip()
        for col in columns:
            assert row[col - 2:col] == "  " and row[col] != " ", (row, col)
    assert any(row.startswith("WARN   reboot") for row in rows)


def test_verdict_lines():
    ok = StatusReport("h", (Check("a", OK), Check("b", WARN)))
    assert verdict(ok) == "status ok: 2 checks, 1 warning"
    bad = StatusReport("h", (Check("a", FAIL), Check("b", UNKNOWN), Check("c", OK)))
    assert verdict(bad) == "status NOT OK: 3 checks, 1 failed (a); 1 unknown (b)"
    allowed = StatusReport("h", (Check("b", UNKNOWN),), allow_unknown=True)
    assert verdict(allowed) == "status ok: 1 checks, 1 unknown (b), allowed"


def test_text_is_summary_then_table_then_verdict():
    rendered = text(report("v4_healthy", domain="trigger-5.rig.test"))
    head, body = rendered.split("\n\n", 1)
    assert head.splitlines()[0] == "containers        5 of 5 ok"
    assert body.startswith("STATE")
    assert rendered.endswith("status ok: 23 checks")


def test_json_carries_the_same():
    rep = report("runbook_unhealthy")
    data = to_json(rep)
    assert json.loads(json.dumps(data)) == data
    assert (data["host"], data["ok"], data["worst"]) == ("web-1", False, FAIL)
    assert data["summary"] == summary(rep)
    webapp = next(c for c in data["checks"] if c["name"] == "container webapp")
    assert webapp == {"name": "container webapp", "state": FAIL,
                      "value": webapp["value"], "threshold": "running, healthy, no restarts",
                      "detail": "its healthcheck fails"}
    assert len(data["checks"]) == len(rep.checks)
