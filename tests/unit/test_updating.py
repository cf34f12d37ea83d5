"""update/rollback: target, pin edit (the real awk program), hazard gate, the results read
from a change's journal, rollback points, and the runner (rendered, bash -n, shellcheck; its
awk and JSON helpers run locally)."""

import json
import os
import re
import shutil
import subprocess
import time
from types import SimpleNamespace

import pytest

from tests.unit.shell import assert_clean_bash
from trigger_maint import points, transactions
from trigger_maint.errors import ConfigError, UnsafeError
from trigger_maint.hazards import HAZARDS
from trigger_maint.layout import PRESETS
from trigger_maint.outcomes import (
    already,
    describe_restore,
    describe_rollback,
    describe_update,
    restore_result,
    rollback_result,
    update_result,
)
from trigger_maint.transactions import describe as describe_plan
from trigger_maint.updating import (
    PIN_AWK,
    check_direction,
    check_hazards,
    check_point,
    choose_target,
    hazards_for,
    pin_args,
    pin_for,
    target_tag,
)

from .builders import plans, runner, webapp

AWKS = [a for a in ("mawk", "gawk", "busybox") if shutil.which(a)]

# A guard dump's sidecar exactly as the runner wrote it on the rig.
SIDECAR = (
    '{"file":"trigger-db-20261201-050805.sql.gz","origin":"trigger-maint","purpose":"guard",'
    '"compression":"gzip","started_at":"2026-12-01T05:08:05Z",'
    '"finished_at":"2026-12-01T05:08:13Z","size":12329,"sha256":"d7e941d92543208e0fc7f529ee95'
    '1ce459aa96921e377f55ade890b67bb2e18d","postgres_version":"15.18 (Debian 15.18-0+deb12u1)",'
    '"trigger_version":"4.5.10","layout":"v4","images":{"webapp":"sha256:d46b84952e856bc3d11e'
    '17c307cae9f35bd559adebff008b96ead2c68d2b40af"},"row_counts":{"Project":3,"TaskRun":250,'
    '"User":2,"_prisma_migrations":5},"migrations":5,"verified":true,"checks":{"intact":'
    'true,"complete":true,"rows_match":true,"size_plausible":true},"files_archive":'
    '"trigger-files-20261201-050805.tar.gz","volumes":[]}')

# The shape of a pg_dumpall (PostgreSQL 15.18) around the databases, shortened.
DUMPALL = """--
-- PostgreSQL database cluster dump
--

\\restrict aaa

SET default_transaction_read_only = off;
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;

\\unrestrict aaa

--
-- Databases
--

--
-- Database "template1" dump
--

\\connect template1

\\restrict bbb
SET statement_timeout = 0;
-- PostgreSQL database dump complete
\\unrestrict bbb

--
-- Database "main" dump
--

\\restrict ccc
CREATE DATABASE main WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE = 'C.UTF-8';


ALTER DATABASE main OWNER TO postgres;

\\unrestrict ccc
\\connect main
\\restrict ccc
SET statement_timeout = 0;
ALTER DATABASE main SET search_path TO public;
CREATE TABLE public."User" (id text NOT NULL);
COPY public."User" (id) FROM stdin;
user_1
\\.

-- PostgreSQL database dump complete

\\unrestrict ccc

--
-- Database "postgres" dump
--

\\connect postgres

\\restrict ddd
SET statement_timeout = 0;
CREATE TABLE public.other (id int);
\\unrestrict ddd

--
-- PostgreSQL database cluster dump complete
--
"""


def run_pin(tmp_path, awk, text: bytes, layout="v4", tag="v4.5.12"):
    pin = pin_for(PRESETS[layout])
    path = tmp_path / "file"
    path.write_bytes(text)
    env = {**os.environ, "TM_PIN_MODE": pin.mode, "TM_PIN_RE": pin.line_regex,
           "TM_PIN_TAG": tag, "TM_PIN_VARIABLE": pin.variable,
           "TM_PIN_FINAL_NL": "1" if text.endswith(b"\n") else "0"}
    argv = [awk, PIN_AWK, str(path)] if awk != "busybox" else ["busybox", "awk", PIN_AWK,
                                                              str(path)]
    return subprocess.run(argv, env=env, capture_output=True)


