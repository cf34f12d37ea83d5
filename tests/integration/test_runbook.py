"""A host kept by the runbook until now: its cron's nightly dumps in /opt/trigger/backups
(some older than the rest, a foreign file beside them) are backups. status reports the
newest honestly, `backups` lists them as made outside trigger-maint, `backups --verify`
inspects them (good, truncated, not a dump) and records the result, and rotation keeps the
newest N of all dumps, the runbook's included, the newest and the foreign file always."""

import json

FOLDER = "/opt/trigger/backups"


def backup_check(doc: dict) -> dict:
    return next(c for c in doc["checks"] if c["name"] == "backup")


def test_the_runbook_backups_are_found_listed_judged_inspected_and_rotated(runbook_host, cli):
    host = runbook_host
    nightly = host.runbook_backups(nights=10, gap_after=7, gap_days=28)
    rows = host.row_counts()

    status = cli(host, "status", "--json")
    doc = json.loads(status.stdout)
    check = backup_check(doc)
    assert doc["backup_dir"] == FOLDER
    assert check["state"] == "warn", check  # present, not verified: never "none"
    assert check["data"]["count"] == 10 and check["data"]["newest"] == nightly[-1]
    assert "not inspected" in check["detail"] and " ago" in check["value"]

    listed = json.loads(cli(host, "backups", "--json").stdout)
    assert listed["dir"] == FOLDER and "runbook" in listed["reason"]
    assert [b["name"] for b in listed["backups"]] == nightly[::-1]
    assert {b["origin"] for b in listed["backups"]} == {"external"}
    assert listed["foreign"] == ["README.txt"]

    host.add_truncated_dump("trigger-db-20251001-0300.sql.gz")
    host.add_fake_dump("trigger-db-20251002-0300.sql.gz")
    verified = cli(host, "backups", "--verify", "--json")
    assert verified.returncode == 1, verified.stderr  # two dumps failed their inspection
    doc = json.loads(verified.stdout)
    by_name = {b["name"]: b for b in doc["backups"]}
    assert all(by_name[name]["recorded"] and not by_name[name]["problems"] for name in nightly)
    truncated = by_name["trigger-db-20251001-0300.sql.gz"]
    assert any("complete" in p for p in truncated["problems"]), truncated
    fake = by_name["trigger-db-20251002-0300.sql.gz"]
    assert any("has_database" in p or "complete" in p for p in fake["problems"]), fake
    sidecars = host.run(f"ls {FOLDER}/*.json").stdout.split()
    assert len(sidecars) == 12
    assert "failed their checks" in verified.stderr

    status = json.loads(cli(host, "status", "--json").stdout)
    assert backup_check(status)["state"] == "ok"  # the newest is inspected now

    assert cli(host, "backup").returncode == 0  # trigger-maint's own, in the same folder
    before = host.backup_files()
    done = cli(host, "cleanup", "--json")
    assert done.returncode == 0, done.stderr
    after = host.backup_files()
    dumps = sorted(n for n in after if n.startswith("trigger-db-") and ".sql." in n)
    assert len(dumps) == 7  # trigger.backups_keep: the newest seven, whoever made them
    own = [n for n in before if n.startswith("trigger-db-") and n.endswith(".sql.zst")]
    assert own and set(own) <= set(after)  # the newest is trigger-maint's own
    assert set(nightly[-6:]) <= set(after)
    assert "README.txt" in after  # a foreign file is never touched
    assert not any(n.startswith("trigger-db-2025100") for n in after)
    assert host.row_counts() == rows
