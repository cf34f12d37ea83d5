"""Report files and history on the machine running trigger-maint."""

from __future__ import annotations

import json
import os
import stat
import threading

from trigger_maint import checklist as cl
from trigger_maint import report
from trigger_maint.config import settings
from trigger_maint.maintaining import Outcome, Policy, Step

from .test_maintaining import STARTED, make_run


def finished_run(**replace):
    """A finished run and its checklist."""
    run = make_run(**replace)
    return run, cl.build(run, 80)


def test_reports_are_written_private_and_named_by_host_and_time(tmp_path):
    s = settings({"report_dir": str(tmp_path / "reports")})
    run, checklist = finished_run()
    files = report.write(s, run, checklist)
    assert files == {"markdown": str(tmp_path / "reports/127.0.0.29-2222-20261201-040005.md"),
                     "json": str(tmp_path / "reports/127.0.0.29-2222-20261201-040005.json")}
    for path in files.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "reports").st_mode) == 0o700
    doc = json.loads(open(files["json"]).read())
    assert doc["host"] == "127.0.0.29:2222" and doc["exit_code"] == 0
    assert "- [x] Images cleaned up" in open(files["markdown"]).read()
    again = report.write(s, run, checklist)  # same host, same second: a new name
    assert again["json"].endswith("-040005-2.json") and open(files["json"]).read() == \
        json.dumps(doc, indent=2, sort_keys=True) + "\n"


def test_report_dir_expands_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    s = settings({"report_dir": "~/state/tm"})
    run, checklist = finished_run()
    files = report.write(s, run, checklist)
    assert files["markdown"].startswith(str(tmp_path / "state/tm") + "/")


def test_history_keeps_every_run_and_filters_by_host(tmp_path):
    s = settings({"report_dir": str(tmp_path)})
    for minute in range(4):
        run, checklist = finished_run()
        run.started_at = STARTED.replace(minute=minute)
        report.write(s, run, checklist)
    other, _ = finished_run(update=Step("update", Outcome.SKIPPED, reason="--no-update"))
    other.host, other.policy = "10.0.0.5", Policy(no_update=True)
    report.write(s, other, cl.build(other, 80))
    assert len(report.history(s, last=0)) == 5
    last = report.history(s, host="127.0.0.29:2222", last=2)
    assert [e["started_at"] for e in last] == ["2026-12-01T04:02:05Z", "2026-12-01T04:03:05Z"]
    assert report.history(s, host="10.0.0.5")[0]["open"] == ["update"]
    assert report.history(s, host="nobody") == []


def test_a_torn_history_line_is_skipped_not_fatal(tmp_path):
    s = settings({"report_dir": str(tmp_path)})
    run, checklist = finished_run()
    report.write(s, run, checklist)
    with open(tmp_path / report.HISTORY, "a") as out:
        out.write('{"host": "127.0.0.29:2222", "exit_')
    assert len(report.history(s)) == 1


def test_parallel_hosts_append_whole_lines(tmp_path):
    s = settings({"report_dir": str(tmp_path)})

    def one(n):
        run, checklist = finished_run()
        run.host = f"host-{n}"
        report.write(s, run, checklist)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = report.history(s, last=0)
    assert sorted(e["host"] for e in entries) == sorted(f"host-{n}" for n in range(12))


def test_describe_lists_runs_newest_last(tmp_path):
    s = settings({"report_dir": str(tmp_path)})
    run, checklist = finished_run()
    report.write(s, run, checklist)
    failed, failed_checklist = finished_run(
        update=Step("update", Outcome.FAILED, code=5, reason="rolled back to v4.5.10"),
        cleanup=Step("cleanup", Outcome.SKIPPED, reason="the update failed"))
    failed.started_at = STARTED.replace(hour=5)
    report.write(s, failed, failed_checklist)
    text = report.describe(report.history(s), "127.0.0.29:2222", str(tmp_path))
    lines = text.splitlines()
    assert lines[0] == "2 maintain run(s) for 127.0.0.29:2222"
    assert lines[1].split() == ["started", "(UTC)", "host", "exit", "version", "checklist",
                                "open", "report"]
    assert lines[2].split()[:7] == ["2026-12-01", "04:00:05", "127.0.0.29:2222", "0",
                                    "v4.5.10", "->", "v4.5.12"]
    assert lines[3].split()[3:8] == ["5", "v4.5.10", "6/8", "update,", "images"]
    assert report.describe([], "x", "/r") == "no maintain runs recorded for x in /r"