@pytest.mark.parametrize("awk", AWKS)
@pytest.mark.parametrize("before, after", [
    # only the value changes; comments, quotes, CRLF and the rest stay byte for byte
    (b"# v4\nTRIGGER_IMAGE_TAG=v4.5.10\nWEBAPP_PUBLISH_IP=10.0.0.1\n",
     b"# v4\nTRIGGER_IMAGE_TAG=v4.5.12\nWEBAPP_PUBLISH_IP=10.0.0.1\n"),
    (b"A=1\r\nTRIGGER_IMAGE_TAG=v4\r\nB=2\r\n", b"A=1\r\nTRIGGER_IMAGE_TAG=v4.5.12\r\nB=2\r\n"),
    (b'export TRIGGER_IMAGE_TAG="v4.5.10"  # pinned\n',
     b'export TRIGGER_IMAGE_TAG="v4.5.12"  # pinned\n'),
    (b"TRIGGER_IMAGE_TAG = 'latest'\nX=y", b"TRIGGER_IMAGE_TAG = 'v4.5.12'\nX=y"),
    (b"# TRIGGER_IMAGE_TAG=v3\nOTHER_TRIGGER_IMAGE_TAG=x\n",
     b"# TRIGGER_IMAGE_TAG=v3\nOTHER_TRIGGER_IMAGE_TAG=x\nTRIGGER_IMAGE_TAG=v4.5.12\n"),
    (b"A=1", b"A=1\nTRIGGER_IMAGE_TAG=v4.5.12\n"),
    (b"", b"TRIGGER_IMAGE_TAG=v4.5.12\n"),
])
def test_dotenv_pin_changes_only_the_value(tmp_path, awk, before, after):
    done = run_pin(tmp_path, awk, before)
    assert done.returncode == 0, done.stderr
    assert done.stdout == after


RUNBOOK = b"""services:
  webapp:
    container_name: trigger-webapp
    image: 127.0.0.1:5000/triggerdotdev/trigger.dev:v4.5.10
  worker:
    image: "ghcr.io/triggerdotdev/supervisor:v4.5.10@sha256:abc"   # same tag
  electric:
    image: electricsql/electric:1.2.4
  postgres:
    image: postgres:14
"""


@pytest.mark.parametrize("awk", AWKS)
def test_image_pin_retags_trigger_images_only(tmp_path, awk):
    done = run_pin(tmp_path, awk, RUNBOOK, layout="runbook")
    assert done.returncode == 0, done.stderr
    assert done.stdout == RUNBOOK.replace(
        b"trigger.dev:v4.5.10", b"trigger.dev:v4.5.12").replace(
        b"supervisor:v4.5.10@sha256:abc", b"supervisor:v4.5.12")


@pytest.mark.parametrize("awk", AWKS)
def test_image_pin_refuses_files_it_cannot_pin(tmp_path, awk):
    assert run_pin(tmp_path, awk, b"services:\n  a:\n    image: redis:7\n",
                   layout="runbook").returncode == 3
    assert run_pin(tmp_path, awk, b'TRIGGER_IMAGE_TAG="v4.5.10\n').returncode == 4


def test_pin_regexes_select_the_pin_lines():
    dotenv = re.compile(pin_for(PRESETS["v4"]).line_regex)
    assert dotenv.search("TRIGGER_IMAGE_TAG=v4") and dotenv.search("  export TRIGGER_IMAGE_TAG =")
    assert not dotenv.search("#TRIGGER_IMAGE_TAG=v4")
    assert not dotenv.search("X_TRIGGER_IMAGE_TAG=v4")
    image = re.compile(pin_for(PRESETS["runbook"]).line_regex)
    for line in ("    image: ghcr.io/triggerdotdev/trigger.dev:v4.5.10",
                 "  image: 127.0.0.1:5000/triggerdotdev/provider/docker:v3 # x",
                 "  image: 'triggerdotdev/coordinator'"):
        assert image.search(line), line
    for line in ("  image: ghcr.io/triggerdotdev/trigger.dev-foo:v1",
                 "  image: electricsql/electric:1.2.4", "  # image: triggerdotdev/supervisor:v4"):
        assert not image.search(line), line
    assert pin_for(PRESETS["runbook"]).files == ("docker-compose.yml",)
    assert pin_for(PRESETS["v3"]).files == (".env",)


def test_the_pin_steps_arguments():
    assert pin_args(PRESETS["v4"], "v4.5.12") == (
        "dotenv", pin_for(PRESETS["v4"]).line_regex, "triggerdotdev/trigger.dev:v4.5.12",
        "v4.5.12", "TRIGGER_IMAGE_TAG", ".env")
    assert pin_args(PRESETS["runbook"], "v4.5.12")[5:] == ("docker-compose.yml",)


