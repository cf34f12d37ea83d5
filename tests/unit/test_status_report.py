"""Rendering a status report: summary block, aligned table, verdict and JSON."""

import io
import json
import re
from types import SimpleNamespace

import pytest

from trigger_maint.checks import FAIL, OK, UNKNOWN, WARN, Check, StatusReport, evaluate
from trigger_maint.config import settings
from trigger_maint.output import SCHEMA, document
from trigger_maint.status_report import (
    block,
    colour_wanted,
    summary,
    table,
    text,
    to_json,
    verdict,
)

from . import builders
from .builders import (
    BACKUP_DIR,
    CERTBOT,
    CERTIFICATE,
    DF_ROOT,
    LIVE,
    healthy,
    inspect,
    stack,
    status_raw,
)

DOMAIN = settings({"domain": "trigger.example.com"})


def report(facts, research=None, s=DOMAIN) -> StatusReport:
    return StatusReport("web-1", tuple(evaluate(facts, s, research)), backup_dir=BACKUP_DIR)


def failing_v3():
    """A v3 host with a stopped service, a full backup disk, an expired certificate and an
    old backup."""
    v3 = [inspect("webapp", 1, health="", ref="ghcr.io/triggerdotdev/trigger.dev:v3.3.17"),
          inspect("postgres", 2), inspect("redis", 3, health=""),
          inspect("coordinator", 4, state="exited", health="", exit_code=0),
          inspect("docker-provider", 5, health="")]
    expired = {**LIVE, "verify": "10 (certificate has expired)",
               "certificate": CERTIFICATE.replace("Jan 30 04:58:55 2027",
                                                  "Nov 29 04:58:55 2026")}
    raw = status_raw(tls=expired, disks={
        "root": {"path": "/", "df": DF_ROOT},
        "backups0": {"path": BACKUP_DIR,
                     "df": "rig-backups 524288 520192 4096 100% /var/backups/trigger"}})
    return builders.status_facts(raw=raw, folders=(builders.backup_folder(50),),
                                 containers=v3, layout="v3")


def test_summary_of_a_healthy_host():
    assert summary(report(healthy())) == [
        ("Host", "web-1"),
        ("Version", "v4.5.10"),
        ("Containers", "5 of 5 ok"),
        ("Disk", "/ 43%, /var/backups 28%"),
        ("Certificate valid until", "2027-01-30 (trigger.example.com)"),
        ("Last backup", "2026-12-01 03:00 UTC, 2 h ago, 12.0 KiB, verified"),
        ("Reboot needed", "no"),
        ("Update available", "not checked (run research)"),
    ]


def test_summary_names_what_is_wrong():
    lines = dict(summary(report(failing_v3())))
    assert lines["Version"] == "v3.3.17"
    assert lines["Containers"] == "4 of 5 ok; coordinator exited (exit code 0)"
    assert lines["Disk"] == "/ 43%, /var/backups/trigger 100%"
    assert lines["Certificate valid until"].startswith(
        "trigger.example.com: expired on 2026-11-29 (3 days ago) (the live certificate has "
        "expired")
    assert re.fullmatch(r"2026-11-29 03:00 UTC, 2 d ago, 12\.0 KiB, verified "
                        r"\(older than 26 h; .*\)", lines["Last backup"])
    looping = builders.status_facts(containers=stack(state="restarting", health="",
                                                     restarts=6, exit_code=1))
    crash = dict(summary(report(looping)))
    assert "webapp restarting, 6 restarts" in crash["Containers"]
    assert crash["Last backup"].startswith("none (no trigger-db dump in ")
    reboot = healthy(reboot={"required": True, "source": "/var/run/reboot-required",
                             "packages": []})
    assert dict(summary(report(reboot)))["Reboot needed"] == "yes"


def test_the_worst_certificate_comes_first():
    facts = healthy(certbot={"rc": 0, "out": CERTBOT, "err": ""})
    line = dict(summary(report(facts)))["Certificate valid until"]
    assert line.startswith("old.example.com (certbot): expired on 2026-11-28")


@pytest.mark.parametrize("research, answer", [
    (SimpleNamespace(update_available=True, target="4.5.12", latest="4.5.12"), "yes (v4.5.12)"),
    (SimpleNamespace(update_available=False, target=None, latest="4.5.10"), "no"),
    (None, "not checked (run research)"),
])
def test_summary_says_whether_research_found_an_update(research, answer):
    assert dict(summary(report(healthy(), research)))["Update available"] == answer


def test_an_unknown_version_is_said_plainly():
    blind = builders.status_facts(containers=[inspect("postgres", 2)])
    lines = dict(summary(report(blind)))
    assert (lines["Version"], lines["Update available"]) == ("unknown", "unknown")


def test_no_certificate_source_is_said_plainly():
    checks = (Check("backup", OK, "x"),)
    assert dict(summary(StatusReport("h", checks)))["Certificate valid until"] == \
        "not checked (no trigger.domain, no certbot)"
    assert dict(summary(StatusReport("h", checks)))["Containers"] == "unknown"


