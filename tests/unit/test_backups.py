"""Backups: names, sidecars, listing, trust; the scripts' rendering and their shell helpers."""

import gzip
import hashlib
import json
import subprocess
from datetime import UTC, datetime

import pytest

from tests.unit.shell import assert_clean_bash
from trigger_maint import backups
from trigger_maint.config import settings
from trigger_maint.errors import ConfigError, OperationError, UnsafeError
from trigger_maint.layout import script_context
from trigger_maint.render import render
from trigger_maint.tasks import backup as task

# A sidecar as the rig's v4 host wrote it (trigger-maint backup --verify-restore --volumes).
SIDECAR = {
    "file": "trigger-db-20261201-050759.sql.gz", "started_at": "2026-12-01T05:07:59Z",
    "finished_at": "2026-12-01T05:08:41Z", "size": 12319,
    "sha256": "2f3a5e1b337a4f3651178c09d9a41bf63d81b88329a0aaca30c86b787cbe05fc",
    "postgres_version": "15.18 (Debian 15.18-0+deb12u1)", "trigger_version": "4.5.10",
    "layout": "v4",
    "images": {"electric": "sha256:0793ba9fee6e", "postgres": "sha256:60537cb11d5c",
               "redis": "sha256:85e795fa728c", "supervisor": "sha256:a5ff89f7346f",
               "webapp": "sha256:d46b84952e85"},
    "row_counts": {"Project": 3, "RuntimeEnvironment": 9, "TaskRun": 250, "User": 2,
                   "WorkerInstanceGroup": 0, "_prisma_migrations": 5},
    "migrations": 5, "verified": True,
    "checks": {"gzip_intact": True, "complete": True, "rows_match": True,
               "size_plausible": True, "restore_rows": True, "restore_migrations": True},
    "files_archive": "trigger-files-20261201-050759.tar.gz",
    "volumes": ["trigger-volume-20261201-050759-shared.tar.gz"],
}
DIR = "/var/backups/trigger"

# pg_dumpall 15.18 of a cluster with database "trigger" (user trigger), trimmed of repeated
# SET lines; the data rows keep COPY's escapes (a row holding "\." included).
DUMP = r'''--
-- PostgreSQL database cluster dump
--

\restrict 3OxnBoRybfBe9zMfH08FJY4pmzkMkW8nk1iAtJOM6b0T9E7uNO4w6BRWvSTFaxK

SET default_transaction_read_only = off;

--
-- Roles
--

CREATE ROLE trigger;
ALTER ROLE trigger WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
CREATE ROLE "Report ""ro""";

\unrestrict 3OxnBoRybfBe9zMfH08FJY4pmzkMkW8nk1iAtJOM6b0T9E7uNO4w6BRWvSTFaxK

--
-- Database "template1" dump
--

\connect template1

SET row_security = off;

--
-- PostgreSQL database dump complete
--

\connect postgres

CREATE TABLE public.notes (x integer);
COPY public.notes (x) FROM stdin;
1
\.

--
-- PostgreSQL database dump complete
--

CREATE DATABASE trigger WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE = 'C.UTF-8';
CREATE ROLE not_a_role_line_any_more;

\connect trigger

COPY other."Weird ""name""" (x) FROM stdin;
1
2
3
\.

COPY public."TaskRun" (id, payload, note) FROM stdin;
1	{"a": 1}	line1\nline2
2	{}	tab\there
3	{}	\\.
\.

COPY public."User" (id, email, "createdAt") FROM stdin;
u1	a@example.com	2026-12-01 05:04:09.069204+00
u2	b@example.com	2026-12-01 05:04:09.069204+00
\.

COPY public._prisma_migrations (id, checksum, finished_at, migration_name) FROM stdin;
1	abc	2026-12-01 05:04:09.071365+00	20240101_init
\.

COPY public."Empty" (id) FROM stdin;
\.

--
-- PostgreSQL database dump complete
--

--
-- PostgreSQL database cluster dump complete
--

'''
DUMP_ROWS = {"other.Weird \"name\"": 3, "TaskRun": 3, "User": 2, "_prisma_migrations": 1,
             "Empty": 0}