def test_target_tag_and_choice():
    assert target_tag("4.5.12") == target_tag("v4.5.12") == "v4.5.12"
    assert target_tag("v4") == "v4" and target_tag("4.6.0-rc.1") == "v4.6.0-rc.1"
    for bad in ("v4;rm -rf /", "", "-x", "a" * 200):
        with pytest.raises(ConfigError):
            target_tag(bad)
    research = SimpleNamespace(target="4.5.12", target_tag="v4.5.12", hazards=[])
    assert choose_target(None, research) == "v4.5.12"
    assert choose_target("4.5.11", research) == "v4.5.11"
    assert choose_target(None, SimpleNamespace(target=None, target_tag="")) is None
    assert choose_target(None, None) is None


def test_hazards_must_be_acknowledged():
    found = hazards_for("4.5.5", "v4.5.12", None)
    assert [h.id for h in found] == ["default-secrets", "clickhouse-image"]
    with pytest.raises(UnsafeError, match="acknowledge with --ack secrets --ack clickhouse-image"):
        check_hazards(found, [])
    with pytest.raises(UnsafeError, match=r"secrets: .*\(acknowledge with --ack secrets\)$"):
        check_hazards(found, ["clickhouse-image"])
    check_hazards(found, ["secrets", "clickhouse-image"])
    check_hazards(found, ["default-secrets", "clickhouse-image"])  # the id works too
    assert hazards_for("4.5.10", "v4.5.12", None) == []
    assert hazards_for("4.5.10", "v4", None) == []  # a floating tag names no version
    research = SimpleNamespace(target_tag="v4.5.12", hazards=[HAZARDS[0]])
    assert hazards_for("4.5.10", "v4.5.12", research) == [HAZARDS[0]]
    assert hazards_for("4.5.5", "v4.5.11", research)[0].id == "default-secrets"


def test_direction_and_point_names():
    with pytest.raises(UnsafeError, match="use `rollback`"):
        check_direction("4.5.12", "v4.5.10")
    check_direction("4.5.10", "v4.5.12")
    check_direction(None, "v4.5.10")
    check_direction("4.5.12", "v4")
    check_direction("4.5.12", None)
    assert check_point(None) == "" and check_point("20261201-050823-2") == "20261201-050823-2"
    with pytest.raises(ConfigError):
        check_point("../etc")


# ---- what a change did, read from its journal ----------------------------------------------

def journal(kind, outcome, *facts, steps=("pin", "pull", "recreate"), error="", step=""):
    """A journal of `kind` that ended with `outcome`: forward `steps`, then `facts`."""
    tx = f"20261201-050823-{kind}"
    events = [{"ev": "begin", "tx": tx, "kind": kind}]
    if kind == "update":  # the runner records the target first
        events.append({"ev": "fact", "key": "target", "value": "v4.5.12"})
    for n, name in enumerate(steps, 1):
        events.append({"ev": "step", "dir": "forward", "n": n, "step": name, "status": "start"})
        events.append({"ev": "step", "dir": "forward", "n": n, "step": name,
                       "status": "failed" if name == step else "done"})
    events += [{"ev": "fact", "key": k, "value": v} for k, v in facts]
    events.append({"ev": "end", "tx": tx, "outcome": outcome, "step": step, "error": error})
    return transactions.journal(json.dumps({"t": 1764565703 + n, **e})
                                for n, e in enumerate(events))


def running(version):
    return ("webapp_container", webapp(tag=f"v{version}"))


def test_update_result_reads_the_journal():
    j = journal("update", "done", ("changed", True), ("point", "20261201-050823"),
                ("migrations_before", 5), ("images_before", {"webapp": "sha256:old"}),
                ("pin_changes", [{"file": ".env", "before": "TRIGGER_IMAGE_TAG=v4.5.10",
                                  "after": "TRIGGER_IMAGE_TAG=v4.5.12"}]),
                ("downtime_seconds", 6.9), ("images_after", {"webapp": "sha256:new"}),
                ("migrations_now", 6), ("guard", SIDECAR), running("4.5.12"))
    r = update_result(j, "4.5.10", "v4.5.12", "trigger-db-20261201-050805.sql.gz")
    assert (r.changed, r.from_version, r.to_version, r.rolled_back, r.point) == (
        True, "4.5.10", "4.5.12", False, "20261201-050823")
    assert (r.exit_code, r.outcome, r.message) == (0, "done",
                                                   "update to v4.5.12 done: v4.5.12 runs")
    assert r.pin_changes[0].after == "TRIGGER_IMAGE_TAG=v4.5.12"
    assert (r.migrations_before, r.migrations_after, r.downtime_seconds) == (5, 6, 6.9)
    assert r.guard.name == "trigger-db-20261201-050805.sql.gz" and r.guard.sha256.startswith("d7e9")
    assert r.images == {"webapp": "sha256:new"} and r.images_before == {"webapp": "sha256:old"}
    text = describe_update(r)
    assert text.splitlines()[0] == "updated     v4.5.10 -> v4.5.12"
    assert "pinned      .env: TRIGGER_IMAGE_TAG=v4.5.12" in text
    assert "migrations  5 -> 6" in text and "rollback    point 20261201-050823" in text


