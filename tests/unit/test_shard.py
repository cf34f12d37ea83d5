"""Shards: the split of a fleet across N runners, the canary rule across shards (--after),
argument errors, and `report --merge` (equal to an unsharded run but for MERGE_DIFFERS)."""

import copy
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fabric import Config

from trigger_maint import fleet
from trigger_maint.config import settings
from trigger_maint.errors import ConfigError, OperationError, UnsafeError
from trigger_maint.fleet import HostOutcome, HostResult, Member, Shard
from trigger_maint.fleet_runner import run_fleet
from trigger_maint.remote import Session

ROOT = Path(__file__).resolve().parents[2]


def members(names):
    return [Member(name=n, host=f"root@{n}", settings=settings({})) for n in names]


def names(n):
    return [f"h{i:02d}" for i in range(1, n + 1)]


# The split.

@pytest.mark.parametrize("value, shard", [("1/1", Shard(1, 1)), ("2/4", Shard(2, 4)),
                                          (" 3/3 ", Shard(3, 3)), (None, None), ("", None)])
def test_parse_shard(value, shard):
    assert fleet.parse_shard(value) == shard


@pytest.mark.parametrize("value", ["0/3", "3/2", "x", "1/0", "-1/2", "1/", "/2", "1/2/3", "½"])
def test_a_bad_shard_is_one_line(value):
    with pytest.raises(ConfigError) as caught:
        fleet.parse_shard(value)
    assert str(caught.value) == f"--shard: expected K/N with 1 <= K <= N (e.g. 2/4), got " \
                                f"{value!r}"


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 10, 31])
@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("canary", [None, 1, 3])
def test_split_has_no_overlap_no_gap_and_shares_within_one(size, count, canary):
    fleet_names = names(size)
    shards = fleet.deal(fleet_names, canary, count)
    assert len(shards) == count
    dealt = [n for shard in shards for n in shard]
    assert sorted(dealt) == sorted(fleet_names)  # no gap, no overlap
    canaries = fleet.canary_names(fleet_names, canary)
    assert set(canaries) <= set(shards[0])
    rest = [len([n for n in shard if n not in canaries]) for shard in shards]
    assert max(rest) - min(rest) <= 1
    assert rest[0] == min(rest)  # shard 1, which also has the canaries, gets the smaller share
    for shard in shards:  # each shard in fleet order
        assert shard == [n for n in fleet_names if n in shard]


def test_split_is_stable_whatever_the_order_of_the_other_hosts():
    one = ["c1", "c2", "zeta", "alpha", "mu", "beta", "omega"]
    two = ["c1", "c2", "omega", "mu", "beta", "zeta", "alpha"]
    by_name = [sorted(s) for s in fleet.deal(one, 2, 3)]
    assert by_name == [sorted(s) for s in fleet.deal(two, 2, 3)]
    # alpha, beta, mu, omega, zeta dealt to shards 2, 3, 1, 2, 3
    assert by_name == [["c1", "c2", "mu"], ["alpha", "omega"], ["beta", "zeta"]]


def test_the_canaries_are_the_first_hosts_only_when_that_stages_the_run():
    assert fleet.canary_names(["a", "b", "c"], 1) == ["a"]
    assert fleet.canary_names(["a", "b", "c"], None) == []
    assert fleet.canary_names(["a", "b", "c"], 3) == []  # every host at once: not staged


def test_a_name_twice_cannot_be_sharded():
    with pytest.raises(ConfigError, match=r"--shard needs distinct host names, and a names"):
        fleet.deal(["a", "b", "a"], None, 2)


def test_shard_stages():
    fleet_members = members(["c", "x", "y", "z"])
    c, x, y, z = fleet_members
    assert fleet.shard_stages(fleet_members, 1, None) == [("canary", [c]), ("rest", [x, y, z])]
    assert fleet.shard_stages(fleet_members, 1, Shard(1, 2)) == [("canary", [c]),
                                                                  ("rest", [y])]
    assert fleet.shard_stages(fleet_members, 1, Shard(2, 2)) == [("rest", [x, z])]
    assert fleet.shard_stages(fleet_members, None, Shard(1, 2)) == [("all", [x, z])]
    assert fleet.shard_stages(fleet_members, None, Shard(2, 2)) == [("all", [c, y])]
    assert fleet.shard_stages(members(["a"]), None, Shard(1, 2)) == []  # a is in shard 2


