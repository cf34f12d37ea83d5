"""Fleets: status, verify and maintain on many hosts at once, with one summary.

`trigger-maint -H a,b,c fleet-status --parallel 3`, or hosts from the inventory
(`trigger.hosts`, `--group NAME`). Each host runs in its own thread of Fabric's
ThreadingGroup, prints as `host | ...`, and fails alone; the summary table and the exit code
(0 only when every host succeeded) come at the end.

`--shard K/N` splits the fleet across N runners (fleet.deal); `report --merge` joins their
fleet reports again (tasks/report.py).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime

from fabric import Connection
from invoke import Exit

from .. import fleet
from ..config import from_context
from ..confirm import Confirm
from ..errors import INTERRUPTED, ConfigError, UnsafeError
from ..fleet_runner import read_report, run_fleet, write_report
from ..maintaining import Policy
from ..output import document, print_json
from .common import phase_task
from .maintain import run_maintain
from .status import run_status
from .verify import run_verify

FLEET_HELP = {
    "group": "inventory group(s) from trigger.groups, comma-separated (with or without -H)",
    "parallel": "hosts worked on at once (default trigger.parallel, 1)",
    "shard": "K/N: work on shard K of N of the fleet only, for N runners (docs/scheduling.md)",
}
STAGED_HELP = {
    "canary": "hosts done first; the rest only when all of them succeed "
              "(default trigger.canary, 1)",
    "after": "with --shard K/N, K > 1: the fleet report of shard 1; this shard runs only when "
             "it shows every canary succeeded",
}
AFTER_HOW = ("run shard 1 first and give the other shards its fleet report with --after FILE "
             "(docs/scheduling.md, \"Fleets on several runners\")")
EXECUTOR_HINT = ("fleet tasks need every -H host in one call: run them as trigger-maint, or "
                 "set tasks.executor_class: trigger_maint.fleet_runner.FleetExecutor in "
                 "fabric.yaml for fab; --group and trigger.hosts work either way")


def fleet_task(help: dict, **task_kwargs):
    """A task Fabric calls once for the whole fleet (see FleetExecutor), not once per host."""

    def decorate(func):
        made = phase_task(help={**FLEET_HELP, **help}, **task_kwargs)(func)
        made.fleet = True
        return made

    return decorate


def _cli_hosts(c) -> tuple:
    if isinstance(c, Connection):  # plain Fabric executor: called once per -H host
        raise ConfigError(EXECUTOR_HINT)
    return getattr(c, "cli_hosts", ())


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def _announce(outcome: fleet.HostOutcome) -> None:
    sys.stderr.write(fleet.announcement(outcome) + "\n")
    sys.stderr.flush()


def check_after(members, canary: int | None, shard: fleet.Shard | None,
                after: str | None) -> None:
    """A shard after the first of a staged run starts only when `after`, a fleet report,
    shows that every canary succeeded: else UnsafeError (exit 4), before any connection."""
    if not fleet.waits_for_canaries(members, canary, shard):
        if after:
            raise ConfigError("--after is for shards 2..N of a staged fleet-maintain "
                              "(--shard K/N with K > 1, without --no-update)")
        return
    if not after:
        raise UnsafeError(f"fleet maintain shard {shard} refused: shards after the first wait "
                          f"for the canaries; {AFTER_HOW}; no host contacted")
    fleet.after_check(read_report(after), after, members, canary, shard, _now())


def run(c, task: str, job, *, group, parallel, canary=None, dry_run=False, json=False,
        staged=False, write=False, shard=None, after=None) -> None:
    """Run `job` on the fleet (or on one shard of it); print the summary (or JSON), write
    the fleet report when `write`, and end with the fleet's exit code."""
    part = fleet.parse_shard(shard)
    base = from_context(c, parallel=parallel, canary=canary)
    members = fleet.resolve(base, _cli_hosts(c), fleet.split_names(group))
    staged_canary = base.canary if staged else None
    names = [m.name for m in members]
    if part:
        fleet.deal(names, staged_canary, part.count)  # distinct names, else a ConfigError
    check_after(members, staged_canary, part, after)
    started = _now()
    try:
        outcomes, stopped = run_fleet(c.config, members, job, parallel=base.parallel,
                                      canary=staged_canary, dry_run=dry_run,
                                      announce=_announce, shard=part)
    except KeyboardInterrupt:
        raise Exit(f"trigger-maint: fleet {task} interrupted; hosts still running were cut off "
                   "and their scripts cleaned up", code=INTERRUPTED) from None
    doc = fleet.document(task, outcomes, started_at=_iso(started), finished_at=_iso(_now()),
                         parallel=base.parallel, canary=staged_canary, stopped=stopped,
                         shard=part, members=names)
    paths = []
    if write and not dry_run:
        stamp = started.strftime("%Y%m%d-%H%M%S")
        paths = write_report(base.local_path("report_dir"),
                             fleet.report_files(doc, outcomes, stamp))
        doc["files"] = paths
    show(doc, outcomes, paths, json)