def test_a_failed_update_says_what_runs_now_and_what_was_restored():
    j = journal("update", "rolled-back", ("changed", True), ("db_restored", True),
                ("restored_from", "trigger-db-20261201-050805.sql.gz"),
                ("safety", "trigger-db-20261201-051500.sql.gz"), ("migrations_now", 5),
                ("health_failure", "webapp: unhealthy"),
                ("logs", {"webapp": ["Error: P1001", "Error: P1001", "exit 1"]}),
                running("4.5.10"), steps=("pin", "recreate", "wait_healthy"),
                step="wait_healthy", error="update to v4.5.14 failed: webapp: unhealthy")
    failed = update_result(j, "4.5.10", "v4.5.14", "b")
    assert failed.rolled_back and failed.db_restored and not failed.changed
    assert failed.exit_code == 5 and failed.to_version == "4.5.10"
    assert failed.message == (
        "update to v4.5.12 failed at wait_healthy: update to v4.5.14 failed: webapp: unhealthy; "
        "rolled back: v4.5.10 runs; the database was restored from "
        "trigger-db-20261201-050805.sql.gz (the replaced one is saved as "
        "trigger-db-20261201-051500.sql.gz)")
    assert failed.logs == {"webapp": ["Error: P1001 (x2)", "exit 1"]}
    assert describe_update(failed).splitlines()[1:] == [
        "last log lines of webapp:", "  Error: P1001 (x2)", "  exit 1"]


@pytest.mark.parametrize("outcome, steps, facts, says", [
    ("rolled-back", ("pin", "pull"), (("changed", True),),
     "nothing was stopped; what had changed was put back: v4.5.10 runs"),
    ("failed", ("pin", "recreate"), (("changed", True),),
     "the host may be half-changed: v4.5.10 runs"),
    ("refused", ("recheck",), (), "nothing was changed: v4.5.10 runs"),
])
def test_how_a_change_ended_is_one_line(outcome, steps, facts, says):
    j = journal("update", outcome, *facts, running("4.5.10"), steps=steps, step=steps[-1],
                error="boom")
    result = update_result(j, "4.5.10", "v4.5.12", "")
    assert result.message == f"update to v4.5.12 failed at {steps[-1]}: boom; {says}"
    assert result.exit_code == {"rolled-back": 5, "failed": 5, "refused": 4}[outcome]


def test_an_update_to_what_runs_already_changes_nothing():
    done = already("4.5.12", "v4.5.12")
    assert (done.outcome, done.exit_code, done.changed) == ("unchanged", 0, False)
    assert describe_update(done) == "nothing to change: v4.5.12 runs already"


def test_rollback_and_restore_results():
    done = rollback_result(journal("rollback", "done", ("point", "20261201-040020"),
                                   ("db_restored", True),
                                   ("restored_from", "trigger-db-g.sql.gz"),
                                   ("safety", "trigger-db-s.sql.gz"), ("migrations_before", 6),
                                   ("migrations_now", 5), ("images_after", {"webapp": "sha:a"}),
                                   ("downtime_seconds", 12.5), running("4.5.10")), "p")
    assert (done.version, done.db_restored, done.downtime_seconds, done.point) == (
        "4.5.10", True, 12.5, "p")
    assert describe_rollback(done).splitlines() == [
        "rollback to 20261201-040020 done: v4.5.10 runs",
        "downtime    12.5 s (webapp not answering 200)",
        "database    restored from trigger-db-g.sql.gz (6 -> 5 migrations)",
        "safety      trigger-db-s.sql.gz (the database as it was before)"]
    kept = rollback_result(journal("rollback", "failed", ("changed", True),
                                   ("db_restored", True), ("restored_from", "g"),
                                   ("aside_kept", "main_tm_failed_x"), running("4.5.12"),
                                   steps=("restore_db", "recreate"), step="recreate",
                                   error="x"), "p")
    assert kept.message.endswith("(the replaced one could not be saved: it is kept as database "
                                 "main_tm_failed_x; save it, then drop it by hand)")
    assert "kept aside  database main_tm_failed_x" in describe_rollback(kept)
    restored = restore_result(journal("restore", "done", ("safety", "trigger-db-s.sql.gz"),
                                      running("4.5.10"), steps=("restore_cluster",)),
                              "trigger-db-b.sql.gz")
    assert describe_restore(restored).splitlines() == [
        "restore done: v4.5.10 runs", "restored    trigger-db-b.sql.gz",
        "safety      trigger-db-s.sql.gz (the database as it was before)"]
    back = restore_result(journal("restore", "rolled-back", ("changed", True),
                                  ("put_back", True), ("left_aside", ["main_tm_aside"]),
                                  running("4.5.10"), steps=("restore_cluster",),
                                  step="restore_cluster", error="psql failed"), "b")
    assert back.message.endswith("; the previous databases were put back")
    assert "left aside  main_tm_aside" in describe_restore(back)


