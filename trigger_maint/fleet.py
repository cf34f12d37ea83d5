"""Fleets: which hosts, with which settings, in which stages; the summary and its exit code."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

from . import checklist as cl
from . import status_report
from .checks import SEVERITY
from .config import Settings, kind_of, with_overrides
from .errors import CHECK_FAILED, ConfigError, UnsafeError
from .output import plain

# Keys that describe the fleet run itself; an inventory entry cannot override them.
FLEET_KEYS = frozenset({"hosts", "groups", "parallel", "canary"})

# Host states in a fleet summary.
OK, FAILED, UNREACHABLE, SKIPPED = "ok", "failed", "unreachable", "skipped"

# The fleet-status columns: each is the worst state of the checks of those names (see
# checks.NAMES); every other check lands in "other".
STATUS_TOPICS = (
    ("containers", ("containers", "webapp", "resources")),
    ("disk", ("disk", "docker_disk")),
    ("memory", ("memory", "swap")),
    ("certificate", ("certificate",)),
    ("backup", ("backup", "transaction")),
    ("database", ("database", "replication_slots")),
    ("reboot", ("reboot",)),
    ("version", ("version",)),
)


@dataclass(frozen=True)
class Member:
    """One host of a fleet: how the summary names it, how to reach it, its settings."""

    name: str  # inventory name, or the -H value without its user
    host: str  # what Fabric connects to: user@addr:port or an ssh_config alias
    settings: Settings


@dataclass(frozen=True)
class HostResult:
    """What a fleet job learned on one host."""

    exit_code: int  # the exit code the single-host task would have ended with
    before: str | None = None  # Trigger.dev version found
    after: str | None = None  # version left running (None: a read-only phase, or not known)
    items: Mapping = field(default_factory=dict)  # checklist item or check -> state
    message: str = ""  # one line: what went wrong, or what was done
    report: str | None = None  # the host's own report file, when the phase wrote one
    data: object = None  # the phase's typed result, for --json and the fleet report


@dataclass(frozen=True)
class HostOutcome:
    """A fleet member after the run: its stage, state and result."""

    name: str
    host: str
    stage: str  # "canary", "rest" or "all"
    state: str  # ok, failed, unreachable or skipped
    result: HostResult
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == OK


def _entry(name: str, value) -> dict:
    """An inventory entry as a mapping: a bare string is its host, empty means the name."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {"host": value}
    if not isinstance(value, Mapping):
        raise ConfigError(f"trigger.hosts.{name}: expected a mapping or a host, "
                          f"got {kind_of(value)}")
    return dict(value)


def inventory_member(name: str, value, base: Settings) -> Member:
    """The inventory entry `name`: its host (default: the name, an ssh_config alias) and
    settings with its overrides applied."""
    entry = _entry(name, value)
    host = entry.pop("host", name)
    if not isinstance(host, str) or not host:
        raise ConfigError(f"trigger.hosts.{name}.host: expected user@host[:port], "
                          f"got {kind_of(host)}")
    fleet_keys = sorted(FLEET_KEYS & set(entry))
    if fleet_keys:
        raise ConfigError(f"trigger.hosts.{name}: {', '.join(fleet_keys)} apply to the whole "
                          "fleet, not to one host")
    unknown = sorted(set(entry) - {f.name for f in fields(Settings)})
    if unknown:
        raise ConfigError(f"trigger.hosts.{name}: unknown setting {', '.join(unknown)} "
                          "(see docs/configuration.md)")
    try:
        settings = with_overrides(base, entry)
    except ConfigError as exc:  # "trigger.path: ..." -> "trigger.hosts.NAME.path: ..."
        raise ConfigError(str(exc).replace("trigger.", f"trigger.hosts.{name}.", 1)) from None
    return Member(name=name, host=host, settings=settings)


def display_name(host: str) -> str:
    """How a host given with -H is named in the summary: without its user."""
    return host.rpartition("@")[2]


