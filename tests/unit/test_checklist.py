"""The monthly checklist: every box ticked from what the run measured, in English and Dutch."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from trigger_maint import checklist as cl
from trigger_maint.errors import OperationError
from trigger_maint.maintaining import DRY_RUN, Outcome, Policy, Step

from .test_maintaining import (
    ADVISORY,
    REBOOT_NEEDED,
    cleanup,
    failed,
    make_run,
    reboot,
    research,
    status,
    update,
)


def boxes(run, threshold=80) -> dict:
    checklist = cl.build(run, threshold)
    return {item.key: (item.ticked, item.note) for item in checklist.items}


def test_a_good_run_ticks_every_box_with_what_was_measured():
    run = make_run()
    found = boxes(run)
    assert all(ticked for ticked, _ in found.values()), found
    assert found["research"][1] == "running v4.5.10, newest v4.5.12; no advisory affects v4.5.10"
    assert found["containers"][1] == "2/2 running"  # "resources" is not a container
    assert found["disk"][1] == "/ 43%"
    assert found["certificate"][1] == "valid until 2027-02-01"
    assert found["backup"][1] == "trigger-db-20261201-040010.sql.gz, 1.2 MiB, verified"
    assert found["update"][1] == "updated v4.5.10 -> v4.5.12"
    assert found["reboot"][1] == "not needed"
    assert found["images"][1] == "1 image(s) removed, 300.0 MiB freed in total"
    assert cl.build(run, 80).complete and run.exit_code == 0


def test_the_guard_dump_and_what_a_database_rollback_would_lose_are_named():
    run = make_run(update=update(guard=True))
    assert boxes(run)["update"] == (True, "updated v4.5.10 -> v4.5.12; guard dump "
                                          "trigger-db-20261201-040019.sql.gz, a database "
                                          "rollback would lose the writes of the last 11 s "
                                          "before the change")


def test_dutch_uses_the_runbooks_words():
    run = make_run(Policy(yes=True, lang="nl"))
    checklist = cl.build(run, 80)
    assert checklist.title == "Maandelijkse checklist"
    assert [item.text for item in checklist.items] == [
        "Research gedaan", "Alle containers draaien", "Disk < 80%", "Certificaat geldig",
        "Backup gemaakt en geverifieerd", "Update uitgevoerd (indien beschikbaar)",
        "Reboot uitgevoerd (indien nodig)", "Images opgeschoond"]
    text = cl.text(run, checklist)
    assert "Maandelijkse checklist" in text and "[x] Alle containers draaien - 2/2 draaien" in text
    assert "Versie:" in text and "v4.5.10 -> v4.5.12" in text and "exitcode 0" in text
    lines = dict(line.split(":", 1) for line in text.splitlines()[:9])
    assert lines["Reboot nodig"].strip() == "nee" and lines["Update beschikbaar"].strip() == "nee"
    assert lines["Resultaat"].strip() == "alle punten afgevinkt"


def test_the_disk_box_follows_the_configured_threshold():
    run = make_run(final_status=status(**{"disk /": ("warn", "85% used, 1.0 GiB free",
                                                     {"mount": "/", "percent": 85})}))
    ticked, note = boxes(run, threshold=80)["disk"]
    assert not ticked and note == "/ 85%"
    assert cl.build(run, 80).items[2].text == "Disk < 80%"
    assert cl.build(run, 90).items[2].text == "Disk < 90%"
    unmeasured = make_run(final_status=status(**{"disk /": ("unknown", "", {})}))
    assert boxes(unmeasured)["disk"] == (False, "/ unknown")


def test_the_final_status_decides_not_the_one_before_the_changes():
    run = make_run(status=status(**{"containers webapp": ("fail", "exited (1)")}))
    assert boxes(run)["containers"][0]
    down = make_run(final_status=status(**{"containers webapp": ("fail",
                                                                 "restarting, 4 restarts")}))
    ticked, note = boxes(down)["containers"]
    assert not ticked and note == "1/2 running; webapp restarting, 4 restarts"


def test_a_final_status_that_failed_still_counts_what_it_measured():
    broken = status(**{"containers webapp": ("fail", "exited (1)")})
    run = make_run(final_status=broken)
    assert run.step("final_status").outcome is Outcome.FAILED
    assert boxes(run)["containers"] == (False, "1/2 running; webapp exited (1)")
    lost = make_run(final_status=Step("final_status", Outcome.FAILED, code=3,
                                      reason="cannot connect"))
    assert boxes(lost)["containers"] == (True, "2/2 running")  # the status before


def test_certificate_expiring_soon_is_still_valid_but_expired_or_unmeasured_is_not():
    soon = make_run(final_status=status(**{"certificate trigger.test": (
        "warn", "valid until 2026-12-10 (9 days)",
        {"source": "live", "expires": "2026-12-10T04:58:55+00:00", "days_left": 9})}))
    assert boxes(soon)["certificate"] == (True, "valid until 2026-12-10")
    expired = make_run(final_status=status(**{"certificate trigger.test": (
        "fail", "expired on 2026-11-20 (11 days ago)",
        {"source": "live", "expires": "2026-11-20T04:58:55+00:00", "days_left": -11})}))
    ticked, note = boxes(expired)["certificate"]
    assert not ticked and note.startswith("valid until 2026-11-20; certificate trigger.test: ")
    bare = make_run(final_status=status_without("certificate"))
    assert boxes(bare)["certificate"] == (False, "not checked (no trigger.domain, no certbot)")


def status_without(name):
    report = status()
    return type(report)(host=report.host, checks=tuple(
        c for c in report.checks if c.name != name))


def test_research_with_a_given_target_did_not_check_advisories():
    run = make_run(Policy(yes=True, target="v4.5.14"),
                   research=research(target="4.5.14", checked=False),
                   update=failed("update", OperationError(
                       "health not reached within 60 s; rolled back to v4.5.10")),
                   cleanup=Step("cleanup", Outcome.SKIPPED, reason="the update failed"))
    found = boxes(run)
    assert found["research"] == (
        False, "running v4.5.10, newest unknown; advisories not checked (--target v4.5.14)")
    assert found["update"] == (False, "v4.5.14 not installed: health not reached within "
                                      "60 s; rolled back to v4.5.10")
    assert found["images"] == (False, "the update failed")
    assert run.exit_code == 5


def test_advisories_are_named():
    run = make_run(research=research(advisories=[ADVISORY]))
    assert boxes(run)["research"] == (True, "running v4.5.10, newest v4.5.12; 1 advisory(ies) "
                                            "affect v4.5.10: GHSA-p28v-f755-9qrg")


def test_an_available_update_not_installed_leaves_the_box_open():
    run = make_run(Policy(no_update=True),
                   update=Step("update", Outcome.SKIPPED, reason="--no-update"))
    assert boxes(run)["update"] == (False, "v4.5.12 available, not installed: --no-update")
    assert run.exit_code == 1
    current = make_run(research=research(target=None),
                       update=Step("update", Outcome.SKIPPED, reason="up to date"))
    assert boxes(current)["update"] == (True, "no update available")
    unknown = make_run(research=failed("research", OperationError("GitHub: no answer")),
                       update=Step("update", Outcome.SKIPPED, reason="research did not complete"))
    assert boxes(unknown)["update"] == (False, "GitHub: no answer")
    there = make_run(update=update(changed=False))  # the target ran already
    assert boxes(there)["update"] == (True, "no update available")


def test_reboot_box():
    needed = status(reboot=REBOOT_NEEDED)
    refused = make_run(status=needed, final_status=needed, reboot=reboot(done=False))
    ticked, note = boxes(refused)["reboot"]
    assert not ticked and note.startswith("needed, not done: a reboot is required but not "
                                          "allowed")
    done = make_run(status=needed, reboot=reboot())
    assert boxes(done)["reboot"] == (True, "rebooted (boot id 0f1e2d3c -> 9a8b7c6d)")
    unhealthy = make_run(status=needed, reboot=reboot(verified=False))
    assert boxes(unhealthy)["reboot"] == (True, "rebooted (boot id 0f1e2d3c -> 9a8b7c6d); "
                                                "verify after the reboot failed: healthcheck")
    assert unhealthy.exit_code == 1


def test_images_box_needs_the_images_actually_pruned():
    held = make_run(cleanup=cleanup(images=0, refused=(
        "images: left alone (change 20261201-040020-update is under way; let it finish)",)))
    ticked, note = boxes(held)["images"]
    assert not ticked and "images: left alone" in note
    nothing = make_run(cleanup=cleanup(images=0))
    assert boxes(nothing)["images"] == (True, "0 image(s) removed, 0 B freed in total")
    backups_only = make_run(cleanup=cleanup(images=0, refused=(
        "backups: not rotated (the newest backup failed its checks)",)))
    assert boxes(backups_only)["images"][0]


def test_summary_block_and_renderings():
    run = make_run()
    checklist = cl.build(run, 80)
    assert cl.summary_block(checklist).splitlines() == [
        "Host:                    127.0.0.29:2222",
        "Version:                 v4.5.10 -> v4.5.12",
        "Containers:              2 of 2 ok",
        "Disk:                    / 43%",
        "Certificate valid until: 2027-02-01 (trigger.test)",
        "Last backup:             2026-12-01 04:01 UTC, 1 min ago, 1.2 MiB, verified",
        "Reboot needed:           no",
        "Update available:        no",
        "Result:                  all boxes ticked",
    ]
    md = cl.markdown(run, checklist)
    assert md.startswith("# Maintenance report: 127.0.0.29:2222, 2026-12-01 04:00 UTC\n")
    assert "- [x] Backup made and verified — trigger-db-20261201-040010.sql.gz" in md
    assert "| update | ok | 1.5 | v4.5.10 -> v4.5.12 |" in md
    doc = json.loads(json.dumps(cl.document(run, checklist), default=str))
    assert doc["exit_code"] == 0 and doc["ok"] and doc["checklist"]["complete"] is True
    assert doc["started_at"] == "2026-12-01T04:00:05Z"
    assert [s["phase"] for s in doc["steps"]][:3] == ["preflight", "research", "status"]
    assert doc["steps"][4]["result"]["to_version"] == "4.5.12"
    assert doc["policy"]["yes"] is True and doc["lang"] == "en"
    assert {"key": "reboot", "text": "Reboot done (if needed)", "ticked": True,
            "note": "not needed"} in doc["checklist"]["items"]


def test_open_boxes_are_counted_in_the_summary_and_markdown():
    run = make_run(Policy(no_update=True),
                   update=Step("update", Outcome.SKIPPED, reason="--no-update"),
                   final_status=status(version=("warn", "v4.5.10, v4.5.12 available", {
                       "running": "4.5.10", "latest": "4.5.12", "update_available": True})))
    checklist = cl.build(run, 80)
    assert dict(checklist.summary)["Result"] == "1 of 8 boxes open"
    assert dict(checklist.summary)["Update available"] == "yes (v4.5.12)"
    assert dict(checklist.summary)["Version"] == "v4.5.10"
    md = cl.markdown(run, checklist)
    assert "- [ ] Update done (if available) — v4.5.12 available" in md
    assert "| update | skipped | 1.5 | --no-update |" in md


def test_dry_run_text_says_nothing_changed():
    run = make_run(Policy(dry_run=True), backup=Step("backup", Outcome.PLANNED, reason=DRY_RUN))
    checklist = cl.build(run, 80)
    assert boxes(run)["backup"] == (False, "dry run: nothing was changed")
    assert cl.text(run, checklist).endswith("dry run: nothing was changed; exit code 0")


def test_report_names_and_history_entry():
    when = datetime(2026, 12, 1, 4, 0, 5, tzinfo=UTC)
    assert cl.report_stem("127.0.0.29:2222", when) == "127.0.0.29-2222-20261201-040005"
    assert cl.report_stem("root@../etc", when) == "root-..-etc-20261201-040005"
    run = make_run()
    entry = cl.history_entry(run, cl.build(run, 80), {"markdown": "/r/a.md",
                                                      "json": "/r/a.json"})
    assert entry == {
        "host": "127.0.0.29:2222", "started_at": "2026-12-01T04:00:05Z",
        "finished_at": "2026-12-01T04:03:05Z", "exit_code": 0, "version_before": "v4.5.10",
        "version_after": "v4.5.12", "ticked": 8, "total": 8, "open": [], "changed": ["update"],
        "files": {"markdown": "/r/a.md", "json": "/r/a.json"}}
    assert cl.changed(make_run(update=update(rolled_back=True))) == ["update failed"]
    assert cl.changed(make_run(update=update(changed=False))) == []
    assert cl.changed(make_run(reboot=reboot())) == ["update", "reboot"]


def test_verdict_names_the_first_failure_else_the_open_boxes():
    run = make_run(update=failed("update", OperationError("not healthy; rolled back")),
                   cleanup=Step("cleanup", Outcome.SKIPPED, reason="the update failed"))
    checklist = cl.build(run, 80)
    assert cl.verdict(run, checklist) == "update failed (exit 5): not healthy; rolled back"
    assert "update failed (exit 5): not healthy; rolled back" in cl.text(run, checklist)
    both = make_run(update=failed("update", OperationError("x")),
                    final_status=status(**{"disk /": ("fail", "97% used")}))
    assert cl.verdict(both, cl.build(both, 80)) == "update failed (exit 5): x (+1 more)"
    open_box = make_run(Policy(no_update=True),
                        update=Step("update", Outcome.SKIPPED, reason="--no-update"))
    assert cl.verdict(open_box, cl.build(open_box, 80)) == (
        "checklist not complete: update (v4.5.12 available, not installed: --no-update)")
    good = make_run()
    assert cl.verdict(good, cl.build(good, 80)) == "ok"


def test_dry_run_text_lists_the_plan():
    run = make_run(Policy(dry_run=True), backup=Step("backup", Outcome.PLANNED, reason=DRY_RUN),
                   update=Step("update", Outcome.PLANNED, summary="would update v4.5.10 to "
                                                                  "v4.5.12"))
    text = cl.text(run, cl.build(run, 80))
    assert "Plan (dry run)" in text
    assert "  backup        planned  dry run: planned, not run" in text
    assert "  update        planned  would update v4.5.10 to v4.5.12" in text