# ---- rollback points -------------------------------------------------------------------------

def point_item(name, state, version, guard="trigger-db-g.sql.gz", present=True):
    return {"name": name, "state": state + "\n", "guard": json.dumps({"file": guard,
                                                                      "sha256": "ab" * 32}),
            "point": json.dumps({"stamp": name, "tx": f"{name}-update", "version": version,
                                 "target": "v4.5.12", "migrations": 5}),
            "images": [{"service": "webapp", "id": "sha256:" + name, "present": present}]}


def test_points_and_the_default_one():
    found = points.parse([point_item("20261201-050000", "done", "4.5.10"),
                          point_item("20261202-050000", "rolled-back", "4.5.11"),
                          point_item("20261203-050000", "done", "4.5.12", present=False),
                          point_item("../etc", "done", "4.5.12"), "junk"])
    assert [p.name for p in found] == ["20261203-050000", "20261202-050000", "20261201-050000"]
    newest = found[0]
    assert points.default_point(found) is newest
    assert (newest.version, newest.migrations, newest.guard, newest.tx) == (
        "4.5.12", 5, "trigger-db-g.sql.gz", "20261203-050000-update")
    assert newest.missing_images == ["webapp"]
    assert newest.tags == ["trigger-maint/rollback:20261203-050000-webapp"]
    assert points.default_point(points.parse([point_item("x", "rolled-back", None)])) is None
    assert points.choose(found, "20261202-050000").point is found[1]
    assert points.choose(found, "20200101-000000").problem == "no rollback point 20200101-000000"
    assert "no rollback point of a completed update" in points.choose([]).problem


def test_a_new_point_never_takes_a_name_in_use():
    from datetime import UTC, datetime

    found = points.parse([point_item("20261201-050000", "done", "4.5.10"),
                          point_item("20261201-050000-2", "done", "4.5.10")])
    assert points.free_name(found, datetime(2026, 12, 1, 5, 0, tzinfo=UTC)) == \
        "20261201-050000-3"


# ---- the runner --------------------------------------------------------------------------------

HOSTILE = {"path": "/srv/it's $(here)", "backup_dir": "/b/`x`"}


def runners(where: dict) -> dict[str, str]:
    found = plans(where.get("backup_dir", "/var/backups/trigger"))
    return {kind: runner(plan, "runbook" if where else "v4", **where)
            for kind, plan in found.items()}


@pytest.mark.parametrize("where", [{}, HOSTILE])
def test_the_runners_render_and_pass_shellcheck(where):
    for name, script in runners(where).items():
        assert script.startswith("#!/bin/bash\nset -euo pipefail\n"), name
        assert_clean_bash(script)


def test_the_runners_take_hostile_paths_as_data():
    rendered = runners(HOSTILE)
    assert "TM_PATH='/srv/it'\"'\"'s $(here)'" in rendered["update"]
    assert "TM_RB='/b/`x`/rollback'" in rendered["rollback"]
    assert "TM_TXROOT='/b/`x`/transactions'" in rendered["restore"]


