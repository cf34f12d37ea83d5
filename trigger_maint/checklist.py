"""The runbook's monthly checklist, ticked from what a maintain run measured.

Pure: a `MaintainRun` (maintaining.py) in, a `Checklist` and its renderings (text,
Markdown, JSON, history entry) out, in English or in the runbook's own Dutch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from . import status_report
from .maintaining import MaintainRun, Outcome, state_of
from .output import plain
from .units import size as human_bytes
from .units import v as version

IMAGE_KINDS = ("image", "tag")  # cleanup items that are images (the rest: containers, backups)

ITEMS = ("research", "containers", "disk", "certificate", "backup", "update", "reboot",
         "images")

WORDS = {
    "en": {
        "title": "Monthly checklist",
        "summary": "Summary",
        "phases": "Phases",
        "report": "Maintenance report",
        "research": "Research done",
        "containers": "All containers running",
        "disk": "Disk < {threshold}%",
        "certificate": "Certificate valid",
        "backup": "Backup made and verified",
        "update": "Update done (if available)",
        "reboot": "Reboot done (if needed)",
        "images": "Images cleaned up",
        "host": "Host",
        "version": "Version",
        "cert_until": "Certificate valid until",
        "last_backup": "Last backup",
        "reboot_needed": "Reboot needed",
        "update_available": "Update available",
        "result": "Result",
        "yes": "yes",
        "no": "no",
        "unknown": "unknown",
        "all_ticked": "all boxes ticked",
        "open": "{n} of {total} boxes open",
        "exit": "exit code {code}",
        "dry_run": "dry run: nothing was changed",
        "plan": "Plan (dry run)",
        "not_run": "not run",
        "running_latest": "running {running}, newest {latest}",
        "advisories_none": "no advisory affects {running}",
        "advisories": "{n} advisory(ies) affect {running}: {ids}",
        "advisories_unchecked": "advisories not checked ({why})",
        "no_update": "no update available",
        "updated": "updated {old} -> {new}",
        "not_updated": "{target} available, not installed: {why}",
        "update_failed": "{target} not installed: {why}",
        "not_needed": "not needed",
        "rebooted": "rebooted (boot id {old} -> {new})",
        "reboot_open": "needed, not done: {why}",
        "verified": "{name}, {size}, verified",
        "guard": "guard dump {name}, a database rollback would lose the {window}",
        "not_verified": "{name}, {size}, NOT verified",
        "pruned": "{n} image(s) removed, {size} freed in total",
        "running_count": "{n}/{total} running",
        "valid_until": "valid until {date}",
        "cert_unchecked": "not checked (no trigger.domain, no certbot)",
        "phase": "phase",
        "outcome": "result",
        "seconds": "seconds",
        "what": "what happened",
    },
    "nl": {
        "title": "Maandelijkse checklist",
        "summary": "Samenvatting",
        "phases": "Fasen",
        "report": "Onderhoudsrapport",
        "research": "Research gedaan",
        "containers": "Alle containers draaien",
        "disk": "Disk < {threshold}%",
        "certificate": "Certificaat geldig",
        "backup": "Backup gemaakt en geverifieerd",
        "update": "Update uitgevoerd (indien beschikbaar)",
        "reboot": "Reboot uitgevoerd (indien nodig)",
        "images": "Images opgeschoond",
        "host": "Host",
        "version": "Versie",
        "cert_until": "Certificaat geldig tot",
        "last_backup": "Laatste backup",
        "reboot_needed": "Reboot nodig",
        "update_available": "Update beschikbaar",
        "result": "Resultaat",
        "yes": "ja",
        "no": "nee",
        "unknown": "onbekend",
        "all_ticked": "alle punten afgevinkt",
        "open": "{n} van {total} punten open",
        "exit": "exitcode {code}",
        "dry_run": "proefrun: er is niets veranderd",
        "plan": "Plan (proefrun)",
        "not_run": "niet uitgevoerd",
        "running_latest": "draait {running}, nieuwste {latest}",
        "advisories_none": "geen advisory raakt {running}",
        "advisories": "{n} advisory(s) raken {running}: {ids}",
        "advisories_unchecked": "advisories niet gecontroleerd ({why})",
        "no_update": "geen update beschikbaar",
        "updated": "bijgewerkt {old} -> {new}",
        "not_updated": "{target} beschikbaar, niet geïnstalleerd: {why}",
        "update_failed": "{target} niet geïnstalleerd: {why}",
        "not_needed": "niet nodig",
        "rebooted": "herstart (boot id {old} -> {new})",
        "reboot_open": "nodig, niet gedaan: {why}",
        "verified": "{name}, {size}, geverifieerd",
        "guard": "guard dump {name}, een database-rollback verliest de {window}",
        "not_verified": "{name}, {size}, NIET geverifieerd",
        "pruned": "{n} image(s) verwijderd, {size} vrijgemaakt in totaal",
        "running_count": "{n}/{total} draaien",
        "valid_until": "geldig tot {date}",
        "cert_unchecked": "niet gecontroleerd (geen trigger.domain, geen certbot)",
        "phase": "fase",
        "outcome": "resultaat",
        "seconds": "seconden",
        "what": "wat er gebeurde",
    },
}


@dataclass(frozen=True)
class Item:
    """One checklist box: ticked or not, and what was measured."""

    key: str
    text: str
    ticked: bool
    note: str


@dataclass(frozen=True)
class Checklist:
    """The monthly checklist of one run, with the runbook's summary block."""

    host: str
    lang: str
    title: str
    items: tuple[Item, ...]
    summary: tuple[tuple[str, str], ...]  # (label, value) lines of the summary block

    @property
    def complete(self) -> bool:
        return all(item.ticked for item in self.items)

    @property
    def open(self) -> list[Item]:
        return [item for item in self.items if not item.ticked]