def test_only_later_shards_of_a_staged_run_wait_for_the_canaries():
    fleet_members = members(names(4))
    assert fleet.waits_for_canaries(fleet_members, 1, Shard(2, 3))
    assert not fleet.waits_for_canaries(fleet_members, 1, Shard(1, 3))
    assert not fleet.waits_for_canaries(fleet_members, None, Shard(2, 3))  # not staged
    assert not fleet.waits_for_canaries(fleet_members, 4, Shard(2, 3))  # every host at once
    assert not fleet.waits_for_canaries(fleet_members, 1, None)


# The runner on one shard, with jobs that never touch the network.

@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(Session, "open", lambda self: None)
    return Config()


def test_a_shard_runs_its_own_hosts_only(offline):
    ran = []

    def job(session):
        ran.append(session.label)
        return HostResult(exit_code=0)

    outcomes, stopped = run_fleet(offline, members(names(5)), job, parallel=2, canary=1,
                                  shard=Shard(2, 2))
    assert stopped is None and sorted(ran) == ["h02", "h04"]
    assert [(o.name, o.stage) for o in outcomes] == [("h02", "rest"), ("h04", "rest")]


def test_a_failed_canary_stops_shard_1_before_its_share(offline):
    def job(session):
        if session.label == "h01":
            raise OperationError("h01: update failed; rolled back")
        return HostResult(exit_code=0)

    outcomes, stopped = run_fleet(offline, members(names(5)), job, parallel=2, canary=1,
                                  shard=Shard(1, 2))
    assert stopped == "rollout stopped: canary h01 failed"
    assert [(o.name, o.stage, o.state) for o in outcomes] == [
        ("h01", "canary", "failed"), ("h03", "rest", "skipped"), ("h05", "rest", "skipped")]


# Reports: one run's outcomes, written whole and as shards.

def host(name, stage, code=0, state=None, seconds=1.0, **result):
    r = HostResult(exit_code=code, **result)
    return HostOutcome(name=name, host=f"root@{name}", stage=stage,
                       state=state or fleet.state_of(r), result=r, seconds=seconds)


RUN = [
    host("canary-1", "canary", before="v4.5.11", after="v4.5.12", report="/r/canary-1.md",
         items={"backup": "ok", "update": "ok"},
         data={"checklist": {"items": [{"key": "backup"}, {"key": "update"}]}}),
    host("eu-1", "rest", 1, before="v4.5.11", after="v4.5.12", message="open: reboot",
         items={"update": "ok", "backup": "ok"}, data={"files": {"markdown": "/r/eu-1.md"}}),
    host("us-1", "rest", 3, message="cannot connect (Connection refused)"),
    host("ap-1", "rest", before="v4.5.12", after="v4.5.12", items={"backup": "ok"}),
    host("eu-2", "rest", 5, before="v4.5.11", after="v4.5.11", message="update failed"),
]
FLEET = [o.name for o in RUN]


def whole_doc(outcomes=RUN, **overrides):
    kwargs = {"started_at": "2026-01-05T10:00:00Z", "finished_at": "2026-01-05T10:30:00Z",
              "parallel": 4, "canary": 1, "stopped": None, **overrides}
    return json.loads(json.dumps(fleet.document("maintain", outcomes, **kwargs)))


def shard_docs(count, outcomes=RUN, canary=1, task="maintain", as_printed=False):
    """The reports N shard runs of RUN write (or print under --json), later and slower."""
    docs = []
    for i, share in enumerate(fleet.deal(FLEET, canary, count), start=1):
        mine = [o.__class__(**{**o.__dict__, "seconds": o.seconds + i}) for o in outcomes
                if o.name in share]
        doc = fleet.document(task, mine, started_at=f"2026-01-05T1{i}:00:00Z",
                             finished_at=f"2026-01-05T1{i}:20:00Z", parallel=2 + i,
                             canary=canary, stopped=None, shard=Shard(i, count), members=FLEET)
        if as_printed:
            doc = {"schema": "trigger-maint/1", "task": f"fleet-{task}", "host": None,
                   **{k: v for k, v in doc.items() if k != "task"}, "files": ["/x.md"]}
        docs.append((f"shard-{i}.json", fleet.load_report(json.dumps(doc), f"shard-{i}.json")))
    return docs


