"""Backups: names, sidecars, listing, trust; the scripts' rendering and the dump library's
shell helpers (templates/_dump.sh.j2, run by bash); download; restore's decisions."""

import gzip
import hashlib
import json
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.shell import assert_clean_bash
from trigger_maint import backups, hostpaths, transactions, units
from trigger_maint.backups import FileEntry, Folder
from trigger_maint.config import settings
from trigger_maint.confirm import Confirm
from trigger_maint.errors import ConfigError, OperationError, UnsafeError
from trigger_maint.outcomes import Planned
from trigger_maint.render import render
from trigger_maint.scripts.backups import (
    BACKUP,
    INSPECT,
    LIST,
    BackupInputs,
    InspectInputs,
    Inspection,
    compression_for,
    dump_inputs,
    made_backup,
)
from trigger_maint.scripts.base import install_inputs, new_marker
from trigger_maint.scripts.changes import TRANSACTION, ChangeFacts, Followed
from trigger_maint.tasks import backup as task
from trigger_maint.transactions import TxSummary

from .builders import dump, plans, preflight, runner

# A sidecar as the rig's v4 host wrote it (trigger-maint backup --verify-restore --volumes).
SIDECAR = {
    "file": "trigger-db-20261201-050759.sql.gz", "origin": "trigger-maint", "purpose": "backup",
    "compression": "gzip", "started_at": "2026-12-01T05:07:59Z",
    "finished_at": "2026-12-01T05:08:41Z", "size": 12319,
    "sha256": "2f3a5e1b337a4f3651178c09d9a41bf63d81b88329a0aaca30c86b787cbe05fc",
    "postgres_version": "15.18 (Debian 15.18-0+deb12u1)", "trigger_version": "4.5.10",
    "layout": "v4",
    "images": {"electric": "sha256:0793ba9fee6e", "postgres": "sha256:60537cb11d5c",
               "redis": "sha256:85e795fa728c", "supervisor": "sha256:a5ff89f7346f",
               "webapp": "sha256:d46b84952e85"},
    "databases": ["main", "postgres", "template1"],
    "row_counts": {"Project": 3, "RuntimeEnvironment": 9, "TaskRun": 250, "User": 2,
                   "WorkerInstanceGroup": 0, "_prisma_migrations": 5},
    "migrations": 5, "verified": True,
    "checks": {"intact": True, "complete": True, "rows_match": True,
               "size_plausible": True, "restore_rows": True, "restore_migrations": True},
    "files_archive": "trigger-files-20261201-050759.tar.gz",
    "volumes": ["trigger-volume-20261201-050759-shared.tar.gz"],
}
DIR = "/var/backups/trigger"
MTIME = datetime(2026, 12, 1, 5, 8, 41, tzinfo=UTC)
NOW = MTIME + timedelta(hours=1)

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


def entry(name: str, size: int, mtime: datetime = MTIME) -> FileEntry:
    return FileEntry(name, size, mtime)


def record(sidecar: dict, size: int | None = None):
    """The Backup of SIDECAR's dump, its dump `size` bytes on disk."""
    return backups.from_record(entry(sidecar["file"], sidecar["size"] if size is None
                                     else size), DIR, json.dumps(sidecar))


# -- names, sidecars, listing ----------------------------------------------------------------