class _Facts:
    """What the checklist reads from a run, each phase's result looked up once."""

    def __init__(self, run: MaintainRun):
        self.run = run
        # The final status decides; it may have "failed" (checks failed) and still measured.
        final = run.step("final_status")
        measured = final is not None and final.result is not None
        self.status_step = final if measured else run.step("status")
        self.status = self.status_step.result if self.status_step is not None else None
        self.research = run.result("research")

    def checks(self, name: str) -> list:
        """Status checks of one name (e.g. every "disk" check, one per mount)."""
        return self.status.named(name) if self.status is not None else []

    def certificate_expiry(self) -> str:
        """The nearest expiry date (YYYY-MM-DD) of the certificates status measured, or ""."""
        dates = sorted((c.data.get("expires") or "")[:10] for c in self.checks("certificate")
                       if c.data.get("expires"))
        return dates[0] if dates else ""

    def state(self, name: str) -> str:
        found = self.checks(name)
        return state_of(found[0]) if found else ""

    def running_before(self) -> str:
        preflight = self.run.result("preflight")
        running = getattr(getattr(preflight, "installation", None), "running", None)
        return version(running) or version(getattr(self.research, "running", None))

    def running_after(self) -> str:
        update = self.run.result("update")
        if update is not None and getattr(update, "changed", False):
            return version(update.to_version)
        return self.running_before()


def _why(step, w: dict) -> str:
    """Why a phase did not succeed, in one line."""
    if step is None:
        return w["not_run"]
    if step.outcome is Outcome.PLANNED:
        return w["dry_run"]
    return step.reason or step.summary or step.outcome.value


def _research(f: _Facts, w: dict) -> tuple[bool, str]:
    r = f.research
    if r is None:
        return False, _why(f.run.step("research"), w)
    running = version(r.running) or w["unknown"]
    parts = [w["running_latest"].format(running=running,
                                        latest=version(r.latest) or w["unknown"])]
    if not r.advisories_checked:
        parts.append(w["advisories_unchecked"].format(why=f"--target {version(r.target)}"))
    elif r.advisories:
        parts.append(w["advisories"].format(n=len(r.advisories), running=running,
                                            ids=", ".join(a.id for a in r.advisories)))
    else:
        parts.append(w["advisories_none"].format(running=running))
    return r.running is not None and r.advisories_checked, "; ".join(parts)


def _not_measured(f: _Facts, w: dict) -> str:
    return _why(f.status_step, w) if f.status is None else w["unknown"]


def _containers(f: _Facts, w: dict) -> tuple[bool, str]:
    rows = f.checks("containers")
    if not rows:
        return False, _not_measured(f, w)
    up = [c for c in rows if state_of(c) in ("ok", "warn")]
    note = w["running_count"].format(n=len(up), total=len(rows))
    bad = [f"{c.item} {c.value or c.detail}".strip() for c in rows if c not in up]
    return len(up) == len(rows), "; ".join([note, *bad])


def _disk(f: _Facts, w: dict) -> tuple[bool, str]:
    rows = f.checks("disk")
    if not rows:
        return False, _not_measured(f, w)
    used = [f"{c.item or '?'} {c.data['percent']}%" if "percent" in c.data
            else f"{c.item or '?'} {w['unknown']}" for c in rows]
    return all(state_of(c) == "ok" for c in rows), ", ".join(used)