def without(doc, fields=fleet.MERGE_DIFFERS):
    """`doc` without the fields a merge may change (hosts[].x names a field of each host)."""
    doc = copy.deepcopy(doc)
    for name in fields:
        if name.startswith("hosts[]."):
            for entry in doc["hosts"]:
                entry.pop(name.removeprefix("hosts[]."), None)
        else:
            doc.pop(name, None)
    return doc


def test_a_shard_report_records_its_shard_and_the_whole_fleet():
    (_, first), (_, second) = shard_docs(2)
    assert first["shard"] == {"index": 1, "count": 2, "members": FLEET}
    # the others, ap-1 eu-1 eu-2 us-1 by name, dealt to shards 2 1 2 1; each in fleet order
    assert [h["name"] for h in first["hosts"]] == ["canary-1", "eu-1", "us-1"]
    assert [h["name"] for h in second["hosts"]] == ["ap-1", "eu-2"]
    assert "shard" not in whole_doc()


@pytest.mark.parametrize("count", [1, 2, 3, 5])
@pytest.mark.parametrize("as_printed", [False, True])
def test_merged_shards_equal_the_unsharded_report_but_for_the_documented_fields(
        count, as_printed):
    shards = shard_docs(count, as_printed=as_printed)
    merged, outcomes = fleet.merge(list(reversed(shards)))  # any order
    merged = json.loads(json.dumps(merged))
    whole = whole_doc()
    assert without(merged) == without(whole)
    assert fleet.MERGE_DIFFERS == ("started_at", "finished_at", "parallel", "files",
                                   "hosts[].seconds")
    # ... and those: the earliest start, the latest end, the largest --parallel
    assert (merged["started_at"], merged["finished_at"]) == (
        "2026-01-05T11:00:00Z", f"2026-01-05T1{count}:20:00Z")
    assert merged["parallel"] == 2 + count and "files" not in merged
    assert [h["seconds"] for h in merged["hosts"]] != [h["seconds"] for h in whole["hosts"]]
    # the summary and Markdown come out as an unsharded run's, columns in their order
    assert fleet.table(outcomes) == fleet.table(RUN)
    assert merged["summary"] == "2 of 5 hosts ok" and merged["exit_code"] == 5


def test_a_merged_report_files_are_named_merged_and_a_shards_by_its_shard():
    (_, first), _ = shard_docs(2)
    merged, outcomes = fleet.merge(shard_docs(2))
    assert sorted(fleet.report_files(merged, outcomes, "20260105-110000", merged=True)) == [
        "fleet-maintain-20260105-110000-merged.json", "fleet-maintain-20260105-110000-merged.md"]
    files = fleet.report_files(first, [fleet.outcome_of("maintain", h) for h in first["hosts"]],
                               "20260105-110000")
    assert sorted(files) == ["fleet-maintain-20260105-110000-shard-1-of-2.json",
                             "fleet-maintain-20260105-110000-shard-1-of-2.md"]
    assert files["fleet-maintain-20260105-110000-shard-1-of-2.md"].startswith(
        "# trigger-maint fleet maintain, shard 1/2\n\n2026-01-05T11:00:00Z to "
        "2026-01-05T11:20:00Z, 3 hosts of a 5-host fleet, parallel 3, canary 1: ")


def test_merge_refuses_a_missing_shard_naming_its_hosts():
    shards = shard_docs(3)
    with pytest.raises(ConfigError) as caught:
        fleet.merge([shards[0], shards[2]])
    assert str(caught.value) == "report --merge: missing shard 2/3 (us-1, ap-1)"