def group_names(s: Settings, group: str) -> list[str]:
    """The inventory names in `group`."""
    if group not in s.groups:
        known = ", ".join(sorted(s.groups)) or "none defined"
        raise ConfigError(f"trigger.groups: no group {group!r} (known: {known})")
    names = s.groups[group]
    if isinstance(names, str):
        names = names.replace(",", " ").split()
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"trigger.groups.{group}: expected a list of host names, "
                          f"got {kind_of(names)}")
    missing = [n for n in names if n not in s.hosts]
    if missing:
        raise ConfigError(f"trigger.groups.{group}: {', '.join(missing)} not in trigger.hosts")
    return list(names)


def split_names(value: str | Sequence[str] | None) -> list[str]:
    """`a,b c` or a list of names as a list, empty parts dropped."""
    if not value:
        return []
    if isinstance(value, str):
        value = [value]
    return [part for item in value for part in item.replace(",", " ").split()]


def resolve(base: Settings, hosts: Sequence[str] = (), groups: Sequence[str] = ()) -> list[Member]:
    """The fleet: hosts given with -H (inventory names or hosts), then the members of
    `groups`, in order and once each; the whole inventory when neither is given."""
    if not hosts and not groups:
        if not base.hosts:
            raise ConfigError("no hosts: give -H host1,host2, --group NAME, or list hosts "
                              "under trigger.hosts")
        hosts = list(base.hosts)
    wanted = list(hosts) + [name for group in groups for name in group_names(base, group)]
    members: dict[str, Member] = {}
    for name in wanted:
        if name in members:
            continue
        if name in base.hosts:
            members[name] = inventory_member(name, base.hosts[name], base)
        else:
            members[name] = Member(name=display_name(name), host=name, settings=base)
    return list(members.values())


def version_label(text: str | None) -> str | None:
    """"4.5.10" -> "v4.5.10"; None or "" -> None."""
    if not text:
        return None
    return text if text.startswith("v") else f"v{text}"


def status_items(checks) -> dict[str, str]:
    """The worst state of each status topic, labelled as the status table labels states."""
    worst: dict[str, str] = {}
    for check in checks:
        topic = next((t for t, names in STATUS_TOPICS if check.name in names), "other")
        if topic not in worst or SEVERITY[check.state] > SEVERITY[worst[topic]]:
            worst[topic] = check.state
    order = [t for t, _ in STATUS_TOPICS] + ["other"]
    return {t: status_report.STATE_LABELS[worst[t]] for t in order if t in worst}


def status_result(report) -> HostResult:
    """A host's StatusReport as a fleet result (exit 1 as `status` would)."""
    version = report.first("version")
    return HostResult(
        exit_code=0 if report.ok else CHECK_FAILED,
        before=version_label(version.data.get("running")) if version else None,
        items=status_items(report.checks),
        message="" if report.ok else status_report.verdict(report),
        data=report,
    )


def verify_result(report) -> HostResult:
    """A host's VerifyReport as a fleet result (exit 1 as `verify` would)."""
    failures = "; ".join(f"{c.name} ({c.detail})" for c in report.failures)
    return HostResult(
        exit_code=0 if report.ok else CHECK_FAILED,
        before=version_label(report.running),
        items={c.name: c.state for c in report.checks},
        message="" if report.ok else f"verify failed: {failures}",
        data={**plain(report), "ok": report.ok},
    )


def maintain_result(run, checklist) -> HostResult:
    """A host's maintain run as a fleet result: its checklist boxes, versions and exit code;
    the message names the failed phases, else the open boxes."""
    files = dict(run.files)
    entry = cl.history_entry(run, checklist, files)
    failed = [f"{s.phase}: {s.reason}" for s in run.steps if s.outcome == "failed"]
    unticked = [f"{item.key} ({item.note})" for item in checklist.open]
    message = ""
    if run.exit_code:
        message = "; ".join(failed) or "open: " + "; ".join(unticked)
    return HostResult(
        exit_code=run.exit_code,
        before=entry["version_before"] or None,
        after=entry["version_after"] or None,
        items={item.key: "ok" if item.ticked else "open" for item in checklist.items},
        message=message,
        report=files.get("markdown"),
        data={**cl.document(run, checklist), "files": files},
    )


