"""How a StatusReport reads: the runbook's summary block, the table of checks, the verdict,
JSON (pure). The summary block is the same in `status` and at the end of `maintain`."""

from __future__ import annotations

import os
import textwrap

from .checks import FAIL, OK, SEVERITY, UNKNOWN, WARN, Check, StatusReport
from .units import v

STATE_LABELS = {OK: "ok", WARN: "WARN", FAIL: "FAIL", UNKNOWN: "UNKNOWN"}
COLOURS = {OK: "32", WARN: "33", FAIL: "31", UNKNOWN: "35"}  # ANSI: green, yellow, red, magenta

LABELS = {
    "en": {"host": "Host", "version": "Version", "containers": "Containers", "disk": "Disk",
           "certificate": "Certificate valid until", "backup": "Last backup",
           "reboot": "Reboot needed", "update": "Update available", "result": "Result",
           "yes": "yes", "no": "no", "unknown": "unknown", "of": "of", "not_checked":
           "not checked (no trigger.domain, no certbot)", "research": "not checked (run "
           "research)"},
    "nl": {"host": "Host", "version": "Versie", "containers": "Containers", "disk": "Disk",
           "certificate": "Certificaat geldig tot", "backup": "Laatste backup",
           "reboot": "Reboot nodig", "update": "Update beschikbaar", "result": "Resultaat",
           "yes": "ja", "no": "nee", "unknown": "onbekend", "of": "van", "not_checked":
           "niet gecontroleerd (geen trigger.domain, geen certbot)", "research":
           "niet gecontroleerd (draai research)"},
}


def _with_reason(check: Check | None, w: dict) -> str:
    """A check's value, and why it is not ok when it is not."""
    if check is None:
        return w["unknown"]
    text = check.value or STATE_LABELS[check.state].lower()
    return f"{text} ({check.detail})" if check.state in (FAIL, UNKNOWN) and check.detail else text


def containers_line(report: StatusReport, w: dict) -> str:
    rows = report.named("containers")
    if not rows:
        return w["unknown"]
    good = sum(c.state == OK for c in rows)
    bad = [f"{c.item} {c.value}".strip() for c in rows if c.state != OK]
    return f"{good} {w['of']} {len(rows)} ok" + (f"; {'; '.join(bad)}" if bad else "")


def disk_line(report: StatusReport, w: dict) -> str:
    parts = [f"{c.item} {c.data['percent']}%" if "percent" in c.data
             else f"{c.item or '?'} {w['unknown']}" for c in report.named("disk")]
    return ", ".join(parts) or w["unknown"]


def certificate_line(report: StatusReport, w: dict) -> str:
    rows = report.named("certificate")
    if not rows:
        return w["not_checked"]
    # The worst certificate first; among equals the nearest expiry.
    first = min(rows, key=lambda c: (-SEVERITY[c.state], c.data.get("expires") or ""))
    when = (first.data.get("expires") or "")[:10]
    if first.state == OK and when:
        return f"{when} ({first.item})"
    return f"{first.item}: {_with_reason(first, w)}"


def version_lines(report: StatusReport, w: dict) -> tuple[str, str]:
    """The running version, and whether an update is available (research's answer)."""
    check = report.first("version")
    data = check.data if check is not None else {}
    running = v(data.get("running")) or w["unknown"]
    if data.get("update_available") is None:
        return running, w["research"] if data.get("running") else w["unknown"]
    if data["update_available"]:
        return running, f"{w['yes']} ({v(data.get('latest'))})"
    return running, w["no"]


def reboot_line(report: StatusReport, w: dict) -> str:
    check = report.first("reboot")
    required = check.data.get("required") if check is not None else None
    return w["unknown"] if required is None else w["yes"] if required else w["no"]


def summary(report: StatusReport, lang: str = "en") -> list[tuple[str, str]]:
    """The runbook's summary block: (label, value) lines."""
    w = LABELS[lang]
    running, update = version_lines(report, w)
    return [
        (w["host"], report.host),
        (w["version"], running),
        (w["containers"], containers_line(report, w)),
        (w["disk"], disk_line(report, w)),
        (w["certificate"], certificate_line(report, w)),
        (w["backup"], _with_reason(report.first("backup"), w)),
        (w["reboot"], reboot_line(report, w)),
        (w["update"], update),
    ]