def test_merge_refuses_overlap_other_tasks_other_fleets_and_unsharded_reports():
    shards = shard_docs(2)
    (one, first), (two, second) = shards
    cases = [
        ([shards[0], shards[0]], "shard 1/2 given twice: shard-1.json and shard-1.json"),
        ([shards[0], (two, {**second, "hosts": second["hosts"] + first["hosts"][:1]})],
         "host canary-1 is in both shard-1.json and shard-2.json"),
        ([shards[0], shard_docs(2, task="status")[1]],
         "shard-2.json is a fleet status report, shard-1.json a fleet maintain one"),
        ([shards[0], (two, {**second, "shard": {**second["shard"], "count": 3}})],
         "shard-2.json and shard-1.json are shards of different fleets (shard count differ)"),
        ([shards[0], (two, {**second, "shard": {**second["shard"], "members": FLEET[:4]}})],
         "shard-2.json and shard-1.json are shards of different fleets (fleet members "
         "differ)"),
        ([shards[0], (two, {**second, "canary": 2})],
         "shard-2.json and shard-1.json are shards of different runs (canary 2 and 1)"),
        ([shards[0], ("whole.json", whole_doc())],
         "whole.json: not a shard's report (run with --shard K/N)"),
        ([], "report --merge: no fleet reports given"),
    ]
    for reports, message in cases:
        with pytest.raises(ConfigError) as caught:
            fleet.merge(reports)
        assert str(caught.value) == message


@pytest.mark.parametrize("text, message", [
    ("{", "r.json: not JSON ("),
    ("[1]", "r.json: not a fleet report (expected a JSON object)"),
    ('{"task": "backup"}', "r.json: not a fleet report"),
    ('{"task": "status", "started_at": "x", "finished_at": "x", "parallel": 1, '
     '"canary": null, "stopped": null, "hosts": [{"name": "a"}]}',
     "r.json: not a fleet report (a host without name, host, "),
    ('{"schema": "trigger-maint/1", "task": "fleet-maintain", "host": null, "ok": false, '
     '"exit_code": 4, "error": "fleet maintain shard 2/2 refused: ..."}',
     "r.json: the run failed before it had a result: fleet maintain shard 2/2 refused"),
])
def test_what_is_not_a_fleet_report_is_one_line(text, message):
    with pytest.raises(ConfigError) as caught:
        fleet.load_report(text, "r.json")
    assert str(caught.value).startswith(message)


# The canary rule across shards.

def canary_report(**first):
    doc = whole_doc()
    doc["hosts"][0].update(first)
    return doc


NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)  # after the reports above ended


def test_a_later_shard_goes_on_only_when_the_report_shows_every_canary_succeeded():
    fleet_members = members(FLEET)
    fleet.after_check(canary_report(), "s1.json", fleet_members, 1, Shard(2, 3), NOW)
    fleet.after_check(shard_docs(3)[0][1], "s1.json", fleet_members, 1, Shard(2, 3), NOW)
    cases = [
        (canary_report(state="failed", exit_code=5), "canary canary-1 failed (5)"),
        (canary_report(state="skipped"), "canary canary-1 skipped"),
        (canary_report(stage="all"), "canary-1 was not a canary there (stage all)"),
        (canary_report(name="other"), "it does not hold canary canary-1"),
        ({**canary_report(), "task": "status"}, "it is a fleet status report, not a fleet "
                                                  "maintain one"),
    ]
    for report, problem in cases:
        with pytest.raises(UnsafeError) as caught:
            fleet.after_check(report, "s1.json", fleet_members, 1, Shard(2, 3), NOW)
        assert str(caught.value) == f"fleet maintain shard 2/3 refused: s1.json: {problem}; " \
                                    "no host contacted"
        assert caught.value.exit_code == 4
    with pytest.raises(UnsafeError, match="eu-1 was not a canary there"):  # two canaries here
        fleet.after_check(canary_report(), "s1.json", fleet_members, 2, Shard(3, 3), NOW)