def _certificate(f: _Facts, w: dict) -> tuple[bool, str]:
    rows = f.checks("certificate")
    if not rows:
        return False, _not_measured(f, w) if f.status is None else w["cert_unchecked"]
    expiry = f.certificate_expiry()
    ticked = all(state_of(c) in ("ok", "warn") for c in rows)
    note = w["valid_until"].format(date=expiry) if expiry else w["unknown"]
    bad = [f"{c.label}: {c.detail or c.value}" for c in rows
           if state_of(c) not in ("ok", "warn")]
    return ticked, "; ".join([note, *bad])


def _backup(f: _Facts, w: dict) -> tuple[bool, str]:
    step = f.run.step("backup")
    backup = step.result if step is not None else None
    if backup is None:
        return False, _why(step, w)
    key = "verified" if backup.verified else "not_verified"
    return bool(backup.verified), w[key].format(name=backup.name, size=human_bytes(backup.size))


def _update(f: _Facts, w: dict) -> tuple[bool, str]:
    step = f.run.step("update")
    r = f.research
    target = version(f.run.policy.target or getattr(r, "target", None))
    if step is not None and step.ok:
        result = step.result
        if getattr(result, "changed", False):
            note = w["updated"].format(old=version(result.from_version),
                                       new=version(result.to_version))
            guard = getattr(result, "guard", None)
            if guard is not None:
                note += "; " + w["guard"].format(name=guard.name, window=guard.window)
            return True, note
    if step is not None and step.outcome is Outcome.FAILED:
        return False, w["update_failed"].format(target=target or "?", why=step.reason)
    if not target:
        if r is None:
            return False, _why(f.run.step("research"), w)
        return True, w["no_update"]
    if step is not None and step.ok:  # ran, nothing to change: already on the target
        return True, w["no_update"]
    return False, w["not_updated"].format(target=target, why=_why(step, w))


def _reboot(f: _Facts, w: dict) -> tuple[bool, str]:
    step = f.run.step("reboot")
    result = step.result if step is not None else None  # done, even if verify then failed
    if result is not None and getattr(result, "done", False):
        note = w["rebooted"].format(old=result.old_boot_id[:8], new=result.new_boot_id[:8])
        return True, note + (f"; {step.reason}" if step.reason else "")
    state = f.state("reboot")
    if (result is not None and not getattr(result, "required", False)) or state == "ok":
        return True, w["not_needed"]
    if not state:
        return False, _why(step, w)
    return False, w["reboot_open"].format(why=_why(step, w))


def _images(f: _Facts, w: dict) -> tuple[bool, str]:
    step = f.run.step("cleanup")
    result = f.run.result("cleanup")
    if result is None or not result.applied:
        return False, _why(step, w)
    left = [r for r in result.left if r.item.kind in IMAGE_KINDS]
    refused = [line for line in result.plan.refused if line.startswith("images")]
    removed = [r for r in result.removed if r.item.kind in IMAGE_KINDS]
    note = w["pruned"].format(n=len(removed), size=human_bytes(result.freed_bytes))
    if refused or left:
        return False, "; ".join([note, *refused, *(f"{r.item.name}: {r.reason}" for r in left)])
    return True, note


def build(run: MaintainRun, disk_threshold: int) -> Checklist:
    """The checklist for `run` in the run's language; `disk_threshold` is the warn percent."""
    w = WORDS[run.policy.lang]
    f = _Facts(run)
    judged = {
        "research": _research(f, w),
        "containers": _containers(f, w),
        "disk": _disk(f, w),
        "certificate": _certificate(f, w),
        "backup": _backup(f, w),
        "update": _update(f, w),
        "reboot": _reboot(f, w),
        "images": _images(f, w),
    }
    items = tuple(Item(key, w[key].format(threshold=disk_threshold), *judged[key])
                  for key in ITEMS)
    return Checklist(host=run.host, lang=run.policy.lang, title=w["title"], items=items,
                     summary=_summary(run, f, w, items))


def _summary(run: MaintainRun, f: _Facts, w: dict, items: tuple[Item, ...]) -> tuple:
    """The same summary block as `status` (from the last status measured), with the version
    change of this run and the checklist's result."""
    before, after = f.running_before(), f.running_after()
    versions = before if before == after else f"{before or w['unknown']} -> {after}"
    if f.status is not None:
        lines = status_report.summary(f.status, run.policy.lang)
    else:
        labels = status_report.LABELS[run.policy.lang]
        lines = [(labels["host"], run.host), (labels["version"], "")]
    labels = status_report.LABELS[run.policy.lang]
    lines = [(label, versions or w["unknown"]) if label == labels["version"] else (label, value)
             for label, value in lines]
    open_items = [item for item in items if not item.ticked]
    result = w["all_ticked"] if not open_items else w["open"].format(
        n=len(open_items), total=len(items))
    return tuple(lines) + ((labels["result"], result),)


