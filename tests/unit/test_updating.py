"""update/rollback: target, pin edit (the real awk program), hazard gate, result parsing,
and the scripts (rendered, bash -n, shellcheck; their awk and JSON helpers run locally)."""

import os
import re
import shutil
import subprocess
from types import SimpleNamespace

import pytest

from tests.unit.shell import assert_clean_bash
from trigger_maint import backups
from trigger_maint.config import settings
from trigger_maint.errors import ConfigError, UnsafeError
from trigger_maint.hazards import HAZARDS
from trigger_maint.layout import PRESETS, candidates, script_context
from trigger_maint.render import render
from trigger_maint.updating import (
    PIN_AWK,
    check_direction,
    check_hazards,
    check_point,
    choose_target,
    default_point,
    hazards_for,
    pin_context,
    pin_for,
    rollback_points,
    rollback_result,
    target_tag,
    update_result,
)

AWKS = [a for a in ("mawk", "gawk", "busybox") if shutil.which(a)]

# A sidecar exactly as backup.sh wrote it on the rig.
SIDECAR = (
    '{"file":"trigger-db-20261201-050805.sql.gz","started_at":"2026-12-01T05:08:05Z",'
    '"finished_at":"2026-12-01T05:08:13Z","size":12329,"sha256":"d7e941d92543208e0fc7f529ee95'
    '1ce459aa96921e377f55ade890b67bb2e18d","postgres_version":"15.18 (Debian 15.18-0+deb12u1)",'
    '"trigger_version":"4.5.10","layout":"v4","images":{"webapp":"sha256:d46b84952e856bc3d11e'
    '17c307cae9f35bd559adebff008b96ead2c68d2b40af"},"row_counts":{"Project":3,"TaskRun":250,'
    '"User":2,"_prisma_migrations":5},"migrations":5,"verified":true,"checks":{"gzip_intact":'
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


WEBAPP = {"Image": "sha256:new", "Config": {
    "Image": "127.0.0.1:5000/triggerdotdev/trigger.dev:v4.5.12",
    "Env": ["BUILD_APP_VERSION=v4.5.12"]}}


def test_update_result_reads_the_script_result():
    raw = {"layout": "v4", "target": "v4.5.12", "backup": "trigger-db-20261201-050805.sql.gz",
           "migrations_before": 5, "images_before": {"webapp": "sha256:old"},
           "pin_changes": [{"file": ".env", "before": "TRIGGER_IMAGE_TAG=v4.5.10",
                            "after": "TRIGGER_IMAGE_TAG=v4.5.12"}],
           "downtime_seconds": 6.9, "images_after": {"webapp": "sha256:new"},
           "migrations_after": 6, "point": "20261201-050823", "changed": True,
           "webapp_container": WEBAPP, "webapp_image": {"RepoDigests": []},
           "core_package": "", "pinned_tag": "v4.5.12"}
    r = update_result(raw, "4.5.10")
    assert (r.changed, r.from_version, r.to_version, r.rolled_back, r.point) == (
        True, "4.5.10", "4.5.12", False, "20261201-050823")
    assert r.pin_changes[0].after == "TRIGGER_IMAGE_TAG=v4.5.12"
    assert (r.migrations_before, r.migrations_after, r.downtime_seconds) == (5, 6, 6.9)
    failed = update_result({"error": "update to v4.5.14 failed", "kind": "failed",
                            "rolled_back": True, "changed": False, "db_restored": True,
                            "unhealthy": ["webapp: unhealthy"], "migrations_after": None,
                            "point": "20261201-050823"}, "4.5.12")
    assert failed.rolled_back and failed.db_restored and not failed.changed
    assert failed.message == "update to v4.5.14 failed" and failed.migrations_after is None
    assert failed.to_version == "4.5.12"


def test_points_and_the_default_one():
    def item(stamp, state, version):
        return {"state": state, "missing_images": [], "point": {
            "stamp": stamp, "version": version, "target": "v4.5.12", "migrations": 5,
            "backup": "b", "images": {"webapp": {"id": "sha256:" + stamp}}}}

    result = {"in_progress": "", "points": [item("20261201-050000", "done", "4.5.10"),
                                            item("20261202-050000", "rolled-back", "4.5.11"),
                                            item("20261203-050000", "done", "4.5.12")]}
    points = rollback_points(result)
    assert [p.name for p in points] == ["20261203-050000", "20261202-050000", "20261201-050000"]
    assert default_point(points).name == "20261203-050000"
    assert points[0].images == {"webapp": "sha256:20261203-050000"}
    result["in_progress"] = "20261201-050000"
    assert default_point(rollback_points(result)).name == "20261201-050000"
    assert default_point(rollback_points({"points": [item("x", "rolled-back", None)]})) is None
    done = rollback_result({"point": "p", "db_restored": True, "migrations_before": 6,
                            "migrations_after": 5, "images_after": {"webapp": "sha256:a"},
                            "rollback_downtime_seconds": 12.5, "webapp_container": WEBAPP})
    assert (done.version, done.db_restored, done.downtime_seconds) == ("4.5.12", True, 12.5)


BACKUP_CONTEXT = {"names": backups.NAMES, "min_dump_bytes": backups.MIN_DUMP_BYTES,
                  "max_shrink": backups.MAX_SHRINK, "dump_timeout": 600,
                  "trigger_version": "4.5.10"}


def scripts(**tree) -> dict:
    s = settings(tree)
    context = {**script_context(s), **BACKUP_CONTEXT}
    return {
        "update": render("update", **context, force=True, from_version="4.5.10",
                         **pin_context(candidates(s), "v4.5.12")),
        "update-current": render("update", **context, force=False, from_version="",
                                 **pin_context(candidates(s), None)),
        "rollback": render("rollback", **context, point="20261201-050823", yes=False),
        "rollback-points": render("rollback-points", **script_context(s)),
    }


@pytest.mark.parametrize("tree", [{}, {"layout": "runbook", "path": "/srv/it's $(here)",
                                                    "backup_dir": "/b/`x`"}])
def test_scripts_render_and_pass_shellcheck(tree):
    rendered = scripts(**tree)
    for name, script in rendered.items():
        assert script.startswith("#!/bin/bash\nset -euo pipefail\n"), name
        assert_clean_bash(script)
    if "path" in tree:
        assert "TM_PATH='/srv/it'\"'\"'s $(here)'" in rendered["update"]
        assert "TM_RB='/b/`x`/rollback'" in rendered["rollback-points"]


def _function(script: str, name: str) -> str:
    return re.search(rf"^{name}\(\) {{.*?^}}$", script, re.S | re.M).group(0)


def test_json_field_reads_sidecars_and_points(tmp_path):
    script = scripts()["update"]
    (tmp_path / "sidecar.json").write_text(SIDECAR + "\n")
    shell = _function(script, "tm_json_field") + "\n" + "\n".join(
        f'printf "%s|" "$(tm_json_field {tmp_path}/sidecar.json {key})"'
        for key in ("verified", "file", "finished_at", "migrations", "size", "missing"))
    out = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, check=True)
    assert out.stdout == ("true|trigger-db-20261201-050805.sql.gz|2026-12-01T05:08:13Z|5|"
                          "12329||")


@pytest.mark.parametrize("awk", AWKS)
def test_database_section_of_a_dumpall(tmp_path, awk):
    script = scripts()["update"]
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