@pytest.mark.parametrize("report, shard, now, problem", [
    (0, Shard(2, 3), NOW, None),
    (1, Shard(3, 3), NOW, "it is the report of shard 2/3, not of shard 1/3"),
    (0, Shard(2, 4), NOW, "it is the report of shard 1/3, not of shard 1/4"),
    (0, Shard(2, 3), NOW + timedelta(hours=25), "it ended 25 h ago, and a canary stage "
                                                 "vouches for 24 h at most: run shard 1 again"),
    (0, Shard(2, 3), NOW - timedelta(hours=2), "it ended in the future (2026-01-05T11:20:00Z)"),
    ("unsharded", Shard(2, 3), NOW, None),
    ("naive", Shard(2, 3), NOW, "its finished_at '2026-01-05T10:30:00' is not a time with a "
                                "zone"),
])
def test_only_shard_1_of_this_fleet_run_vouches_for_a_later_shard(report, shard, now,
                                                                   problem):
    docs = {i: doc for i, (_, doc) in enumerate(shard_docs(3))}
    docs.update(unsharded=canary_report(), naive=whole_doc(finished_at="2026-01-05T10:30:00"))
    assert fleet.run_problem(docs[report], members(FLEET), shard, now) == problem


def test_the_report_of_another_fleet_vouches_for_nothing():
    (_, first), *_ = shard_docs(3)
    assert fleet.run_problem(first, members(FLEET[:-1]), Shard(2, 3), NOW) == (
        "it is the report of another fleet (its hosts are not this run's)")


# The command line, against ports where nothing listens: exit 3 proves hosts were tried.

UNREACHABLE = "root@127.0.0.1:9,root@127.0.0.2:9,root@127.0.0.3:9"


def cli(*args, cwd=None, env=None):
    exe = Path(sys.executable).with_name("trigger-maint")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd or ROOT,
                          env={**os.environ, **(env or {})}, timeout=60,
                          stdin=subprocess.DEVNULL)


def last_line(done) -> str:
    return done.stderr.splitlines()[-1]


@pytest.mark.parametrize("task", ["fleet-status", "fleet-verify", "fleet-maintain"])
def test_every_fleet_task_refuses_a_bad_shard_with_exit_2(task):
    done = cli("-H", UNREACHABLE, task, "--shard", "3/2")
    assert done.returncode == 2 and done.stdout == ""
    assert last_line(done) == "trigger-maint: --shard: expected K/N with 1 <= K <= N " \
                              "(e.g. 2/4), got '3/2'"


def test_a_shard_of_fleet_status_works_on_its_share_only():
    done = cli("-H", UNREACHABLE, "fleet-status", "--shard", "2/2", "--parallel", "3",
               "--json")
    assert done.returncode == 3, done.stderr
    doc = json.loads(done.stdout)
    assert [h["name"] for h in doc["hosts"]] == ["127.0.0.1:9", "127.0.0.3:9"]
    assert doc["shard"] == {"index": 2, "count": 2,
                            "members": ["127.0.0.1:9", "127.0.0.2:9", "127.0.0.3:9"]}
    assert last_line(done) == "trigger-maint: fleet status shard 2/2: 0 of 2 hosts ok"


def test_a_later_shard_of_fleet_maintain_needs_the_canaries_report(tmp_path):
    env = {"FABRIC_TRIGGER_REPORT_DIR": str(tmp_path / "reports")}
    args = ("-H", UNREACHABLE, "fleet-maintain", "--yes", "--shard", "2/2")
    done = cli(*args, env=env)
    assert done.returncode == 4 and done.stdout == ""
    assert last_line(done) == (
        "trigger-maint: fleet maintain shard 2/2 refused: shards after the first wait for the "
        "canaries; run shard 1 first and give the other shards its fleet report with --after "
        'FILE (docs/scheduling.md, "Fleets on several runners"); no host contacted')
    assert "| done in" not in done.stderr and not (tmp_path / "reports").exists()

    recent = {"finished_at": datetime.now(UTC).isoformat(timespec="seconds")}
    failed = {"schema": "trigger-maint/1", "task": "fleet-maintain", "host": None,
              **whole_doc([host("127.0.0.1:9", "canary", 5)], **recent)}
    (tmp_path / "s1.json").write_text(json.dumps(failed))
    done = cli(*args, "--after", str(tmp_path / "s1.json"), env=env)
    assert done.returncode == 4
    assert last_line(done) == (f"trigger-maint: fleet maintain shard 2/2 refused: "
                               f"{tmp_path / 's1.json'}: canary 127.0.0.1:9 failed (5); "
                               "no host contacted")

    (tmp_path / "s1.json").write_text(json.dumps(whole_doc([host("127.0.0.1:9", "canary")],
                                                            **recent)))
    done = cli(*args, "--after", str(tmp_path / "s1.json"), "--json", env=env)
    assert done.returncode == 3, done.stderr  # it ran: its hosts are unreachable
    doc = json.loads(done.stdout)
    # 127.0.0.1:9 is the canary, in shard 1; the others are dealt to shards 2 and 1
    assert [(h["name"], h["stage"]) for h in doc["hosts"]] == [("127.0.0.2:9", "rest")]
    (written,) = (tmp_path / "reports").glob("fleet-maintain-*-shard-2-of-2.json")
    assert json.loads(written.read_text())["shard"]["index"] == 2

    for extra, message in [
        (("--after", str(tmp_path / "nope.json")), f"{tmp_path / 'nope.json'}: cannot be read"),
    ]:
        done = cli(*args, *extra, env=env)
        assert done.returncode == 2 and last_line(done).startswith(f"trigger-maint: {message}")
    done = cli("-H", UNREACHABLE, "fleet-maintain", "--shard", "1/2", "--after", "x.json")
    assert done.returncode == 2
    assert last_line(done) == ("trigger-maint: --after is for shards 2..N of a staged "
                               "fleet-maintain (--shard K/N with K > 1, without --no-update)")