def show(doc: dict, outcomes, paths, json: bool) -> None:
    """Print a fleet report (the summary table, or its JSON document) and end with the
    fleet's exit code."""
    task, shard = doc["task"], doc.get("shard")
    name = f"{task} shard {shard['index']}/{shard['count']}" if shard else task
    if json:  # the envelope names the task as it was called (fleet-status, ...)
        body = {key: value for key, value in doc.items() if key != "task"}
        print_json(document(f"fleet-{task}", None, doc["exit_code"], body))
    else:
        of = (f" (shard {shard['index']}/{shard['count']} of a {len(shard['members'])}-host "
              "fleet)") if shard else ""
        sys.stdout.write(fleet.table(outcomes) + "\n" + doc["summary"] + of + "\n")
        sys.stdout.writelines(f"fleet report: {path}\n" for path in paths if path.endswith(".md"))
        sys.stdout.flush()
    if doc["exit_code"]:
        raise Exit(f"trigger-maint: fleet {name}: {doc['summary']}", code=doc["exit_code"])


@fleet_task(help={"allow_unknown": "a host passes even when some check could not be measured"})
def fleet_status(c, group=None, parallel=None, shard=None, allow_unknown=False, dry_run=False,
                 json=False):
    """Status of every host in the fleet: one row per host, the worst state per topic.

    Hosts: -H (hosts, ssh_config aliases or inventory names), --group, or all of
    trigger.hosts. Exit 0 only when every host's status is ok.
    """
    run(c, "status", lambda session: fleet.status_result(run_status(session, allow_unknown)),
        group=group, parallel=parallel, shard=shard, dry_run=dry_run, json=json)


@fleet_task(help={})
def fleet_verify(c, group=None, parallel=None, shard=None, dry_run=False, json=False):
    """Verify every host in the fleet: services, /healthcheck, database, Redis, logs.

    Exit 0 only when every host passes every check.
    """
    run(c, "verify", lambda session: fleet.verify_result(run_verify(session)),
        group=group, parallel=parallel, shard=shard, dry_run=dry_run, json=json)


def maintain_job(policy: Policy):
    """maintain on one host (its own reports included), in the host's language. Nothing is
    asked in a fleet: the update and the reboot need --yes (or --reboot)."""

    def job(session):
        done = run_maintain(session, replace(policy, lang=session.settings.lang,
                                             dry_run=session.dry_run), Confirm(yes=policy.yes))
        return fleet.maintain_result(done.run, done.checklist)

    return job


@fleet_task(help={
    **STAGED_HELP,
    "no_update": "never update, even when a newer version is found",
    "update_only_security": "update only when an advisory affects the running version",
    "reboot": "reboot hosts that ask for it",
    "yes": "confirm the update and the reboot on every host (nothing is asked in a fleet)",
    "target": "update every host to this version (vX.Y.Z) instead of the newest",
    "ack": "acknowledge an upgrade hazard research named (repeatable)",
}, iterable=["ack"])
def fleet_maintain(c, group=None, parallel=None, canary=None, shard=None, after=None,
                   no_update=False, update_only_security=False, reboot=False, yes=False,
                   target=None, ack=None, dry_run=False, json=False):
    """Maintain every host, staged: the first --canary hosts, then the rest.

    When a canary host fails, the rollout stops and the other hosts are not touched (with
    --no-update nothing is rolled out: every host runs, --parallel at a time). Nothing
    is asked: as in an unattended maintain, the update and the reboot need --yes (or
    --reboot). Every host gets its maintain report; the fleet gets one more
    (fleet-maintain-<time>.md/.json) in trigger.report_dir. Exit 0 only when every host's
    maintain exited 0.

    With --shard K/N, shard 1 carries the canaries; shards 2..N run only with --after
    FILE, shard 1's fleet report showing every canary succeeded (else exit 4).
    """
    policy = Policy(no_update=no_update, update_only_security=update_only_security,
                    reboot=reboot, yes=yes, target=target, ack=tuple(ack or ()),
                    dry_run=dry_run)
    run(c, "maintain", maintain_job(policy), group=group, parallel=parallel, canary=canary,
        dry_run=dry_run, json=json, staged=not no_update, write=True, shard=shard, after=after)