def test_dutch_summary_uses_the_runbooks_words():
    lines = summary(report(healthy()), "nl")
    assert [label for label, _ in lines] == [
        "Host", "Versie", "Containers", "Disk", "Certificaat geldig tot", "Laatste backup",
        "Reboot nodig", "Update beschikbaar"]
    assert dict(lines)["Reboot nodig"] == "nee"
    assert dict(lines)["Update beschikbaar"] == "niet gecontroleerd (draai research)"
    assert block(lines).splitlines()[1] == "Versie:                 v4.5.10"


def test_wide_table_columns_line_up():
    rendered = table(report(healthy()).checks, width=200)
    header, *rows = rendered.splitlines()
    assert header.split() == ["STATE", "CHECK", "VALUE", "THRESHOLD", "DETAIL"]
    columns = [header.index(word) for word in ("CHECK", "VALUE", "THRESHOLD")]
    for row in rows:
        assert row == row.rstrip()
        for col in columns:
            assert row[col - 2:col] == "  " and row[col] != " ", (row, col)
    assert any(row.startswith("ok     reboot") for row in rows)


def test_narrow_table_puts_threshold_and_detail_below_their_row():
    checks = (Check("disk", WARN, "85% used, 1.0 GiB free", "warn 80%, fail 95%",
                    "holds /, Docker data /var/lib/docker", item="/"),
              Check("reboot", OK, "not required", "not required", "/var/run/reboot-required"))
    rows = table(checks, width=60).splitlines()
    assert rows[0].split() == ["STATE", "CHECK", "VALUE"]
    assert rows[1] == "WARN   disk /  85% used, 1.0 GiB free"
    assert rows[2:4] == ["         threshold warn 80%, fail 95%; holds /, Docker data",
                         "         /var/lib/docker"]
    assert rows[4:] == ["ok     reboot  not required", "         /var/run/reboot-required"]
    assert all(len(row) <= 60 for row in rows)


def test_colour_only_on_a_terminal_without_no_color(monkeypatch):
    coloured = table((Check("disk", FAIL, "97%", item="/"),), width=200, colour=True)
    assert "\x1b[31mFAIL\x1b[0m" in coloured

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour_wanted(Terminal()) and not colour_wanted(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_wanted(Terminal())


def test_verdict_lines():
    ok = StatusReport("h", (Check("containers", OK, item="webapp"), Check("reboot", WARN)))
    assert verdict(ok) == "status ok: 2 checks, 1 warning"
    bad = StatusReport("h", (Check("disk", FAIL, item="/"), Check("backup", UNKNOWN),
                             Check("reboot", OK)))
    assert verdict(bad) == "status NOT OK: 3 checks, 1 failed (disk /); 1 unknown (backup)"
    allowed = StatusReport("h", (Check("backup", UNKNOWN),), allow_unknown=True)
    assert verdict(allowed) == "status ok: 1 checks, 1 unknown (backup), allowed"


def test_text_is_summary_then_table_then_verdict():
    rendered = text(report(healthy()), width=200)
    head, body = rendered.split("\n\n", 1)
    assert head.splitlines()[0] == "Host:                    web-1"
    assert body.startswith("STATE")
    assert rendered.endswith("status ok: 21 checks")


def test_json_carries_the_same():
    runbook = [inspect("webapp", 1, health="unhealthy", env=["BUILD_APP_VERSION=v4.5.10"]),
               inspect("postgres", 2)]
    rep = report(builders.status_facts(raw=status_raw(webapp_http="500"), containers=runbook,
                                       layout="runbook"), s=settings({}))
    data = to_json(rep)
    assert json.loads(json.dumps(data)) == data
    assert (data["worst"], data["backup_dir"], data["allow_unknown"]) == (FAIL, BACKUP_DIR,
                                                                          False)
    assert data["summary"] == dict(summary(rep)) and data["verdict"] == verdict(rep)
    webapp = next(c for c in data["checks"] if (c["name"], c["item"]) == ("containers", "webapp"))
    assert webapp == {"name": "containers", "item": "webapp", "state": FAIL,
                      "value": webapp["value"], "threshold": "running, healthy, no restarts",
                      "detail": "its healthcheck fails", "data": webapp["data"]}
    assert webapp["data"]["health"] == "unhealthy"
    assert len(data["checks"]) == len(rep.checks)


def test_the_json_document_has_its_envelope():
    rep = report(healthy())
    doc = json.loads(json.dumps(document("status", "web-1", 0, to_json(rep), ok=rep.ok)))
    assert {k: doc[k] for k in ("schema", "task", "host", "ok", "exit_code")} == {
        "schema": SCHEMA, "task": "status", "host": "web-1", "ok": True, "exit_code": 0}
    failed = document("status", "web-1", 0, {"x": 1}, ok=False)  # --report-only
    assert (failed["ok"], failed["exit_code"], failed["x"]) == (False, 0, 1)
    assert document("backup", None, 5)["ok"] is False