def summary_block(checklist: Checklist) -> str:
    """The runbook's summary block: one aligned `label: value` line each."""
    width = max(len(label) for label, _ in checklist.summary) + 1
    return "\n".join(f"{label + ':':<{width}} {value}" for label, value in checklist.summary)


def failures(run: MaintainRun) -> list[str]:
    """One line per phase that failed: phase, exit code, reason."""
    return [f"{s.phase} failed (exit {s.code}): {s.reason}" for s in run.steps
            if s.outcome is Outcome.FAILED]


def verdict(run: MaintainRun, checklist: Checklist) -> str:
    """The run in one line: what failed first, else which boxes are open, else ok."""
    failed = failures(run)
    if failed:
        return failed[0] + (f" (+{len(failed) - 1} more)" if len(failed) > 1 else "")
    open_items = checklist.open
    if open_items:
        return "checklist not complete: " + "; ".join(
            f"{i.key} ({i.note})" for i in open_items)
    return "ok"


def text(run: MaintainRun, checklist: Checklist) -> str:
    """What the terminal shows at the end of a run: summary block, checklist, failures."""
    w = WORDS[checklist.lang]
    lines = [summary_block(checklist), "", checklist.title]
    lines += [f"  [{'x' if i.ticked else ' '}] {i.text}" + (f" - {i.note}" if i.note else "")
              for i in checklist.items]
    if run.policy.dry_run:
        lines += ["", w["plan"]]
        lines += [f"  {s.phase:13} {s.outcome.value:8} {s.summary or s.reason}"
                  for s in run.steps]
    lines += [""] + failures(run) if failures(run) else []
    tail = w["exit"].format(code=run.exit_code)
    if run.policy.dry_run:
        tail = f"{w['dry_run']}; {tail}"
    return "\n".join(lines + ["", tail])


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def markdown(run: MaintainRun, checklist: Checklist) -> str:
    """The report file for people: summary block, checklist with boxes, phase table."""
    w = WORDS[checklist.lang]
    when = run.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# {w['report']}: {run.host}, {when}", "", f"## {w['summary']}", "", "```",
             summary_block(checklist), "```", "", f"## {checklist.title}", ""]
    lines += [f"- [{'x' if i.ticked else ' '}] {i.text}" + (f" — {i.note}" if i.note else "")
              for i in checklist.items]
    lines += ["", f"## {w['phases']}", "",
              f"| {w['phase']} | {w['outcome']} | {w['seconds']} | {w['what']} |",
              "|---|---|---|---|"]
    for step in run.steps:
        what = step.summary if step.ok else (step.reason or step.summary)
        lines.append(f"| {step.phase} | {step.outcome.value} | {step.duration:.1f} "
                     f"| {_cell(what)} |")
    lines += ["", w["exit"].format(code=run.exit_code), ""]
    return "\n".join(lines)


def document(run: MaintainRun, checklist: Checklist) -> dict:
    """The run as data (the JSON report and `maintain --json`)."""
    return {
        "host": run.host,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "exit_code": run.exit_code,
        "ok": run.exit_code == 0,
        "dry_run": run.policy.dry_run,
        "policy": plain(run.policy),
        "lang": checklist.lang,
        "checklist": {"title": checklist.title, "complete": checklist.complete,
                      "items": [plain(item) for item in checklist.items]},
        "summary": [{"label": label, "value": value} for label, value in checklist.summary],
        "steps": [{"phase": s.phase, "outcome": s.outcome.value, "code": s.code,
                   "reason": s.reason, "summary": s.summary,
                   "duration": round(s.duration, 3), "result": plain(s.result)}
                  for s in run.steps],
    }


def report_stem(host: str, when: datetime) -> str:
    """The report file name without extension: host and UTC time, safe on any filesystem."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", host).strip("-.") or "host"
    return f"{slug}-{when.astimezone(UTC):%Y%m%d-%H%M%S}"


def history_entry(run: MaintainRun, checklist: Checklist, files: dict) -> dict:
    """One line of the history index: enough to list runs without opening the reports."""
    f = _Facts(run)
    return {
        "host": run.host,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "exit_code": run.exit_code,
        "version_before": f.running_before(),
        "version_after": f.running_after(),
        "ticked": sum(item.ticked for item in checklist.items),
        "total": len(checklist.items),
        "open": [item.key for item in checklist.open],
        "changed": changed(run),
        "files": files,
    }


def changed(run: MaintainRun) -> list[str]:
    """What this run changed on the host that an operator would want to hear about."""
    found = []
    update = run.step("update")
    if update is not None and update.ok and getattr(update.result, "changed", False):
        found.append("update")
    elif update is not None and update.outcome is Outcome.FAILED:
        found.append("update failed")
    reboot = run.result("reboot")
    if reboot is not None and getattr(reboot, "done", False):
        found.append("reboot")
    return found


def _iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
