"""Shards on three rig hosts: fleet-status as --shard 1/2 and 2/2 splits the fleet without
overlap or gap, and `report --merge` of the two equals the unsharded run's report except for
the fields docs/scheduling.md names (fleet.MERGE_DIFFERS) and what the hosts measured."""

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from tests.integration.conftest import assigned_hosts
from tests.integration.test_fleet import FAST, LAYOUTS, Fleet, fleet_doc, label
from trigger_maint import fleet

# What a host measures changes between any two runs (a container's uptime, memory in use,
# free bytes): each status check's value, detail and data.
MEASURED = ("value", "detail", "data")


@pytest.fixture(scope="module")
def trio(rig):
    """The first three assigned hosts, locked for the module, reset once (in parallel)."""
    numbers = assigned_hosts()
    if len(numbers) < 3:
        pytest.skip("needs 3 rig hosts")
    hosts = [rig.host(k) for k in numbers[:3]]
    with ExitStack() as stack:
        for host in hosts:
            stack.enter_context(host.lock())
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda h, spec: h.reset(*spec), hosts, LAYOUTS))
        yield hosts


def comparable(doc: dict) -> dict:
    """A fleet report without the fields a merge may change and without what the hosts
    measured."""
    doc = copy.deepcopy(doc)
    for name in (*fleet.MERGE_DIFFERS, "shard", "schema", "host"):
        if name.startswith("hosts[]."):
            for entry in doc["hosts"]:
                del entry[name.removeprefix("hosts[].")]
        else:
            doc.pop(name, None)
    for entry in doc["hosts"]:
        for check in entry["data"]["checks"]:
            for key in MEASURED:
                del check[key]
    return doc


def test_shards_split_the_fleet_and_merge_into_the_unsharded_report(trio, cli, tmp_path):
    names = [label(h) for h in trio]
    whole = fleet_doc(cli(Fleet(trio), "fleet-status", "--parallel", "3", "--json", env=FAST),
                      "fleet-status")
    assert [h["name"] for h in whole["hosts"]] == names and "shard" not in whole

    shards = []
    for k in (1, 2):
        run = cli(Fleet(trio), "fleet-status", "--shard", f"{k}/2", "--parallel", "3",
                  "--json", env=FAST)
        doc = fleet_doc(run, "fleet-status")
        assert doc["shard"] == {"index": k, "count": 2, "members": names}
        assert run.returncode == doc["exit_code"] == 1, run.stderr  # no backup yet
        assert run.stderr.splitlines()[-1].startswith(f"trigger-maint: fleet status shard {k}/2: ")
        (tmp_path / f"shard-{k}.json").write_text(run.stdout)
        shards.append([h["name"] for h in doc["hosts"]])
    # No overlap, no gap: the names sorted (:2222 on three addresses) are dealt to 2, 1, 2.
    assert shards == [[names[1]], [names[0], names[2]]]
    assert sorted(shards[0] + shards[1]) == sorted(names)

    anywhere = Fleet(trio, with_h=False)  # report --merge takes no -H
    run = cli(anywhere, "report", "--merge", str(tmp_path / "shard-*.json"), "--json", env=FAST)
    merged = fleet_doc(run, "fleet-status")
    assert run.returncode == merged["exit_code"] == whole["exit_code"] == 1
    assert comparable(merged) == comparable(whole)
    assert [h["name"] for h in merged["hosts"]] == names
    saved, md = sorted(merged["files"])
    assert saved.endswith("-merged.json") and md.endswith("-merged.md")
    written = json.loads(open(saved).read())  # the file: the same, with no envelope
    assert written["task"] == "status"
    assert comparable({**written, "task": "fleet-status"}) == comparable(whole)

    # A shard missing is one line, naming the shard and its hosts.
    run = cli(anywhere, "report", "--merge", str(tmp_path / "shard-2.json"), env=FAST)
    assert run.returncode == 2
    assert run.stderr.splitlines()[-1] == \
        f"trigger-maint: report --merge: missing shard 1/2 ({names[1]})"
