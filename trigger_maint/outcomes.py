"""What a change did, read from its journal: the results of update, rollback and restore,
and the one line that says what the host runs now and what was restored."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from . import logs, units
from .backups import parse_utc
from .inventory import running_version
from .transactions import DONE, ROLLED_BACK, UNCHANGED, Journal


@dataclass(frozen=True)
class PinChange:
    """One edited line."""

    file: str
    before: str
    after: str


@dataclass(frozen=True)
class Guard:
    """The dump an update took right before its change: what a database rollback restores."""

    name: str
    sha256: str
    finished_at: datetime | None
    seconds_before_change: float | None  # from the dump's end to the first change after it

    @property
    def window(self) -> str:
        """The writes a database rollback would lose, in words."""
        if self.seconds_before_change is None:
            return "unknown"
        return f"writes of the last {units.duration(self.seconds_before_change)} before the change"


def _version(facts: dict) -> str | None:
    if not isinstance(facts.get("webapp_container"), dict):
        return None
    return running_version(facts.get("webapp_container"), facts.get("webapp_image"),
                           facts.get("core_package") or "", facts.get("pinned_tag") or "").version


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _str(value) -> str:
    return value if isinstance(value, str) else ""


def _guard(j: Journal) -> Guard | None:
    data = j.facts.get("guard")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            data = None
    if not isinstance(data, dict):
        return None
    finished = parse_utc(data.get("finished_at"))
    recreate = next((s for s in j.steps if s.direction == "forward" and s.name == "recreate"),
                    None)
    window = None
    if finished is not None and recreate is not None and recreate.started_at is not None:
        window = max(0.0, (recreate.started_at - finished).total_seconds())
    return Guard(_str(data.get("file")), _str(data.get("sha256")), finished, window)


def failing_logs(j: Journal, lines: int = 8) -> dict[str, list[str]]:
    """The last distinct log lines of each service the health wait found failing."""
    found = j.facts.get("logs")
    if not isinstance(found, dict):
        return {}
    return {service: logs.tail_distinct([str(x) for x in raw if isinstance(x, str)], lines)
            for service, raw in found.items() if isinstance(raw, list)}


@dataclass(frozen=True)
class ChangeResult:
    """What every change reports: how it ended and what the host runs now."""

    tx: str
    kind: str
    outcome: str  # done, unchanged, rolled-back, refused, failed
    exit_code: int
    message: str  # one line: what happened, what runs now, what was restored
    version: str | None  # running now
    images: dict  # service -> image ID running now
    db_restored: bool
    restored_from: str  # the dump the database was restored from
    safety_backup: str  # the dump of the database that was replaced ("" = none)
    aside: str  # a replaced database kept aside in PostgreSQL ("" = none)
    migrations_before: int | None
    migrations_after: int | None
    health_failure: str
    logs: dict  # service -> last distinct log lines (when health failed)
    reported: bool = False  # it ended earlier, with no client: this run only reports it
    db_restore_error: str = ""  # why a database that had to be restored was left as it was
    fallback_backup: str = ""  # then: an intact backup from before the change, to restore
    restore_command: str = ""  # the command that restores fallback_backup by hand


@dataclass(frozen=True)
class UpdateResult(ChangeResult):
    """What an update did (interface: changed, from_version, to_version, rolled_back, point)."""

    changed: bool = False
    from_version: str | None = None
    to_version: str | None = None
    rolled_back: bool = False
    point: str = ""
    target: str = ""
    backup: str = ""  # the backup the gate accepted
    guard: Guard | None = None
    downtime_seconds: float | None = None
    pin_changes: list[PinChange] = field(default_factory=list)
    images_before: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RollbackResult(ChangeResult):
    point: str = ""
    downtime_seconds: float | None = None


@dataclass(frozen=True)
class RestoreResult(ChangeResult):
    restored: str = ""
    left_aside: tuple[str, ...] = ()


def restore_command(host: str, name: str) -> str:
    """The command that restores backup `name` on `host` (user@host[:port], "" = unnamed)."""
    return f"trigger-maint {f'-H {host} ' if host else ''}restore --name {name} --yes"


def _common(j: Journal, reported: bool, host: str = "") -> dict:
    f = j.facts
    kept, fallback = _str(f.get("db_kept")), _str(f.get("fallback_backup"))
    return dict(
        tx=j.tx, kind=j.kind, outcome=j.outcome or "cut-off", exit_code=j.exit_code,
        message=message(j, host), version=_version(f),
        images=dict(f.get("images_after") or {}),
        db_restore_error=kept, fallback_backup=fallback if kept else "",
        restore_command=restore_command(host, fallback) if kept and fallback else "",
        db_restored=f.get("db_restored") is True, restored_from=_str(f.get("restored_from")),
        safety_backup=_str(f.get("safety")), aside=_str(f.get("aside_kept")),
        migrations_before=_int(f.get("migrations_before")),
        migrations_after=_int(f.get("migrations_now")),
        health_failure=_str(f.get("health_failure")), logs=failing_logs(j), reported=reported)


def update_result(j: Journal, from_version: str | None, target: str, backup: str,
                  reported: bool = False, host: str = "") -> UpdateResult:
    """`host` (user@host[:port]) goes into the restore command a failure may name."""
    f = j.facts
    pins = [PinChange(_str(c.get("file")), _str(c.get("before")), _str(c.get("after")))
            for c in f.get("pin_changes") or [] if isinstance(c, dict)]
    common = _common(j, reported, host)
    return UpdateResult(
        **common,
        changed=j.outcome == DONE,
        from_version=from_version,
        to_version=common["version"] if j.outcome == DONE else from_version,
        rolled_back=j.outcome == ROLLED_BACK,
        point=_str(f.get("point")),
        target=target,
        backup=backup,
        guard=_guard(j),
        downtime_seconds=_float(f.get("downtime_seconds")),
        pin_changes=pins,
        images_before=dict(f.get("images_before") or {}),
    )


def already(running: str, target: str) -> UpdateResult:
    """An update whose target already runs: nothing to do, nothing started."""
    return UpdateResult(
        tx="", kind="update", outcome=UNCHANGED, exit_code=0,
        message=f"nothing to change: {units.v(running)} runs already", version=running,
        images={}, db_restored=False, restored_from="", safety_backup="", aside="",
        migrations_before=None, migrations_after=None, health_failure="", logs={},
        from_version=running, to_version=running, target=target)


def rollback_result(j: Journal, point: str, reported: bool = False) -> RollbackResult:
    return RollbackResult(**_common(j, reported), point=point,
                          downtime_seconds=_float(j.facts.get("downtime_seconds")))


def restore_result(j: Journal, name: str, reported: bool = False) -> RestoreResult:
    left = j.facts.get("left_aside")
    return RestoreResult(**_common(j, reported), restored=name,
                         left_aside=tuple(x for x in left or () if isinstance(x, str)))


def _replaced(f: dict) -> str:
    """Where the database a restore replaced is now."""
    saved, aside = _str(f.get("safety")), _str(f.get("aside_kept"))
    why = _str(f.get("aside_error"))
    if saved and aside:
        return f" (the replaced one is saved as {saved} and still kept as database {aside}: " \
               "drop it by hand)"
    if saved:
        return f" (the replaced one is saved as {saved})"
    if aside:
        return (f" (the replaced one could not be saved{f' ({why})' if why else ''}: it is "
                f"kept as database {aside}; save it, then drop it by hand)")
    return ""


def _kept(j: Journal, runs: str, host: str) -> list[str]:
    """What a change whose database could not be restored says: where the host is, why the
    database was left as it was, and the backup to restore by hand."""
    f = j.facts
    others = [s for s in j.steps if s.direction == "back" and s.status == "failed"
              and s.name != "restore_db"]
    now, point = _int(f.get("migrations_now")), _int(f.get("point_migrations"))
    counts = f" ({now} migrations; {point} before the update)" \
        if now is not None and point is not None else ""
    if others:
        parts = [f"the host may be half-changed: {runs}"]
    else:
        parts = [f"back on the old images: {runs} on the database as the failed release left "
                 f"it{counts}"]
    parts.append(f"the database was NOT restored: {_str(f.get('db_kept'))}")
    fallback = _str(f.get("fallback_backup"))
    if fallback:
        parts.append(f"the verified backup {fallback} holds the data from before the update "
                     "(without the writes made after it was taken); to go back to it: "
                     f"{restore_command(host, fallback)}")
    else:
        parts.append("no verified backup from before the update was found to restore by hand "
                     "(`trigger-maint backups` lists them)")
    return parts


def message(j: Journal, host: str = "") -> str:
    """One line: how the change ended, what the host runs now and what was restored."""
    f = j.facts
    version = _version(f)
    runs = f"v{version} runs" if version else "the running version is unknown"
    what = j.kind
    if j.kind == "update":
        what += f" to {_str(f.get('target')) or 'the current image tags'}"
    elif j.kind == "rollback" and f.get("point"):
        what += f" to {_str(f.get('point'))}"
    if j.outcome == DONE:
        return f"{what} done: {runs}"
    if j.outcome == UNCHANGED:
        return f"nothing to change: {runs}"
    why = j.error or "no reason recorded"
    parts = [f"{what} failed at {j.failed_step or '?'}: {why}"]
    if f.get("db_kept") and j.kind == "update":
        parts += _kept(j, runs, host)
    elif j.outcome == ROLLED_BACK and not any(s.name == "recreate" for s in j.steps):
        parts.append(f"nothing was stopped; what had changed was put back: {runs}")
    elif j.outcome == ROLLED_BACK:
        parts.append(f"rolled back: {runs}")
    elif j.changed:
        parts.append(f"the host may be half-changed: {runs}")
    else:
        parts.append(f"nothing was changed: {runs}")
    if f.get("db_restored") is True:
        parts.append(f"the database was restored from {_str(f.get('restored_from'))}"
                     + _replaced(f))
    elif f.get("put_back") is True:
        parts.append("the previous databases were put back")
    return "; ".join(parts)


@dataclass(frozen=True)
class Planned:
    """A change under --dry-run: the plan it would carry out."""

    kind: str
    plan: object  # transactions.Plan
    summary: str
    changed: bool = False
    rolled_back: bool = False


def describe_update(r: UpdateResult) -> str:
    """The update's outcome for people."""
    lines = [f"(reported: {r.kind} {r.tx} ended while no client was connected)"] \
        if r.reported else []
    if not r.changed:
        lines.append(r.message)
        lines += _logs(r)
        return "\n".join(lines)
    lines.append(f"updated     {units.v(r.from_version) or 'unknown'} -> "
                 f"{units.v(r.to_version) or 'unknown'}")
    lines += [f"pinned      {c.file}: {c.after}" for c in r.pin_changes]
    if r.downtime_seconds is not None:
        lines.append(f"downtime    {r.downtime_seconds} s (webapp not answering 200)")
    if r.migrations_after != r.migrations_before:
        lines.append(f"migrations  {r.migrations_before} -> {r.migrations_after}")
    if r.guard is not None:
        lines.append(f"guard dump  {r.guard.name} ({r.guard.window} would be lost by a "
                     "database rollback)")
    lines.append(f"rollback    point {r.point} (`trigger-maint rollback` goes back)")
    return "\n".join(lines)