def announcement(outcome: HostOutcome) -> str:
    """The line printed when a host is done."""
    line = f"{outcome.name} | done in {outcome.seconds:.1f} s: {result_cell(outcome)}"
    return f"{line}: {outcome.result.message}" if outcome.result.message else line


def stages(members: Sequence[Member], canary: int | None) -> list[tuple[str, list[Member]]]:
    """The rollout: the first `canary` hosts, then the rest; one stage when not staged."""
    if not canary or canary >= len(members):
        return [("all", list(members))]
    return [("canary", list(members[:canary])), ("rest", list(members[canary:]))]


# Shards: one fleet split across N runners (CI jobs), `--shard K/N` on every fleet task.
#
# The split is a pure function of the resolved member list and the canary count, so every
# runner given the same inventory and flags computes the same one: the canaries (the
# first `canary` hosts of a staged run) all go to shard 1; the other hosts, sorted by name,
# are dealt like cards starting with shard 2 (2, 3, ..., N, 1, 2, ...). The shards' shares
# of those hosts differ by at most one, and when they do not divide evenly shard 1, which
# also carries the canaries and which the other shards wait for, gets the smaller share.

SHARD_FORMAT = re.compile(r"([0-9]+)/([0-9]+)")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (1 <= index <= count)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(value) -> Shard | None:
    """`--shard K/N` as a Shard; None when not given. Anything else is a ConfigError."""
    if value is None or value == "":
        return None
    match = SHARD_FORMAT.fullmatch(str(value).strip())
    index, count = (int(match[1]), int(match[2])) if match else (0, 0)
    if not 1 <= index <= count:
        raise ConfigError(f"--shard: expected K/N with 1 <= K <= N (e.g. 2/4), got {value!r}")
    return Shard(index, count)


def canary_names(names: Sequence[str], canary: int | None) -> list[str]:
    """The canaries of a fleet of `names`: the first `canary`, when that stages the run."""
    if not canary or canary >= len(names):
        return []
    return list(names[:canary])


def deal(names: Sequence[str], canary: int | None, count: int) -> list[list[str]]:
    """The fleet's member names split into `count` shards (index 0 is shard 1), each in
    fleet order: every canary in shard 1, the other names by sorted order dealt to shards
    2, 3, ..., count, 1, 2, ..."""
    duplicates = sorted(n for n, times in Counter(names).items() if times > 1)
    if duplicates:
        raise ConfigError(f"--shard needs distinct host names, and {', '.join(duplicates)} "
                          "names two hosts (give inventory names)")
    canaries = canary_names(names, canary)
    shard_of = dict.fromkeys(canaries, 0)
    rest = sorted(n for n in names if n not in shard_of)
    for i, name in enumerate(rest):
        shard_of[name] = (i + 1) % count
    return [[n for n in names if shard_of[n] == k] for k in range(count)]


def shard_stages(members: Sequence[Member], canary: int | None,
                 shard: Shard | None = None) -> list[tuple[str, list[Member]]]:
    """The stages this runner works through: the fleet's stages (see `stages`) holding only
    the shard's members, empty stages left out. Shard 1 of a staged run has the canary stage
    and its share of the rest; the other shards only their share of the rest."""
    whole = stages(members, canary)
    if shard is None:
        return whole
    mine = set(deal([m.name for m in members], canary, shard.count)[shard.index - 1])
    picked = [(stage, [m for m in part if m.name in mine]) for stage, part in whole]
    return [(stage, part) for stage, part in picked if part]


def waits_for_canaries(members: Sequence[Member], canary: int | None,
                       shard: Shard | None) -> bool:
    """True for a shard that may start only after the canaries succeeded: shards 2..N of a
    staged run."""
    return bool(shard and shard.index > 1 and canary_names([m.name for m in members], canary))