def test_names_share_the_stamp_and_sort_by_time():
    stamp = datetime(2026, 12, 1, 5, 7, 59, tzinfo=UTC).strftime(hostpaths.STAMP_FORMAT)
    assert hostpaths.dump_name(stamp) == "trigger-db-20261201-050759.sql.gz"
    assert hostpaths.dump_name(stamp, "zstd") == "trigger-db-20261201-050759.sql.zst"
    assert hostpaths.sidecar_name(stamp) == "trigger-db-20261201-050759.json"
    assert hostpaths.name("files", stamp) == "trigger-files-20261201-050759.tar.gz"
    assert hostpaths.name("volume", stamp, volume="shared") == \
        "trigger-volume-20261201-050759-shared.tar.gz"
    for text in ("trigger-db-20261201-050759.sql.gz", "trigger-db-20261201-050759.sql.zst",
                 "trigger-db-20261201-050759.json", "trigger-files-20261201-050759.tar.gz",
                 "trigger-volume-20261201-050759-shared.tar.gz"):
        assert hostpaths.stamp_of(text) == "20261201-050759", text
    # the runbook's cron names its dumps to the minute
    assert hostpaths.stamp_of("trigger-db-20261130-0300.sql.gz") == "20261130-0300"
    for text in ("trigger-db-2026.sql.gz", "latest", "20261201-050759",
                 ".trigger-db-20261201-050759.sql.gz.partial", "trigger-db-manual.sql.gz",
                 "trigger-db-20261201-050759.sql.gz.bak"):
        assert hostpaths.stamp_of(text) is None, text
    assert backups.stamp_time("20261130-0300") == datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def test_a_user_names_a_backup_by_stamp_dump_or_sidecar():
    found = backups.in_folder(Folder(DIR, (entry(SIDECAR["file"], 12319),
                                           entry("trigger-db-20261130-0300.sql.gz", 9)),
                                     {"trigger-db-20261201-050759.json": json.dumps(SIDECAR)}))
    for wanted in ("20261201-050759", "trigger-db-20261201-050759.sql.gz",
                   "trigger-db-20261201-050759.json", f"{DIR}/trigger-db-20261201-050759.sql.gz"):
        assert backups.find(found, wanted).stamp == "20261201-050759", wanted
    assert backups.find(found, "20261130-0300").name == "trigger-db-20261130-0300.sql.gz"
    assert backups.find(found, "20250101-000000") is None


def test_a_verified_sidecar_with_its_dump_on_disk_is_trusted():
    b = record(SIDECAR)
    assert b.verified and b.usable and b.restore_tested and b.problems == ()
    assert b.path == f"{DIR}/trigger-db-20261201-050759.sql.gz"
    assert b.stamp == "20261201-050759" and b.migrations == 5 and b.compression == "gzip"
    assert b.finished_at == datetime(2026, 12, 1, 5, 8, 41, tzinfo=UTC)
    assert b.volumes == ("trigger-volume-20261201-050759-shared.tar.gz",)
    assert backups.describe(b, NOW) == ("trigger-db-20261201-050759.sql.gz  2026-12-01 05:08 "
                                        "UTC, 12.0 KiB, v4.5.10, 1 h ago  verified, "
                                        "restore-tested")


def test_older_sidecars_names_for_the_checks_still_count():
    old = {**SIDECAR, "checks": {"gzip_intact": True, "complete": True, "rows_match": True,
                                 "size_plausible": True}}
    b = record(old)
    assert b.verified and not b.restore_tested and "intact" in b.checks


@pytest.mark.parametrize("change, on_disk, problem", [
    ({}, 12000, "the dump is 12000 bytes, its record says 12319"),
    ({"checks": {**SIDECAR["checks"], "restore_rows": False}, "verified": False}, 12319,
     "failed checks: restore_rows"),
    ({"checks": {"gzip_intact": True}}, 12319, "not checked: complete, rows_match, size_plausible"),
    ({"verified": False}, 12319, "not verified"),
    ({"file": "../etc/passwd"}, 12319, "its sidecar describes '../etc/passwd'"),
])
def test_a_sidecar_is_not_trusted_when_its_dump_or_checks_say_otherwise(change, on_disk, problem):
    b = backups.from_record(entry(SIDECAR["file"], on_disk), DIR,
                            json.dumps({**SIDECAR, **change}))
    assert not b.usable and b.known_bad
    assert problem in b.problems
    assert "NOT TRUSTED: " in backups.describe(b, NOW)


def test_an_inspected_dump_made_elsewhere_counts_until_it_changes():
    name = "trigger-db-20261130-0300.sql.gz"
    mtime = datetime(2026, 11, 30, 3, 0, 5, tzinfo=UTC)
    inspected = {"file": name, "origin": "external", "size": 9000,
                 "mtime": int(mtime.timestamp()), "finished_at": "2026-11-30T03:00:05Z",
                 "checks": {"intact": True, "complete": True, "size_plausible": True,
                            "has_database": True}}
    b = backups.from_record(entry(name, 9000, mtime), DIR, json.dumps(inspected))
    assert b.inspected and b.usable and not b.verified
    assert backups.state(b) == "made outside trigger-maint, inspected"
    touched = backups.from_record(entry(name, 9000, mtime + timedelta(minutes=1)), DIR,
                                  json.dumps(inspected))
    assert "the file changed since it was inspected" in touched.problems
    bare = backups.from_record(entry(name, 9000, mtime), DIR, None)
    assert not bare.usable and not bare.known_bad
    assert backups.state(bare) == "made outside trigger-maint, not inspected (backups --verify)"