def context(**extra) -> dict:
    return {"names": backups.NAMES, "min_dump_bytes": backups.MIN_DUMP_BYTES,
            "max_shrink": backups.MAX_SHRINK, "dump_timeout": 3540,
            "trigger_version": "4.5.10", **extra}


# -- names, sidecars, listing ----------------------------------------------------------------

def test_names_share_the_stamp_and_sort_by_time():
    stamp = datetime(2026, 12, 1, 5, 7, 59, tzinfo=UTC).strftime(backups.STAMP_FORMAT)
    assert backups.name("dump", stamp) == "trigger-db-20261201-050759.sql.gz"
    assert backups.name("sidecar", stamp) == "trigger-db-20261201-050759.json"
    assert backups.name("files", stamp) == "trigger-files-20261201-050759.tar.gz"
    assert backups.name("volume", stamp, "shared") == \
        "trigger-volume-20261201-050759-shared.tar.gz"
    for text in ("20261201-050759", "trigger-db-20261201-050759.sql.gz",
                 "trigger-db-20261201-050759.json", f"{DIR}/trigger-db-20261201-050759.sql.gz"):
        assert backups.stamp_of(text) == "20261201-050759"
    for text in ("trigger-db-2026.sql.gz", "trigger-files-20261201-050759.tar.gz", "latest",
                 ".trigger-db-20261201-050759.sql.gz.partial"):
        assert backups.stamp_of(text) is None


def test_size_is_plausible_against_the_tables_on_disk():
    assert backups.size_plausible(7035, 57344)
    assert not backups.size_plausible(900, 0)  # smaller than an empty cluster's dump
    assert not backups.size_plausible(100_000, 100_000 * backups.MAX_SHRINK + 1)
    assert backups.size_plausible(100_000, 100_000 * backups.MAX_SHRINK)


def test_a_verified_sidecar_with_its_dump_on_disk_is_trusted():
    b = backups.from_sidecar(SIDECAR, DIR, 12319)
    assert b.trusted and b.restore_tested and b.problems == ()
    assert b.path == f"{DIR}/trigger-db-20261201-050759.sql.gz"
    assert b.stamp == "20261201-050759" and b.migrations == 5
    assert b.finished_at == datetime(2026, 12, 1, 5, 8, 41, tzinfo=UTC)
    assert b.volumes == ("trigger-volume-20261201-050759-shared.tar.gz",)
    assert backups.describe(b) == ("trigger-db-20261201-050759.sql.gz  2026-12-01 05:08:41 UTC,"
                                   " 12.3 kB, v4.5.10  verified, restore-tested")


@pytest.mark.parametrize("change, on_disk, problem", [
    ({}, None, "the dump file is missing"),
    ({}, 12000, "the dump is 12000 bytes, the sidecar says 12319"),
    ({"checks": {**SIDECAR["checks"], "restore_rows": False}, "verified": False}, 12319,
     "failed checks: restore_rows"),
    ({"checks": {"gzip_intact": True}}, 12319, "not checked: complete, rows_match, size_plausible"),
    ({"file": "../etc/passwd"}, 12319, "sidecar names no backup file ('../etc/passwd')"),
])
def test_a_sidecar_is_not_trusted_when_its_dump_or_checks_say_otherwise(change, on_disk, problem):
    b = backups.from_sidecar({**SIDECAR, **change}, DIR, on_disk)
    assert not b.trusted
    assert problem in b.problems
    assert "NOT TRUSTED: " in backups.describe(b)