def canary_problem(report: dict, canaries: Sequence[str]) -> str | None:
    """Why `report` (a fleet-maintain report, see load_report) does not show every one of
    `canaries` succeeded in a canary stage; None when it does."""
    if report["task"] != "maintain":
        return f"it is a fleet {report['task']} report, not a fleet maintain one"
    entries = {h.get("name"): h for h in report["hosts"]}
    for name in canaries:
        entry = entries.get(name)
        if entry is None:
            return f"it does not hold canary {name}"
        if entry.get("stage") != "canary":
            return f"{name} was not a canary there (stage {entry.get('stage')})"
        if entry.get("state") != OK:
            return f"canary {name} {result_cell_of(entry)}"
    return None


def result_cell_of(entry: Mapping) -> str:
    """How a report's host entry ended, e.g. "failed (5)" or "skipped"."""
    state = entry.get("state")
    return state if state in (OK, SKIPPED) else f"{state} ({entry.get('exit_code')})"


AFTER_MAX_AGE = timedelta(hours=24)  # an older canary stage vouches for no rollout
CLOCK_SKEW = timedelta(minutes=5)  # between the runner that wrote a report and this one


def run_problem(report: dict, members: Sequence[Member], shard: Shard,
                now: datetime) -> str | None:
    """Why `report` (see load_report) is not the report of shard 1 of this very fleet run:
    another shard's or another fleet's, or one that ended more than AFTER_MAX_AGE ago (or
    later than now); None when it is."""
    theirs = report.get("shard")
    if theirs is not None:
        if (theirs["index"], theirs["count"]) != (1, shard.count):
            return (f"it is the report of shard {theirs['index']}/{theirs['count']}, not of "
                    f"shard 1/{shard.count}")
        if sorted(map(str, theirs["members"])) != sorted(m.name for m in members):
            return "it is the report of another fleet (its hosts are not this run's)"
    try:
        finished = datetime.fromisoformat(str(report["finished_at"]))
        age = now - finished
    except (TypeError, ValueError):
        return f"its finished_at {report['finished_at']!r} is not a time with a zone"
    if age > AFTER_MAX_AGE:
        return (f"it ended {int(age.total_seconds() // 3600)} h ago, and a canary stage "
                f"vouches for {int(AFTER_MAX_AGE.total_seconds() // 3600)} h at most: run "
                "shard 1 again")
    if -age > CLOCK_SKEW:
        return f"it ended in the future ({report['finished_at']})"
    return None


def after_check(report: dict, source: str, members: Sequence[Member], canary: int | None,
                shard: Shard, now: datetime) -> None:
    """Refuse (UnsafeError, exit 4) unless `report`, read from `source`, is shard 1's of
    this fleet run (run_problem) and shows every canary of the fleet succeeded."""
    canaries = canary_names([m.name for m in members], canary)
    problem = run_problem(report, members, shard, now) or canary_problem(report, canaries)
    if problem:
        raise UnsafeError(f"fleet maintain shard {shard} refused: {source}: {problem}; "
                          "no host contacted")


def state_of(result: HostResult) -> str:
    """ok, unreachable (exit 3) or failed."""
    if result.exit_code == 0:
        return OK
    return UNREACHABLE if result.exit_code == 3 else FAILED


def skipped(member: Member, stage: str, why: str) -> HostOutcome:
    """A host the rollout never reached: nothing was run on it."""
    return HostOutcome(name=member.name, host=member.host, stage=stage, state=SKIPPED,
                       result=HostResult(exit_code=0, message=why))


def stop_reason(outcomes: Sequence[HostOutcome]) -> str | None:
    """Why the rollout stops after the canary stage, or None when it goes on."""
    failed = [o.name for o in outcomes if not o.ok]
    if not failed:
        return None
    return f"rollout stopped: canary {', '.join(failed)} failed"