def _logs(r: ChangeResult) -> list[str]:
    lines = []
    for service, tail in r.logs.items():
        lines.append(f"last log lines of {service}:")
        lines += [f"  {line}" for line in tail]
    return lines


def describe_rollback(r: RollbackResult) -> str:
    """The rollback's outcome for people."""
    lines = [r.message]
    if r.downtime_seconds is not None:
        lines.append(f"downtime    {r.downtime_seconds} s (webapp not answering 200)")
    if r.db_restored:
        lines.append(f"database    restored from {r.restored_from} ({r.migrations_before} -> "
                     f"{r.migrations_after} migrations)")
    if r.safety_backup:
        lines.append(f"safety      {r.safety_backup} (the database as it was before)")
    if r.aside:
        lines.append(f"kept aside  database {r.aside} (could not be saved; drop it by hand)")
    return "\n".join(lines + _logs(r))


def describe_restore(r: RestoreResult) -> str:
    """The restore's outcome for people."""
    lines = [r.message]
    if r.outcome == DONE:
        lines.append(f"restored    {r.restored}")
    if r.safety_backup:
        lines.append(f"safety      {r.safety_backup} (the database as it was before)")
    if r.left_aside:
        lines.append(f"left aside  {', '.join(r.left_aside)} (could not drop them; drop by hand)")
    return "\n".join(lines + _logs(r))