def test_listing_sorts_newest_first_and_keeps_broken_sidecars_as_untrusted():
    older = {**SIDECAR, "file": "trigger-db-20261130-040000.sql.gz", "size": 100,
             "finished_at": "2026-11-30T04:00:09Z"}
    copied = {**SIDECAR, "finished_at": "2026-12-01T07:00:09Z"}
    sidecars = {
        "trigger-db-20261130-040000.json": json.dumps(older),
        "trigger-db-20261201-050759.json": json.dumps(SIDECAR),
        "trigger-db-20261201-060000.json": '{"file": "trigger-db-2026',
        "trigger-db-20261201-070000.json": json.dumps(copied),
        "trigger-db-20261202-000000.json": json.dumps(SIDECAR),  # its dump is gone
    }
    files = (entry("trigger-db-20261130-040000.sql.gz", 100, MTIME - timedelta(days=1)),
             entry("trigger-db-20261201-050759.sql.gz", 12319),
             entry("trigger-db-20261201-060000.sql.gz", 5, MTIME + timedelta(hours=1)),
             entry("trigger-db-20261201-070000.sql.gz", 12319, MTIME + timedelta(hours=2)),
             entry("trigger-files-20261201-050759.tar.gz", 1611),
             entry("trigger-db-notes.json", 2), entry("README.txt", 10))
    folder = Folder(DIR, files, sidecars)
    found = backups.in_folder(folder)
    assert [b.stamp for b in found] == ["20261201-070000", "20261201-060000", "20261201-050759",
                                        "20261130-040000"]
    copy, broken, good, old = found
    assert "its sidecar describes 'trigger-db-20261201-050759.sql.gz'" in copy.problems
    assert broken.problems[0].startswith("unreadable sidecar")
    assert good.verified and old.verified
    assert backups.newest_usable(found) is good
    assert backups.newest_usable([copy, broken]) is None
    assert backups.stray_sidecars(folder) == ["trigger-db-20261202-000000.json"]
    assert backups.foreign_files(folder) == ["README.txt", "trigger-db-notes.json"]


def test_a_restore_takes_no_safety_dump_by_default():
    safety = {**SIDECAR, "file": "trigger-db-20261201-090000.sql.gz", "purpose": "safety",
              "finished_at": "2026-12-01T09:00:09Z"}
    folder = Folder(DIR, (entry(SIDECAR["file"], 12319), entry(safety["file"], 12319)),
                    {"trigger-db-20261201-050759.json": json.dumps(SIDECAR),
                     "trigger-db-20261201-090000.json": json.dumps(safety)})
    found = backups.in_folder(folder)
    assert backups.newest_usable(found).purpose == "safety"
    assert backups.newest_usable(found, backups.RESTORABLE).name == SIDECAR["file"]


def test_sizes_and_durations_read_one_way():
    assert [units.size(n) for n in (0, 999, 12319, 4_500_000, 1_234_000_000, None)] == \
        ["0 B", "999 B", "12.0 KiB", "4.3 MiB", "1.1 GiB", "?"]
    assert [units.duration(s) for s in (-5, 59, 60, 3700, 90000)] == \
        ["0 s", "59 s", "1 min", "1 h", "1 d"]
    assert (units.v("4.5.10"), units.v("v4.5.10"), units.v(None)) == ("v4.5.10", "v4.5.10", "")


def test_the_backup_just_made_is_read_from_its_sidecar():
    made = made_backup(json.dumps(SIDECAR), DIR)
    assert made.verified and made.size == 12319 and made.mtime == MTIME
    assert made == made_backup(SIDECAR, DIR)
    assert task.describe_made(made).splitlines()[1] == (
        "verified    yes (intact, complete, rows_match, size_plausible, restore_rows, "
        "restore_migrations)")


# -- rendering ---------------------------------------------------------------------------------

HOSTILE_DIR = "/srv/backups of 'trigger'"


@pytest.mark.parametrize("setting, has_zstd, expected", [
    ("auto", True, "zstd"), ("auto", False, "gzip"), ("gzip", True, "gzip"),
    ("zstd", False, "zstd")])
