"""Fleets: status, verify and maintain on many hosts at once, with one summary.

`trigger-maint -H a,b,c fleet-status --parallel 3`, or hosts from the inventory
(`trigger.hosts`, `--group NAME`). Each host runs in its own thread of Fabric's
ThreadingGroup, prints as `host | ...`, and fails alone; the summary table and the exit code
(0 only when every host succeeded) come at the end.
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
from ..errors import INTERRUPTED, ConfigError
from ..fleet_runner import run_fleet, write_report
from ..maintaining import Policy
from ..output import document, print_json
from .common import phase_task
from .maintain import run_maintain
from .status import run_status
from .verify import run_verify

FLEET_HELP = {
    "group": "inventory group(s) from trigger.groups, comma-separated (with or without -H)",
    "parallel": "hosts worked on at once (default trigger.parallel, 1)",
}
STAGED_HELP = {"canary": "hosts done first; the rest only when all of them succeed "
                         "(default trigger.canary, 1)"}
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


def run(c, task: str, job, *, group, parallel, canary=None, dry_run=False, json=False,
        staged=False, write=False) -> None:
    """Run `job` on the fleet; print the summary (or JSON), write the fleet report when
    `write`, and end with the fleet's exit code."""
    base = from_context(c, parallel=parallel, canary=canary)
    members = fleet.resolve(base, _cli_hosts(c), fleet.split_names(group))
    started = _now()
    try:
        outcomes, stopped = run_fleet(c.config, members, job, parallel=base.parallel,
                                      canary=base.canary if staged else None,
                                      dry_run=dry_run, announce=_announce)
    except KeyboardInterrupt:
        raise Exit(f"trigger-maint: fleet {task} interrupted; hosts still running were cut off "
                   "and their scripts cleaned up", code=INTERRUPTED) from None
    doc = fleet.document(task, outcomes, started_at=_iso(started), finished_at=_iso(_now()),
                         parallel=base.parallel, canary=base.canary if staged else None,
                         stopped=stopped)
    paths = []
    if write and not dry_run:
        stamp = started.strftime("%Y%m%d-%H%M%S")
        paths = write_report(base.local_path("report_dir"),
                             fleet.report_files(doc, outcomes, stamp))
        doc["files"] = paths
    if json:  # the envelope names the task as it was called (fleet-status, ...)
        body = {key: value for key, value in doc.items() if key != "task"}
        print_json(document(f"fleet-{task}", None, doc["exit_code"], body))
    else:
        sys.stdout.write(fleet.table(outcomes) + "\n" + doc["summary"] + "\n")
        sys.stdout.writelines(f"fleet report: {path}\n" for path in paths if path.endswith(".md"))
        sys.stdout.flush()
    if doc["exit_code"]:
        raise Exit(f"trigger-maint: fleet {task}: {doc['summary']}", code=doc["exit_code"])


@fleet_task(help={"allow_unknown": "a host passes even when some check could not be measured"})
def fleet_status(c, group=None, parallel=None, allow_unknown=False, dry_run=False, json=False):
    """Status of every host in the fleet: one row per host, the worst state per topic.

    Hosts: -H (hosts, ssh_config aliases or inventory names), --group, or all of
    trigger.hosts. Exit 0 only when every host's status is ok.
    """
    run(c, "status", lambda session: fleet.status_result(run_status(session, allow_unknown)),
        group=group, parallel=parallel, dry_run=dry_run, json=json)


@fleet_task(help={})
def fleet_verify(c, group=None, parallel=None, dry_run=False, json=False):
    """Verify every host in the fleet: services, /healthcheck, database, Redis, logs.

    Exit 0 only when every host passes every check.
    """
    run(c, "verify", lambda session: fleet.verify_result(run_verify(session)),
        group=group, parallel=parallel, dry_run=dry_run, json=json)


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
def fleet_maintain(c, group=None, parallel=None, canary=None, no_update=False,
                   update_only_security=False, reboot=False, yes=False, target=None, ack=None,
                   dry_run=False, json=False):
    """Maintain every host, staged: the first --canary hosts, then the rest.

    When a canary host fails, the rollout stops and the other hosts are not touched (with
    --no-update nothing is rolled out: every host runs, --parallel at a time). Nothing
    is asked: as in an unattended maintain, the update and the reboot need --yes (or
    --reboot). Every host gets its maintain report; the fleet gets one more
    (fleet-maintain-<time>.md/.json) in trigger.report_dir. Exit 0 only when every host's
    maintain exited 0.
    """
    policy = Policy(no_update=no_update, update_only_security=update_only_security,
                    reboot=reboot, yes=yes, target=target, ack=tuple(ack or ()),
                    dry_run=dry_run)
    run(c, "maintain", maintain_job(policy), group=group, parallel=parallel, canary=canary,
        dry_run=dry_run, json=json, staged=not no_update, write=True)