def test_listing_sorts_newest_first_and_keeps_broken_sidecars_as_untrusted():
    older = {**SIDECAR, "file": "trigger-db-20261130-040000.sql.gz", "size": 100}
    sidecars = [
        {"sidecar": "trigger-db-20261130-040000.json", "text": json.dumps(older)},
        {"sidecar": "trigger-db-20261201-050759.json", "text": json.dumps(SIDECAR)},
        {"sidecar": "trigger-db-20261201-060000.json", "text": '{"file": "trigger-db-2026'},
        {"sidecar": "trigger-db-20261201-070000.json", "text": json.dumps(SIDECAR)},
        {"sidecar": "trigger-db-notes.json", "text": "{}"},
    ]
    sizes = {"trigger-db-20261130-040000.sql.gz": 100, "trigger-db-20261201-050759.sql.gz": 12319,
             "trigger-db-20261201-060000.sql.gz": 5, "trigger-db-20261202-000000.sql.gz": 9,
             "trigger-files-20261201-050759.tar.gz": 1611}
    found = backups.listing(sidecars, sizes, DIR)
    assert [b.stamp for b in found] == ["20261201-070000", "20261201-060000", "20261201-050759",
                                        "20261130-040000"]
    copied, broken, good, old = found
    assert "trigger-db-20261201-070000.json describes 'trigger-db-20261201-050759.sql.gz'" \
        in copied.problems
    assert broken.problems[0].startswith("unreadable sidecar")
    assert good.trusted and old.trusted
    assert backups.newest_trusted(found) is good
    assert backups.find(found, "trigger-db-20261130-040000.json") is old
    assert backups.find(found, "20250101-000000") is None
    assert backups.orphans(found, sizes) == ["trigger-db-20261202-000000.sql.gz"]
    assert backups.newest_trusted([copied, broken]) is None


def test_human_sizes():
    assert [backups.human_size(n) for n in (0, 999, 12319, 4_500_000, 1_234_000_000)] == \
        ["0 B", "999 B", "12.3 kB", "4.5 MB", "1.2 GB"]


# -- rendering ---------------------------------------------------------------------------------

def scripts(layout: str) -> list[str]:
    s = settings({"layout": layout, "backup_dir": "/srv/backups of 'trigger'"})
    ctx = script_context(s)
    return [
        render("backup", **ctx, **context(verify_restore=True, volumes=True)),
        render("backup", **ctx, **context(verify_restore=False, volumes=False)),
        render("backups", **ctx, names=backups.NAMES),
        render("restore", **ctx, **context(source="trigger-db-20261201-050759.sql.gz",
                                           sha256=SIDECAR["sha256"])),
    ]


def test_scripts_render_to_clean_bash_with_every_value_quoted():
    rendered = scripts("auto")
    for script in rendered:
        assert_clean_bash(script)
        assert "TM_BACKUP_DIR='/srv/backups of '\"'\"'trigger'\"'\"''" in script
    assert "tm_backup 1 1\n" in rendered[0] and "tm_backup 0 0\n" in rendered[1]
    assert "TM_SOURCE=trigger-db-20261201-050759.sql.gz\n" in rendered[3]
    assert "TM_VOLUMES=(shared)" in rendered[0]


def test_a_configured_layout_renders_only_its_own_settings():
    backup, *_, restore = scripts("runbook")
    for script in (backup, restore):
        assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
        assert "TM_DB_USER=trigger" in script and "TM_DB_USER=postgres" not in script
        assert "TM_VOLUMES=()" in script


# -- the scripts' shell helpers, run by bash -------------------------------------------------