def test_compression_follows_the_setting_and_the_host(setting, has_zstd, expected):
    assert compression_for(setting, has_zstd) == expected
    assert dump_inputs(preflight(zstd=has_zstd), setting, 600).compression == expected


def test_the_dump_inputs_come_from_what_preflight_found():
    found = dump_inputs(preflight(backup_dir=HOSTILE_DIR), "auto", 3540)
    assert (found.backup_dir, found.volumes, found.project, found.trigger_version) == (
        HOSTILE_DIR, ("shared",), "trigger", "4.5.10")
    assert found.names == hostpaths.NAMES and found.dump_timeout == 3540
    assert dump_inputs(preflight(layout="runbook"), "auto", 600).volumes == ()


def scripts(layout: str) -> dict[str, str]:
    install = install_inputs(settings({"layout": layout}))
    pre = preflight(backup_dir=HOSTILE_DIR, layout="v4" if layout == "auto" else layout)
    inputs = dump_inputs(pre, "gzip", 3540)
    rendered = {
        "backup": BACKUP.render(BackupInputs(install, inputs, True, True), new_marker()),
        "backup-plain": BACKUP.render(BackupInputs(install, inputs, False, False), new_marker()),
        "backups": LIST.render(LIST.inputs(HOSTILE_DIR), new_marker()),
        "backups-verify": INSPECT.render(InspectInputs(
            install, inputs, ("trigger-db-20261130-0300.sql.gz",),
            {"trigger-db-20261130-0300.sql.gz": "20261130-0300"}, (SIDECAR["file"],)),
            new_marker()),
        "restore": runner(plans(HOSTILE_DIR)["restore"], layout=pre.installation.layout.name,
                          backup_dir=HOSTILE_DIR),
    }
    return rendered


@pytest.mark.parametrize("layout", ["auto", "runbook"])
def test_scripts_render_to_clean_bash(layout):
    for name, text in scripts(layout).items():
        assert text.startswith("#!/bin/bash\nset -euo pipefail\n"), name
        assert_clean_bash(text)


def test_every_value_is_quoted():
    rendered = scripts("auto")
    for script in rendered.values():
        assert "TM_BACKUP_DIR='/srv/backups of '\"'\"'trigger'\"'\"''" in script
    assert "tm_backup 1 1 backup\n" in rendered["backup"]
    assert "tm_backup 0 0 backup\n" in rendered["backup-plain"]
    assert "tm_do 1 check_backup 0 3720 trigger-db-20261201-040019.sql.gz" in rendered["restore"]
    assert "TM_VOLUMES=(shared)" in rendered["backup"]
    assert "TM_F=trigger-db-20261130-0300.sql.gz\n" in rendered["backups-verify"]


def test_a_configured_layout_renders_only_its_own_settings():
    rendered = scripts("runbook")
    for name in ("backup", "restore"):
        assert "TM_DB_USER=trigger" in rendered[name]
        assert "TM_DB_USER=postgres" not in rendered[name]
        assert "TM_VOLUMES=()" in rendered[name]


# -- the dump library's shell helpers, run by bash ---------------------------------------------

@pytest.fixture(scope="module")
def dump_lib(tmp_path_factory) -> str:
    """templates/_dump.sh.j2 after the shared helpers, for the runbook layout's database."""
    folder = tmp_path_factory.mktemp("templates")
    (folder / "dumplib.sh.j2").write_text(
        '#!/bin/bash\nset -euo pipefail\n{% include "_lib.sh.j2" %}\n'
        "TM_LAYOUT=runbook TM_DB_USER=trigger TM_DB_NAME=trigger\n"
        '{% include "_dump.sh.j2" %}\n')
    return render("dumplib", str(folder), marker=new_marker(), heartbeat=0,
                  lock_file=hostpaths.LOCK_FILE, dump=dump(volumes=()))


def test_the_dump_library_is_clean_bash(dump_lib):
    assert_clean_bash(dump_lib)