def block(lines: list[tuple[str, str]]) -> str:
    """Summary lines as an aligned `label: value` block."""
    width = max(len(label) for label, _ in lines) + 1
    return "\n".join(f"{label + ':':<{width}} {value}" for label, value in lines)


def colour_wanted(stream) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def _state(check: Check, colour: bool) -> str:
    label = STATE_LABELS[check.state]
    return f"\x1b[{COLOURS[check.state]}m{label}\x1b[0m" if colour else label


def table(checks, width: int = 100, colour: bool = False) -> str:
    """Every check as an aligned table within `width` columns: the detail column wraps in
    the room left; when too little is left, the value goes on and the threshold and detail
    move to wrapped lines below their row."""
    rows = [(c, c.label, c.value or "-", c.threshold or "-", c.detail) for c in checks]
    w_state = max([5] + [len(STATE_LABELS[c.state]) for c in checks])
    w_check = max([len("CHECK")] + [len(r[1]) for r in rows])
    w_value = max([len("VALUE")] + [len(r[2]) for r in rows])
    w_thr = max([len("THRESHOLD")] + [len(r[3]) for r in rows])
    left = width - (w_state + w_check + w_value + w_thr + 8)
    lines = []
    if left >= 30:
        indent = " " * (width - left)
        lines.append(f"{'STATE':{w_state}}  {'CHECK':{w_check}}  {'VALUE':{w_value}}  "
                     f"{'THRESHOLD':{w_thr}}  DETAIL")
        for check, name, value, threshold, detail in rows:
            pad = " " * (w_state - len(STATE_LABELS[check.state]))
            wrapped = textwrap.wrap(detail, left) or [""]
            lines.append(f"{_state(check, colour)}{pad}  {name:{w_check}}  {value:{w_value}}  "
                         f"{threshold:{w_thr}}  {wrapped[0]}".rstrip())
            lines += [indent + more for more in wrapped[1:]]
        return "\n".join(lines) + "\n"
    lines.append(f"{'STATE':{w_state}}  {'CHECK':{w_check}}  VALUE")
    indent = " " * (w_state + 4)
    room = max(20, width - (w_state + w_check + 4))
    for check, name, value, threshold, detail in rows:
        pad = " " * (w_state - len(STATE_LABELS[check.state]))
        values = textwrap.wrap(value, room) or [""]
        lines.append(f"{_state(check, colour)}{pad}  {name:{w_check}}  {values[0]}".rstrip())
        lines += [" " * (w_state + w_check + 4) + more for more in values[1:]]
        extra = "; ".join(x for x in (f"threshold {threshold}" if check.state != OK and
                                      threshold != "-" else "", detail) if x)
        lines += textwrap.wrap(extra, width=max(40, width), initial_indent=indent,
                               subsequent_indent=indent)
    return "\n".join(lines) + "\n"


def verdict(report: StatusReport) -> str:
    """One line: ok, or what failed and what could not be measured."""
    failed = [c.label for c in report.checks if c.state == FAIL]
    unknown = [c.label for c in report.checks if c.state == UNKNOWN]
    warned = [c.label for c in report.checks if c.state == WARN]
    parts = []
    if failed:
        parts.append(f"{len(failed)} failed ({', '.join(failed)})")
    if unknown:
        parts.append(f"{len(unknown)} unknown ({', '.join(unknown)})"
                     + (", allowed" if report.allow_unknown else ""))
    if warned:
        parts.append(f"{len(warned)} warning{'s' if len(warned) != 1 else ''}")
    head = "ok" if report.ok else "NOT OK"
    counted = f"status {head}: {len(report.checks)} checks"
    return counted + (f", {'; '.join(parts)}" if parts else "")


def text(report: StatusReport, lang: str = "en", width: int = 100,
         colour: bool = False) -> str:
    """The summary block, the table and the verdict, for people."""
    return (block(summary(report, lang)) + "\n\n" + table(report.checks, width, colour) + "\n"
            + verdict(report))


def to_json(report: StatusReport) -> dict:
    """The same as data: summary, checks (stable names, items, measured data), verdict."""
    return {
        "worst": report.worst,
        "allow_unknown": report.allow_unknown,
        "backup_dir": report.backup_dir,
        "summary": {label: value for label, value in summary(report)},
        "verdict": verdict(report),
        "checks": [{"name": c.name, "item": c.item, "state": c.state, "value": c.value,
                    "threshold": c.threshold, "detail": c.detail, "data": c.data}
                   for c in report.checks],
    }