def test_report_merge_writes_and_prints_one_fleet_report(tmp_path):
    for source, doc in shard_docs(2, as_printed=True):
        (tmp_path / source).write_text(json.dumps(doc))
    env = {"FABRIC_TRIGGER_REPORT_DIR": str(tmp_path / "reports")}
    done = cli("report", "--merge", str(tmp_path / "shard-*.json"), env=env)
    assert done.returncode == 5, done.stderr  # the fleet's exit code
    lines = done.stdout.splitlines()
    assert lines[:len(fleet.table(RUN).splitlines())] == fleet.table(RUN).splitlines()
    merged = tmp_path / "reports" / "fleet-maintain-20260105-110000-merged"
    assert lines[-2:] == ["2 of 5 hosts ok", f"fleet report: {merged}.md"]
    assert last_line(done) == "trigger-maint: fleet maintain: 2 of 5 hosts ok"
    assert without(json.loads(merged.with_suffix(".json").read_text())) == without(whole_doc())

    done = cli("report", "--merge", str(tmp_path / "shard-1.json"), "--json", env=env)
    assert done.returncode == 2 and done.stdout.startswith('{"error": ')
    assert last_line(done) == "trigger-maint: report --merge: missing shard 2/2 (ap-1, eu-2)"
    done = cli("-H", "root@127.0.0.1:9", "report", "--merge", str(tmp_path / "shard-1.json"))
    assert done.returncode == 2
    assert last_line(done) == "trigger-maint: report --merge takes no -H: the hosts are in " \
                              "the fleet reports"
    plain = cli("report", env=env)  # without --merge: the history, as before
    assert plain.returncode == 0 and plain.stdout.startswith("no maintain runs recorded")


def test_the_github_actions_recipe_runs_shard_1_then_the_others_then_the_merge():
    yaml = pytest.importorskip("yaml")
    text = (ROOT / "docs" / "scheduling.md").read_text()
    start = text.index("# .github/workflows/trigger-maint-fleet.yml")
    jobs = yaml.safe_load(text[start:text.index("```", start)])["jobs"]
    assert list(jobs) == ["shard-1", "shards", "report"]
    first = next(s["run"] for s in jobs["shard-1"]["steps"] if "fleet-maintain" in s.get("run", ""))
    assert "--shard 1/4 " in first and "--after" not in first and "> shard-1.json" in first
    shards = jobs["shards"]
    assert shards["needs"] == "shard-1" and shards["strategy"]["matrix"]["shard"] == [2, 3, 4]
    later = next(s["run"] for s in shards["steps"] if "fleet-maintain" in s.get("run", ""))
    assert "--shard ${{ matrix.shard }}/4 --after after/shard-1.json" in later
    download = next(s for s in shards["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"] == {"name": "fleet-shard-1", "path": "after"}
    report = jobs["report"]
    assert report["needs"] == ["shard-1", "shards"]
    assert any(s.get("run") == "trigger-maint report --merge 'shards/*/shard-*.json'"
               for s in report["steps"])
