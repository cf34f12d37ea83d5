"""How a StatusReport reads: the runbook's summary block, the table of checks, JSON (pure)."""

from __future__ import annotations

from .checks import FAIL, OK, SEVERITY, UNKNOWN, WARN, Check, StatusReport

STATE_LABELS = {OK: "ok", WARN: "WARN", FAIL: "FAIL", UNKNOWN: "UNKNOWN"}


def _named(report: StatusReport, prefix: str) -> list[Check]:
    return [c for c in report.checks if c.name == prefix or c.name.startswith(prefix + " ")]


def _containers_line(checks: list[Check]) -> str:
    rows = [c for c in checks if c.name.startswith("container ")]
    if not rows:
        return "unknown"
    good = sum(c.state == OK for c in rows)
    text = f"{good} of {len(rows)} ok"
    bad = [f"{c.name.removeprefix('container ')} {c.value}" for c in rows if c.state != OK]
    return text + (f"; {'; '.join(bad)}" if bad else "")


def _with_reason(check: Check | None) -> str:
    """A check's value, and why it is not ok when it is not."""
    if check is None:
        return "unknown"
    text = check.value or STATE_LABELS[check.state].lower()
    return f"{text} ({check.detail})" if check.state in (FAIL, UNKNOWN) and check.detail else text


def _certificate_line(report: StatusReport) -> str:
    rows = _named(report, "certificate")
    if not rows:
        return "not checked (no trigger.domain, no certbot)"
    # The worst certificate first; among equals the nearest expiry (ISO dates sort as text).
    first = min(rows, key=lambda c: (-SEVERITY[c.state], c.value))
    name = first.name.removeprefix("certificate ").removesuffix(" (certbot)")
    return f"{name} {_with_reason(first)}"


def summary(report: StatusReport) -> dict[str, str]:
    """The runbook's summary block: one line per topic."""
    checks = list(report.checks)
    by_name = {c.name: c for c in checks}
    disks = [f"{c.name.removeprefix('disk ')} {c.value.split(',')[0]}" if c.value
             else f"{c.name.removeprefix('disk ')} unknown" for c in _named(report, "disk")]
    reboot = by_name.get("reboot")
    version = by_name.get("version")
    update = "unknown"
    if version is not None and version.value:
        update = ("yes: " + version.value if "available" in version.value
                  else "no" if "up to date" in version.value
                  else f"not checked (running {version.value}; run research)")
    return {
        "containers": _containers_line(checks),
        "disk": ", ".join(disks) or "unknown",
        "certificate": _certificate_line(report),
        "last backup": _with_reason(by_name.get("backup")),
        "reboot needed": ("unknown" if reboot is None or reboot.state == UNKNOWN
                          else "yes" if reboot.value == "required" else "no"),
        "update available": update,
    }


def table(checks: list[Check] | tuple[Check, ...]) -> str:
    """Every check as an aligned table; the detail column is last and not padded."""
    header = ("STATE", "CHECK", "VALUE", "THRESHOLD", "DETAIL")
    rows = [header] + [(STATE_LABELS[c.state], c.name, c.value or "-", c.threshold or "-",
                        c.detail) for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "".join(
        ("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
         + "  " + row[4]).rstrip() + "\n"
        for row in rows)


def verdict(report: StatusReport) -> str:
    """One line: ok, or what failed and what could not be measured."""
    failed = [c.name for c in report.checks if c.state == FAIL]
    unknown = [c.name for c in report.checks if c.state == UNKNOWN]
    warned = [c.name for c in report.checks if c.state == WARN]
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


def text(report: StatusReport) -> str:
    """The summary block, the table and the verdict, for people."""
    block = summary(report)
    width = max(len(key) for key in block)
    lines = [f"{key.ljust(width)}  {value}" for key, value in block.items()]
    return "\n".join(lines) + "\n\n" + table(report.checks) + "\n" + verdict(report)


def to_json(report: StatusReport) -> dict:
    """The same as data: summary, checks and the verdict."""
    return {
        "host": report.host,
        "ok": report.ok,
        "worst": report.worst,
        "allow_unknown": report.allow_unknown,
        "summary": summary(report),
        "checks": [{"name": c.name, "state": c.state, "value": c.value,
                    "threshold": c.threshold, "detail": c.detail} for c in report.checks],
    }