def exit_code(outcomes: Sequence[HostOutcome]) -> int:
    """0 only when every host succeeded; else the highest exit code of any host (a host
    skipped after a failed canary counts as failed)."""
    codes = [o.result.exit_code for o in outcomes if o.state not in (OK, SKIPPED)]
    if codes:
        return max(codes)
    return 1 if any(o.state == SKIPPED for o in outcomes) else 0


def item_names(outcomes: Sequence[HostOutcome]) -> list[str]:
    """Every checklist item any host reported, in the order first seen."""
    names: dict[str, None] = {}
    for outcome in outcomes:
        names.update(dict.fromkeys(outcome.result.items))
    return list(names)


def result_cell(outcome: HostOutcome) -> str:
    """The summary's result column."""
    if outcome.state in (OK, SKIPPED):
        return outcome.state
    return f"{outcome.state} ({outcome.result.exit_code})"


def rows(outcomes: Sequence[HostOutcome]) -> tuple[list[str], list[list[str]]]:
    """The summary as a header and one row per host."""
    items = item_names(outcomes)
    header = ["host", "before", "after", *items, "result"]
    body = []
    for o in outcomes:
        before = o.result.before or ("-" if o.state == SKIPPED else "unknown")
        after = o.result.after or "-"
        body.append([o.name, before, after,
                     *(str(o.result.items.get(item, "-")) for item in items), result_cell(o)])
    return header, body


def problems(outcomes: Sequence[HostOutcome]) -> list[str]:
    """One line per host that did not succeed, naming the host."""
    return [f"{o.name}: {o.result.message or o.state}" for o in outcomes if not o.ok]


def table(outcomes: Sequence[HostOutcome]) -> str:
    """The summary as an aligned text table, then one line per host that did not succeed."""
    header, body = rows(outcomes)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *body]]
    return "\n".join(lines + problems(outcomes))


def verdict(outcomes: Sequence[HostOutcome], stopped: str | None) -> str:
    """One line: how many hosts succeeded, and why the rollout stopped."""
    good = sum(o.ok for o in outcomes)
    line = f"{good} of {len(outcomes)} host{'' if len(outcomes) == 1 else 's'} ok"
    return f"{line}; {stopped}" if stopped else line


def document(task: str, outcomes: Sequence[HostOutcome], *, started_at: str, finished_at: str,
             parallel: int, canary: int | None, stopped: str | None,
             shard: Shard | None = None, members: Sequence[str] = ()) -> dict:
    """The fleet report as JSON-ready data; a shard's names its index, the shard count and
    every member of the whole fleet (in fleet order), so that merging finds gaps."""
    doc = {
        "task": task,
        "started_at": started_at,
        "finished_at": finished_at,
        "parallel": parallel,
        "canary": canary,
        "stopped": stopped,
        "ok": exit_code(outcomes) == 0,
        "exit_code": exit_code(outcomes),
        "summary": verdict(outcomes, stopped),
        "hosts": [{"name": o.name, "host": o.host, "stage": o.stage, "state": o.state,
                   "seconds": round(o.seconds, 1), **plain(o.result)} for o in outcomes],
    }
    if shard:
        doc["shard"] = {"index": shard.index, "count": shard.count, "members": list(members)}
    return doc


def markdown(doc: dict, outcomes: Sequence[HostOutcome]) -> str:
    """The fleet report for people."""
    header, body = rows(outcomes)
    canary = f", canary {doc['canary']}" if doc["canary"] else ""
    shard = doc.get("shard")
    title = f", shard {shard['index']}/{shard['count']}" if shard else ""
    of_fleet = f" of a {len(shard['members'])}-host fleet" if shard else ""
    lines = [
        f"# trigger-maint fleet {doc['task']}{title}",
        "",
        f"{doc['started_at']} to {doc['finished_at']}, {len(outcomes)} hosts{of_fleet}, "
        f"parallel {doc['parallel']}{canary}: **{doc['summary']}** (exit {doc['exit_code']})",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body),
    ]
    trouble = problems(outcomes)
    if trouble:
        lines += ["", "## Problems", "", *(f"- {line}" for line in trouble)]
    reports = [(o.name, o.result.report) for o in outcomes if o.result.report]
    if reports:
        lines += ["", "## Host reports", "", *(f"- {name}: `{path}`" for name, path in reports)]
    return "\n".join(lines) + "\n"