def shell(lib: str, body: str, tmp_path, stdin: str | None = None) -> str:
    """Run `body` after the dump library; its stdout."""
    done = subprocess.run(["bash", "-c", lib + body], cwd=tmp_path, input=stdin or "",
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
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


@pytest.mark.parametrize("name, pack", [("dump.gz", gzip.compress),
                                        ("dump.zst", lambda data: subprocess.run(
                                            ["zstd", "-q", "-c"], input=data,
                                            capture_output=True, check=True).stdout)])
def test_the_dump_reader_counts_rows_of_the_layouts_database_and_finds_the_marker(
        dump_lib, tmp_path, name, pack):
    (tmp_path / name).write_bytes(pack(DUMP.encode()))
    found = facts(shell(dump_lib, f"tm_decompress {name} | tm_read_dump", tmp_path))
    assert found.pop("last") == ["-- PostgreSQL database cluster dump complete"]
    assert found.pop("bytes") == [str(len(DUMP.encode()))]
    assert sorted(found.pop("db")) == ["postgres", "template1", "trigger"]
    assert found == DUMP_ROWS  # public.notes of database postgres is not counted

    cut = DUMP[:DUMP.index("COPY public.\"User\"") + 60]
    assert facts(shell(dump_lib, "tm_read_dump", tmp_path, cut))["last"] != \
        ["-- PostgreSQL database cluster dump complete"]


def test_the_dump_reader_knows_a_quoted_connect(dump_lib, tmp_path):
    quoted = DUMP.replace("\\connect trigger\n",
                          "\\connect -reuse-previous=on \"dbname='trigger'\"\n")
    found = facts(shell(dump_lib, "tm_read_dump", tmp_path, quoted))
    assert "trigger" in found["db"] and found["TaskRun"] == 3


def test_rows_check_wants_every_table_between_the_live_counts(dump_lib, tmp_path):
    (tmp_path / "low").write_text("postgres_version\t15.18\nrows\tTaskRun\t250\nrows\tUser\t2\n")
    (tmp_path / "high").write_text("rows\tTaskRun\t260\nrows\tUser\t2\nrows\tNew\t1\n")
    (tmp_path / "good").write_text("bytes\t9\nrows\tTaskRun\t255\nrows\tUser\t2\n")
    (tmp_path / "bad").write_text("rows\tTaskRun\t249\nrows\tGhost\t1\n")
    assert shell(dump_lib, "tm_rows_check low high good", tmp_path) == ""
    problems = shell(dump_lib, "tm_rows_check low high bad", tmp_path).rstrip("; ").split("; ")
    assert sorted(problems) == ["Ghost is not in the live database", "TaskRun has 249 rows, "
                                "the live table 250 to 260", "User is missing"]


@pytest.mark.parametrize("dump_bytes, table_bytes, plausible", [
    (7035, 57344, True),
    (900, 0, False),  # smaller than an empty cluster's dump
    (100_000, 100_000 * backups.MAX_SHRINK + 1, False),
    (100_000, 100_000 * backups.MAX_SHRINK, True),
])
def test_size_is_plausible_against_the_tables_on_disk(dump_lib, tmp_path, dump_bytes,
                                                      table_bytes, plausible):
    out = shell(dump_lib, f"if tm_size_plausible {dump_bytes} {table_bytes}; then echo yes; "
                "else echo no; fi", tmp_path)
    assert out == ("yes\n" if plausible else "no\n")


def test_restore_stream_makes_only_the_roles_section_tolerate_existing_roles(dump_lib, tmp_path):
    (tmp_path / "dump.gz").write_bytes(gzip.compress(DUMP.encode()))
    out = shell(dump_lib, "tm_restore_stream dump.gz", tmp_path)
    assert "DO $tm$ BEGIN CREATE ROLE trigger; EXCEPTION WHEN duplicate_object THEN NULL; " \
           "END $tm$;\n" in out
    assert "DO $tm$ BEGIN CREATE ROLE \"Report \"\"ro\"\"\"; EXCEPTION" in out
    assert "\nCREATE ROLE not_a_role_line_any_more;\n" in out  # after the first \connect
    assert out.replace("DO $tm$ BEGIN ", "").replace(
        "; EXCEPTION WHEN duplicate_object THEN NULL; END $tm$;", ";") == DUMP
    # a work file without the dump's name is unpacked as the name it will have
    (tmp_path / "work").write_bytes(gzip.compress(DUMP.encode()))
    assert shell(dump_lib, "tm_restore_stream work trigger-db-x.sql.gz", tmp_path) == out


def test_json_pairs_and_facts(dump_lib, tmp_path):
    out = shell(dump_lib, "printf 'a\\t1\\nb c\\ttrue\\n' | tm_json_pairs raw; echo; "
                "printf 'postgres\\tsha256:ab\\n' | tm_json_pairs str; echo; "
                "printf 'bytes\\t9\\nlast\\tx y\\n' | tm_fact last", tmp_path)
    raw, text, last = out.splitlines()
    assert json.loads(raw) == {"a": 1, "b c": True}
    assert json.loads(text) == {"postgres": "sha256:ab"}
    assert last == "x y"


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_the_scripts_name_files_as_hostpaths_does(dump_lib, tmp_path, compression):
    stamp = "20261201-050759"
    out = shell(dump_lib, f"TM_COMPRESSION={compression}\n" + "".join(
        f"tm_name {kind} {stamp} shared; echo\n" for kind in hostpaths.NAMES), tmp_path)
    assert out.splitlines() == [hostpaths.name(kind, stamp, compression, "shared")
                                for kind in hostpaths.NAMES]


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


# -- restore's and inspection's decisions ------------------------------------------------------

OLDER = {**SIDECAR, "file": "trigger-db-20261130-040000.sql.gz", "size": 100,
         "finished_at": "2026-11-30T04:00:09Z"}


def journal(*events: dict) -> list[str]:
    return [json.dumps({"t": 1767000000 + n, **e}) for n, e in enumerate(events)]


class FakeSession:
    """A host holding two backups; it answers each script the way the real one would and
    records the scripts that ran (a change under --dry-run does not run)."""

    label = "host"
    json_output = False
    settings = settings({})

    def __init__(self, dry_run=False, untrusted=False, outcome="done", show_scripts=False):
        self.dry_run, self.ran, self.outcomes, self.notes = dry_run, [], {}, []
        self.show_scripts, self.shown = show_scripts, []
        self.outcome = outcome
        newest = {**SIDECAR, "verified": False} if untrusted else SIDECAR
        self.folder = Folder(DIR, (entry(OLDER["file"], 100), entry(SIDECAR["file"], 12319)), {
            "trigger-db-20261130-040000.json": json.dumps(OLDER),
            "trigger-db-20261201-050759.json": json.dumps(newest)})
        self.facts = {"preflight": preflight()}
        self.rehashed = {}

    def note(self, text):
        self.notes.append(text)

    def print(self, text=""):
        self.notes.append(text)

    def run(self, script, inputs, timeout=None):
        if self.dry_run and script.changes:
            self.shown.append((script.template, inputs))  # printed with --scripts, not run
            return None
        if script.changes:
            self.facts.clear()
        self.ran.append((script.template, inputs))
        if script.template == "preflight":
            return preflight()
        if script.template == "change-facts":
            return ChangeFacts(migrations=5, database_bytes=10**7, cluster_bytes=3 * 10**7,
                               backup_free_bytes=10**10, docker_free_bytes=10**10,
                               folder=self.folder, points=(), transactions=TxSummary(),
                               current_journal=None, healthy=True)
        if script.template == "transaction":
            plan = json.loads(inputs.plan_json)
            return Followed(tx=inputs.tx, ended=True, journal=transactions.journal(journal(
                {"ev": "begin", "tx": inputs.tx, "kind": plan["kind"]},
                {"ev": "fact", "key": "changed", "value": True},
                {"ev": "fact", "key": "safety", "value": "trigger-db-20261201-090000.sql.gz"},
                {"ev": "end", "tx": inputs.tx, "outcome": self.outcome,
                 "step": "" if self.outcome == "done" else "restore_cluster",
                 "error": "" if self.outcome == "done" else "psql: out of disk"})))
        if script.template == "tx-ack":
            return inputs.tx
        if script.template == "backups":
            return self.folder
        if script.template == "backups-verify":
            return Inspection(inspected={}, rehashed=self.rehashed)
        raise AssertionError(f"unexpected script {script.template}")

    def templates(self) -> list[str]:
        return [template for template, _ in self.ran]


def plan_of(session: FakeSession) -> dict:
    (inputs,) = [i for template, i in session.ran if template == "transaction"]
    return json.loads(inputs.plan_json)


def test_restore_needs_a_confirmation_and_picks_the_newest_trusted_backup():
    session = FakeSession()
    with pytest.raises(UnsafeError, match="restore not done: not confirmed: no terminal"):
        task.run_restore(session)
    assert session.templates() == ["change-facts"]  # preflight: measured before
    asked = []
    with pytest.raises(UnsafeError, match="declined at the prompt"):
        task.run_restore(session, confirm=Confirm(ask=lambda q: asked.append(q) or False))
    assert "trigger-db-20261201-050759.sql.gz" in asked[0]
    done = task.run_restore(session, confirm=Confirm(yes=True))
    assert done.restored == "trigger-db-20261201-050759.sql.gz" and done.exit_code == 0
    assert done.safety_backup == "trigger-db-20261201-090000.sql.gz"
    assert session.templates()[-2:] == ["transaction", "tx-ack"]
    check = plan_of(session)["forward"][0]
    assert (check["step"], check["args"]) == ("check_backup", [SIDECAR["file"], SIDECAR["sha256"]])
    assert session.outcomes["restore"] is done


def test_the_transaction_a_restore_starts_is_clean_bash():
    session = FakeSession()
    task.run_restore(session, confirm=Confirm(yes=True))
    (inputs,) = [i for template, i in session.ran if template == "transaction"]
    assert inputs.mode == "start" and "tm_do 4 restore_cluster" in inputs.runner
    assert_clean_bash(inputs.runner)
    assert_clean_bash(TRANSACTION.render(inputs, new_marker()))


def test_restore_skips_untrusted_refuses_them_by_name_and_rejects_unknown_names():
    session = FakeSession(untrusted=True)
    yes = Confirm(yes=True)
    assert task.run_restore(session, confirm=yes).restored == "trigger-db-20261130-040000.sql.gz"
    with pytest.raises(UnsafeError, match="refusing to restore trigger-db-20261201-050759"):
        task.run_restore(session, name="20261201-050759", confirm=yes)
    with pytest.raises(ConfigError, match="no backup '20200101-000000'"):
        task.run_restore(session, name="20200101-000000", confirm=yes)


def test_restore_dry_run_plans_without_confirmation_and_changes_nothing():
    session = FakeSession(dry_run=True)
    done = task.run_restore(session, name="trigger-db-20261130-040000.sql.gz")
    assert isinstance(done, Planned) and done.plan.kind == "restore"
    assert done.plan.forward[0].args[0] == "trigger-db-20261130-040000.sql.gz"
    assert session.templates() == ["change-facts"] and session.shown == []
    assert session.outcomes["restore"] is done
    assert "restore trigger-db-20261130-040000.sql.gz" in session.notes[0]


def test_restore_dry_run_with_scripts_shows_the_transaction_it_would_start():
    session = FakeSession(dry_run=True, show_scripts=True)
    done = task.run_restore(session)
    ((template, inputs),) = session.shown
    assert template == "transaction" and inputs.tx == done.plan.tx
    assert "tm_do 4 restore_cluster" in inputs.runner
    assert session.templates() == ["change-facts"]


def test_a_failed_restore_says_what_the_host_runs_and_carries_its_result():
    session = FakeSession(outcome="failed")
    with pytest.raises(OperationError) as caught:
        task.run_restore(session, confirm=Confirm(yes=True))
    result = caught.value.result
    assert result.exit_code == 5 and result.outcome == "failed"
    assert result.message.startswith("restore failed at restore_cluster: psql: out of disk")


def test_inspection_refuses_own_dumps_whose_sha256_changed():
    session = FakeSession()
    session.rehashed = {SIDECAR["file"]: SIDECAR["sha256"]}
    after = task.run_inspect(session)
    assert [b.name for b in after] == [SIDECAR["file"], OLDER["file"]]
    (_, inputs) = next(r for r in session.ran if r[0] == "backups-verify")
    assert inputs.own == (SIDECAR["file"], OLDER["file"]) and inputs.external == ()
    session.rehashed = {SIDECAR["file"]: "0" * 64}
    with pytest.raises(OperationError, match="trigger-db-20261201-050759.sql.gz no longer "
                                             "match the SHA-256"):
        task.run_inspect(session)


def test_inspection_of_one_named_dump_made_elsewhere():
    session = FakeSession()
    cron = "trigger-db-20261201-0300.sql.gz"
    session.folder = replace(session.folder, files=session.folder.files + (entry(cron, 9000),))
    task.run_inspect(session, cron)
    (_, inputs) = next(r for r in session.ran if r[0] == "backups-verify")
    assert (inputs.external, inputs.stamps, inputs.own) == ((cron,), {cron: "20261201-0300"}, ())
    with pytest.raises(ConfigError, match="no backup 'trigger-db-x'"):
        task.run_inspect(session, "trigger-db-x")