def shell(body: str, tmp_path, stdin: str | None = None) -> str:
    """Run `body` after the backup helpers (rendered for the runbook layout)."""
    helpers = render("_backup", **script_context(settings({"layout": "runbook"})), **context())
    prelude = ("set -euo pipefail\nTM_LAYOUT=runbook TM_DB_USER=trigger TM_DB_NAME=trigger\n"
               "tm_str() { local s=$1; s=${s//\\\\/\\\\\\\\}; s=${s//\\\"/\\\\\\\"}; "
               "printf '\"%s\"' \"$s\"; }\n")
    done = subprocess.run(["bash", "-c", prelude + helpers + body], cwd=tmp_path, input=stdin,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def facts(text: str) -> dict:
    rows = {}
    for line in text.splitlines():
        kind, *rest = line.split("\t")
        if kind == "rows":
            rows[rest[0]] = int(rest[1])
        else:
            rows.setdefault(kind, []).append(rest[0])
    return rows


def test_the_dump_reader_counts_rows_of_the_layouts_database_and_finds_the_marker(tmp_path):
    (tmp_path / "dump.gz").write_bytes(gzip.compress(DUMP.encode()))
    found = facts(shell("tm_dump_facts dump.gz", tmp_path))
    assert found.pop("last") == ["-- PostgreSQL database cluster dump complete"]
    assert found.pop("bytes") == [str(len(DUMP.encode()))]
    assert sorted(found.pop("db")) == ["postgres", "template1", "trigger"]
    assert found == DUMP_ROWS  # public.notes of database postgres is not counted

    cut = DUMP[:DUMP.index("COPY public.\"User\"") + 60]
    (tmp_path / "cut.gz").write_bytes(gzip.compress(cut.encode()))
    assert facts(shell("tm_dump_facts cut.gz", tmp_path))["last"] != \
        ["-- PostgreSQL database cluster dump complete"]


def test_rows_check_wants_every_table_between_the_live_counts(tmp_path):
    (tmp_path / "low").write_text("postgres_version\t15.18\nrows\tTaskRun\t250\nrows\tUser\t2\n")
    (tmp_path / "high").write_text("rows\tTaskRun\t260\nrows\tUser\t2\nrows\tNew\t1\n")
    (tmp_path / "good").write_text("bytes\t9\nrows\tTaskRun\t255\nrows\tUser\t2\n")
    (tmp_path / "bad").write_text("rows\tTaskRun\t249\nrows\tGhost\t1\n")
    assert shell("tm_rows_check low high good", tmp_path) == ""
    problems = shell("tm_rows_check low high bad", tmp_path).rstrip("; ").split("; ")
    assert sorted(problems) == ["Ghost is not in the live database", "TaskRun has 249 rows, "
                                "the live table 250 to 260", "User is missing"]


def test_restore_stream_makes_only_the_roles_section_tolerate_existing_roles(tmp_path):
    (tmp_path / "dump.gz").write_bytes(gzip.compress(DUMP.encode()))
    out = shell("tm_restore_stream dump.gz", tmp_path)
    assert "DO $tm$ BEGIN CREATE ROLE trigger; EXCEPTION WHEN duplicate_object THEN NULL; " \
           "END $tm$;\n" in out
    assert "DO $tm$ BEGIN CREATE ROLE \"Report \"\"ro\"\"\"; EXCEPTION" in out
    assert "\nCREATE ROLE not_a_role_line_any_more;\n" in out  # after the first \connect
    assert out.replace("DO $tm$ BEGIN ", "").replace(
        "; EXCEPTION WHEN duplicate_object THEN NULL; END $tm$;", ";") == DUMP


def test_json_pairs_and_names(tmp_path):
    out = shell("printf 'a\\t1\\nb c\\ttrue\\n' | tm_json_pairs raw; echo; "
                "printf 'postgres\\tsha256:ab\\n' | tm_json_pairs str; echo; "
                "tm_name volume 20261201-050759 shared", tmp_path)
    raw, text, volume = out.splitlines()
    assert json.loads(raw) == {"a": 1, "b c": True}
    assert json.loads(text) == {"postgres": "sha256:ab"}
    assert volume == "trigger-volume-20261201-050759-shared.tar.gz"


# -- download ------------------------------------------------------------------------------------

class FakeRemoteFile:
    def __init__(self, data: bytes, requests: list):
        self.data, self.requests = data, requests

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def readv(self, chunks):
        self.requests.append(sum(size for _, size in chunks))
        assert all(size <= task.CHUNK for _, size in chunks)
        for offset, size in chunks:
            yield self.data[offset:offset + size]


class FakeSftp:
    def __init__(self, files: dict):
        self.files, self.requests = files, []

    def stat(self, path):
        return type("Stat", (), {"st_size": len(self.files[path])})()

    def open(self, path, mode):
        assert mode == "rb"
        return FakeRemoteFile(self.files[path], self.requests)


def test_fetch_streams_in_bounded_windows_and_checks_the_sha256(tmp_path):
    data = bytes(range(256)) * (task.WINDOW // 256 * 2 + 100)
    sftp = FakeSftp({"/b/dump": data})
    local = tmp_path / "dump"
    assert task.fetch(sftp, "/b/dump", local, hashlib.sha256(data).hexdigest())
    assert local.read_bytes() == data and local.stat().st_mode & 0o777 == 0o600
    assert max(sftp.requests) <= task.WINDOW and sum(sftp.requests) == len(data)
    assert not task.fetch(sftp, "/b/dump", local, hashlib.sha256(data).hexdigest())  # already there
    assert list(tmp_path.iterdir()) == [local]


def test_fetch_deletes_a_copy_with_the_wrong_sha256_and_never_replaces_a_file(tmp_path):
    sftp = FakeSftp({"/b/dump": b"abc", "/b/other": b"abcd"})
    with pytest.raises(OperationError, match="the copy was deleted"):
        task.fetch(sftp, "/b/dump", tmp_path / "dump", "0" * 64)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "other").write_bytes(b"xyz!")
    with pytest.raises(OperationError, match="already exists and differs"):
        task.fetch(sftp, "/b/other", tmp_path / "other")
    assert (tmp_path / "other").read_bytes() == b"xyz!"


# -- restore's decisions ---------------------------------------------------------------------

class FakeSession:
    """Answers the backups script with two backups; records the scripts that would run."""

    label = "host"
    json_output = False
    settings = settings({})

    def __init__(self, dry_run=False, untrusted=False):
        self.dry_run, self.results, self.ran = dry_run, {}, []
        older = {**SIDECAR, "file": "trigger-db-20261130-040000.sql.gz", "size": 100}
        newest = {**SIDECAR, "verified": False} if untrusted else SIDECAR
        self.listing = {"dir": DIR, "leftovers": [], "free_bytes": 10**9,
                        "sidecars": [{"sidecar": "trigger-db-20261130-040000.json",
                                      "text": json.dumps(older)},
                                     {"sidecar": "trigger-db-20261201-050759.json",
                                      "text": json.dumps(newest)}],
                        "files": {"trigger-db-20261130-040000.sql.gz": 100,
                                  "trigger-db-20261201-050759.sql.gz": 12319}}
        self.results["preflight"] = type("P", (), {"installation": type("I", (), {
            "version": None})()})()

    def run(self, template, changes=False, **context):
        self.ran.append((template, context.get("source")))
        if template == "backups":
            return self.listing
        if self.dry_run:
            return None
        return {"safety": {**SIDECAR, "file": "trigger-db-20261201-090000.sql.gz"},
                "left_aside": []}


def test_restore_needs_yes_and_picks_the_newest_trusted_backup():
    session = FakeSession()
    with pytest.raises(UnsafeError, match="add --yes"):
        task.run_restore(session)
    assert session.ran == [("backups", None)]
    done = task.run_restore(session, yes=True)
    assert done.restored.name == "trigger-db-20261201-050759.sql.gz"
    assert done.safety.name == "trigger-db-20261201-090000.sql.gz"
    assert session.ran[-1] == ("restore", "trigger-db-20261201-050759.sql.gz")


def test_restore_skips_untrusted_refuses_them_by_name_and_rejects_unknown_names():
    session = FakeSession(untrusted=True)
    assert task.run_restore(session, yes=True).restored.stamp == "20261130-040000"
    with pytest.raises(UnsafeError, match="refusing to restore trigger-db-20261201-050759"):
        task.run_restore(session, name="20261201-050759", yes=True)
    with pytest.raises(ConfigError, match="no backup '20200101-000000'"):
        task.run_restore(session, name="20200101-000000", yes=True)


def test_restore_dry_run_plans_without_yes_and_changes_nothing():
    session = FakeSession(dry_run=True)
    done = task.run_restore(session, name="trigger-db-20261130-040000.sql.gz")
    assert done.safety is None and done.restored.stamp == "20261130-040000"
    assert "restore" not in session.results