def report_files(doc: dict, outcomes: Sequence[HostOutcome], stamp: str,
                 merged: bool = False) -> dict[str, str]:
    """File name -> content of the fleet report (Markdown and JSON):
    fleet-<task>-<stamp>, then -shard-K-of-N for a shard's, -merged for a merged one."""
    base = f"fleet-{doc['task']}-{stamp}"
    if doc.get("shard"):
        base += f"-shard-{doc['shard']['index']}-of-{doc['shard']['count']}"
    elif merged:
        base += "-merged"
    return {f"{base}.md": markdown(doc, outcomes),
            f"{base}.json": json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n"}


# Reading fleet reports back: --after, and `report --merge`.

TASKS = ("status", "verify", "maintain")
HOST_KEYS = ("name", "host", "stage", "state", "seconds", "exit_code", "before", "after",
             "items", "message", "report", "data")
# What a merged report may hold that an unsharded run's does not have equal: when the
# shards started and ended, how long each host took, where files were written, and the
# largest --parallel of the shards (see docs/scheduling.md, "Fleets on several runners").
MERGE_DIFFERS = ("started_at", "finished_at", "parallel", "files", "hosts[].seconds")


def load_report(text: str, source: str) -> dict:
    """A fleet report from its JSON: the file a fleet run wrote, or the document it printed
    under --json (its envelope dropped, its task `fleet-X` read as `X`)."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{source}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: not a fleet report (expected a JSON object)")
    doc = dict(doc)
    if "schema" in doc:  # printed under --json
        task = str(doc.get("task", ""))
        if doc.get("error"):
            raise ConfigError(f"{source}: the run failed before it had a result: "
                              f"{doc['error']}")
        doc = {k: v for k, v in doc.items() if k not in ("schema", "host")}
        doc["task"] = task.removeprefix("fleet-") if task.startswith("fleet-") else task
    missing = [k for k in ("task", "started_at", "finished_at", "parallel", "canary",
                           "stopped", "hosts") if k not in doc]
    if doc.get("task") not in TASKS or missing or not isinstance(doc["hosts"], list):
        raise ConfigError(f"{source}: not a fleet report"
                          + (f" (no {', '.join(missing)})" if missing else ""))
    for entry in doc["hosts"]:
        if not isinstance(entry, dict) or not all(k in entry for k in HOST_KEYS) \
                or not isinstance(entry["items"], dict):
            raise ConfigError(f"{source}: not a fleet report (a host without "
                              f"{', '.join(HOST_KEYS)})")
    shard = doc.get("shard")
    if shard is not None and not (
            isinstance(shard, dict) and isinstance(shard.get("members"), list)
            and isinstance(shard.get("index"), int) and isinstance(shard.get("count"), int)
            and 1 <= shard["index"] <= shard["count"]):
        raise ConfigError(f"{source}: its shard is not {{index, count, members}}")
    return doc


def item_order(task: str, entry: Mapping) -> list[str]:
    """The order a host's items had before JSON sorted them: the status topics', the verify
    checks' or the checklist's."""
    data = entry.get("data") if isinstance(entry.get("data"), Mapping) else {}
    if task == "status":
        return [topic for topic, _ in STATUS_TOPICS] + ["other"]
    if task == "verify":
        return [check.get("name") for check in data.get("checks") or ()
                if isinstance(check, Mapping)]
    checklist = data.get("checklist") if isinstance(data.get("checklist"), Mapping) else {}
    return [item.get("key") for item in checklist.get("items") or () if isinstance(item, Mapping)]


def outcome_of(task: str, entry: Mapping) -> HostOutcome:
    """A report's host entry as the outcome it was written from (its items in their order
    again, so that the summary's columns come out as in the run's own)."""
    order = {name: i for i, name in enumerate(item_order(task, entry))}
    items = dict(sorted(entry["items"].items(), key=lambda kv: order.get(kv[0], len(order))))
    result = HostResult(exit_code=entry["exit_code"], before=entry["before"],
                        after=entry["after"], items=items, message=entry["message"],
                        report=entry["report"], data=entry["data"])
    return HostOutcome(name=entry["name"], host=entry["host"], stage=entry["stage"],
                       state=entry["state"], result=result, seconds=entry["seconds"])


def merge(reports: Sequence[tuple[str, dict]]) -> tuple[dict, list[HostOutcome]]:
    """One fleet report from the reports of every shard of one run, as (source, report).

    They must be of one task, one fleet (the same members, shard count and canary count),
    every shard once, no host twice. The result is the report an unsharded run would have
    written, except for the fields in MERGE_DIFFERS: from the earliest start to the latest
    end, the largest --parallel, the hosts in fleet order, ok, exit code, summary and why
    the rollout stopped worked out again over every host."""
    if not reports:
        raise ConfigError("report --merge: no fleet reports given")
    first_source, first = reports[0]
    for source, doc in reports:
        if not doc.get("shard"):
            raise ConfigError(f"{source}: not a shard's report (run with --shard K/N)")
    task, shard = first["task"], first["shard"]
    seen: dict[int, str] = {}
    where: dict[str, str] = {}
    for source, doc in reports:
        if doc["task"] != task:
            raise ConfigError(f"{source} is a fleet {doc['task']} report, {first_source} a "
                              f"fleet {task} one")
        other = doc["shard"]
        for key, what in (("count", "shard count"), ("members", "fleet members")):
            if other[key] != shard[key]:
                raise ConfigError(f"{source} and {first_source} are shards of different "
                                  f"fleets ({what} differ)")
        if doc["canary"] != first["canary"]:
            raise ConfigError(f"{source} and {first_source} are shards of different runs "
                              f"(canary {doc['canary']} and {first['canary']})")
        index = other["index"]
        if index in seen:
            raise ConfigError(f"shard {index}/{shard['count']} given twice: {seen[index]} "
                              f"and {source}")
        seen[index] = source
        for entry in doc["hosts"]:
            name = entry["name"]
            if name in where:
                raise ConfigError(f"host {name} is in both {where[name]} and {source}")
            if name not in shard["members"]:
                raise ConfigError(f"{source}: host {name} is not a member of the fleet")
            where[name] = source
    count = shard["count"]
    missing = [k for k in range(1, count + 1) if k not in seen]
    if missing:
        shares = deal(shard["members"], first["canary"], count)
        raise ConfigError("report --merge: missing " + "; ".join(
            f"shard {k}/{count} ({', '.join(shares[k - 1]) or 'no hosts'})" for k in missing))
    absent = [n for n in shard["members"] if n not in where]
    if absent:
        raise ConfigError(f"report --merge: no shard reports host {', '.join(absent)}")
    order = {name: i for i, name in enumerate(shard["members"])}
    entries = sorted((e for _, doc in reports for e in doc["hosts"]),
                     key=lambda e: order[e["name"]])
    outcomes = [outcome_of(task, e) for e in entries]
    by_index = [doc for _, doc in sorted(reports, key=lambda r: r[1]["shard"]["index"])]
    stopped = next((doc["stopped"] for doc in by_index if doc["stopped"]), None)
    merged = document(task, outcomes,
                      started_at=min(doc["started_at"] for doc in by_index),
                      finished_at=max(doc["finished_at"] for doc in by_index),
                      parallel=max(doc["parallel"] for doc in by_index),
                      canary=first["canary"], stopped=stopped)
    return merged, outcomes