def test_the_runner_carries_out_the_plan_and_its_way_back():
    plan = plans()["update"]
    script = runner(plan)
    forward = [line.strip() for line in script.splitlines() if line.startswith("  tm_do ")]
    back = [line.strip() for line in script.splitlines() if line.startswith("  tm_undo ")]
    assert forward[2].startswith("tm_do 3 pin 1 120 dotenv ")  # n, step, change, budget
    assert forward[2].endswith(" triggerdotdev/trigger.dev:v4.5.12 v4.5.12 TRIGGER_IMAGE_TAG "
                               ".env")
    assert [line.split()[1:4] for line in back] == [[str(u.after), u.name, str(u.budget)]
                                                    for u in plan.back]
    assert [line.split()[4] for line in forward] == [str(s.budget) for s in plan.forward]
    assert describe_plan(plan).splitlines()[3] == (
        "   3. pin v4.5.12 in .env  <- first change")


def _function(script: str, name: str) -> str:
    return re.search(rf"^{name}\(\) {{.*?^}}$", script, re.S | re.M).group(0)


def _gone(pid: int) -> bool:
    """The process has ended (gone, or a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_step_past_its_budget_is_stopped_with_everything_it_started(tmp_path):
    script = runner(plans()["update"])
    defs = "\n".join(re.findall(rf"^{name}\(\) {{.*?^}}$", script, re.S | re.M)[-1]
                     for name in ("tm_fail", "tm_cleanup", "tm_on_exit", "tm_try_within"))
    shell = f"""set -euo pipefail
TM_TXDIR={tmp_path} TM_HEART="" TM_WATCHER=""
{defs}
tm_step_slow() {{
  tm_cleanup touch {tmp_path}/cleaned; sleep 60 & echo $! >{tmp_path}/child; sleep 60
}}
tm_step_quick() {{ echo quick; }}
tm_try_within 1 tm_step_slow; echo "slow $TM_TRY_RC"
tm_try_within 30 tm_step_quick; echo "quick $TM_TRY_RC"
"""
    out = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=40)
    assert out.stdout.splitlines() == ["slow 143", "quick", "quick 0"], out.stderr
    assert (tmp_path / "step.err").read_text() == "stopped after its budget of 1 s"
    assert (tmp_path / "cleaned").exists()  # the step's cleanups ran
    child = int((tmp_path / "child").read_text())
    for _ in range(50):  # its background child went with it
        if _gone(child):
            break
        time.sleep(0.1)
    assert _gone(child)


def test_json_field_reads_sidecars_and_points(tmp_path):
    script = runner(plans()["update"])
    (tmp_path / "sidecar.json").write_text(SIDECAR + "\n")
    shell = _function(script, "tm_json_field") + "\n" + "\n".join(
        f'printf "%s|" "$(tm_json_field {tmp_path}/sidecar.json {key})"'
        for key in ("verified", "file", "finished_at", "migrations", "size", "missing"))
    out = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, check=True)
    assert out.stdout == ("true|trigger-db-20261201-050805.sql.gz|2026-12-01T05:08:13Z|5|"
                          "12329||")


@pytest.mark.parametrize("awk", AWKS)
def test_database_section_of_a_dumpall(tmp_path, awk):
    script = runner(plans()["rollback"])
    program = re.search(r"TM_SECTION_AWK=\$\(cat <<'AWK'\n(.*?)\nAWK\n", script, re.S).group(1)
    (tmp_path / "dump.sql").write_text(DUMPALL)
    argv = ["busybox", "awk"] if awk == "busybox" else [awk]

    def section(want):
        return subprocess.run([*argv, "-v", f"want={want}", "-v", f"fresh={want}_tm_restore",
                               program, str(tmp_path / "dump.sql")],
                              capture_output=True, text=True)

    main = section("main")
    assert main.returncode == 0
    assert main.stdout.splitlines()[:11] == [
        "CREATE DATABASE \"main_tm_restore\" WITH TEMPLATE = template0 ENCODING = 'UTF8' "
        "LOCALE = 'C.UTF-8';",
        "\\connect main_tm_restore",
        "SET statement_timeout = 0;",
        'ALTER DATABASE "main_tm_restore" SET search_path TO public;',
        'CREATE TABLE public."User" (id text NOT NULL);',
        'COPY public."User" (id) FROM stdin;', "user_1", "\\.", "",
        "-- PostgreSQL database dump complete", ""]
    postgres = section("postgres")
    assert postgres.stdout.splitlines()[:2] == [
        'CREATE DATABASE "postgres_tm_restore" TEMPLATE template0;',
        "\\connect postgres_tm_restore"]
    assert "CREATE TABLE public.other (id int);" in postgres.stdout
    assert "CREATE ROLE" not in postgres.stdout + main.stdout
    assert "other" not in main.stdout and "User" not in postgres.stdout
    assert section("trigger").returncode == 3
