"""Reports on the machine running trigger-maint: one Markdown and one JSON file per host per
run in `trigger.report_dir`, and `history.jsonl`, the index `report` reads."""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import checklist as cl
from .checklist import Checklist
from .config import Settings
from .maintaining import MaintainRun

HISTORY = "history.jsonl"


def folder(settings: Settings) -> Path:
    """The report folder (`~` expanded), created private on first use."""
    path = Path(settings.local_path("report_dir"))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _create(path: Path, text: str) -> None:
    """Write a new file, never replacing one (FileExistsError when the name is taken)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def write(settings: Settings, run: MaintainRun, checklist: Checklist) -> dict:
    """Write the run's Markdown and JSON reports and add it to the history.

    Returns the file names written ({"markdown": path, "json": path}).
    """
    base = folder(settings)
    stem = cl.report_stem(run.host, run.started_at)
    document = json.dumps(cl.document(run, checklist), indent=2, sort_keys=True,
                          default=str) + "\n"
    for n in range(1, 100):  # two runs on one host within a second get -2, -3, ...
        name = stem if n == 1 else f"{stem}-{n}"
        paths = {"markdown": base / f"{name}.md", "json": base / f"{name}.json"}
        try:
            _create(paths["json"], document)
        except FileExistsError:
            continue
        _create(paths["markdown"], cl.markdown(run, checklist))
        break
    else:
        raise FileExistsError(f"{base / stem}.json: too many reports in the same second")
    files = {kind: str(path) for kind, path in paths.items()}
    append_history(base, cl.history_entry(run, checklist, files))
    return files


def append_history(base: Path, entry: dict) -> None:
    """Append one line in one write, so that runs on several hosts at once never mix."""
    line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(base / HISTORY, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def history(settings: Settings, host: str | None = None, last: int = 5) -> list[dict]:
    """The last `last` runs (oldest first) for `host`, or for every host when None."""
    path = Path(settings.local_path("report_dir")) / HISTORY
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a full disk: skip it, keep the rest
            continue
        if isinstance(entry, dict) and (host is None or entry.get("host") == host):
            entries.append(entry)
    return entries[-last:] if last > 0 else entries


def describe(entries: list[dict], host: str | None, where: str) -> str:
    """The `report` task's table: one run a line, newest last."""
    who = host or "any host"
    if not entries:
        return f"no maintain runs recorded for {who} in {where}"
    rows = [("started (UTC)", "host", "exit", "version", "checklist", "open", "report")]
    for e in entries:
        before, after = e.get("version_before") or "?", e.get("version_after") or "?"
        rows.append((
            (e.get("started_at") or "?").replace("T", " ").removesuffix("Z")[:19],
            e.get("host", "?"),
            str(e.get("exit_code", "?")),
            before if before == after else f"{before} -> {after}",
            f"{e.get('ticked', '?')}/{e.get('total', '?')}",
            ", ".join(e.get("open") or []) or "-",
            (e.get("files") or {}).get("markdown", ""),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
             + "  " + row[-1] for row in rows]
    return f"{len(entries)} maintain run(s) for {who}\n" + "\n".join(
        line.rstrip() for line in lines)
