"""Fleets: which hosts, with which settings, in which stages; the summary and its exit code."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

from . import checklist as cl
from . import status_report
from .checks import SEVERITY
from .config import Settings, kind_of, with_overrides
from .errors import CHECK_FAILED, ConfigError
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
             parallel: int, canary: int | None, stopped: str | None) -> dict:
    """The fleet report as JSON-ready data."""
    return {
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


def markdown(doc: dict, outcomes: Sequence[HostOutcome]) -> str:
    """The fleet report for people."""
    header, body = rows(outcomes)
    canary = f", canary {doc['canary']}" if doc["canary"] else ""
    lines = [
        f"# trigger-maint fleet {doc['task']}",
        "",
        f"{doc['started_at']} to {doc['finished_at']}, {len(outcomes)} hosts, "
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


def report_files(doc: dict, outcomes: Sequence[HostOutcome], stamp: str) -> dict[str, str]:
    """File name -> content of the fleet report (Markdown and JSON)."""
    base = f"fleet-{doc['task']}-{stamp}"
    return {f"{base}.md": markdown(doc, outcomes),
            f"{base}.json": json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n"}
