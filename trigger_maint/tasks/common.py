"""What every phase task shares: one session per host per run, and how errors end a task."""

from __future__ import annotations

import functools
import sys

from invoke import Exit, task

from ..config import from_context
from ..errors import INTERRUPTED, MaintError
from ..output import print_json
from ..remote import Session, host_label

# One Session per (user, host, port) for the whole process: chained tasks
# (`fab -H h status backup`) reuse the connection and what earlier tasks learned.
SESSIONS: dict[tuple, Session] = {}

COMMON_HELP = {
    "dry_run": "print every script; run only read-only ones",
    "json": "print the result as JSON on stdout",
}


def session_for(c, dry_run: bool = False, json_output: bool = False, **overrides) -> Session:
    """The session for the task's connection `c`, created on first use."""
    key = (getattr(c, "user", None), getattr(c, "host", None), getattr(c, "port", None))
    session = SESSIONS.get(key)
    if session is None:
        if getattr(c, "host", None) is None:
            raise MaintError("no host given: use -H user@host (or trigger.hosts in fabric.yaml)")
        session = Session(c, from_context(c, **overrides), dry_run=dry_run,
                          json_output=json_output)
        SESSIONS[key] = session
    else:
        session.dry_run = session.dry_run or dry_run
        session.json_output = session.json_output or json_output
        if any(value is not None for value in overrides.values()):
            session.settings = from_context(c, **overrides)
    return session


def fail(c, exc: BaseException, json_output: bool) -> Exit:
    """Report `exc` as one line (and as JSON under --json); the Exit to raise."""
    label = host_label(c) if getattr(c, "host", None) else "trigger-maint"
    if isinstance(exc, KeyboardInterrupt):
        message, code = f"{label}: interrupted; the host's scripts stopped and cleaned up", \
            INTERRUPTED
    else:
        message, code = str(exc), exc.exit_code
    if json_output:
        print_json({"ok": False, "host": label, "error": message, "exit_code": code})
    sys.stderr.write(f"trigger-maint: {message}\n")
    return Exit(code=code)


def phase_task(help: dict | None = None, **task_kwargs):
    """A Fabric task whose MaintError / Ctrl-C ends in one line and a documented exit code."""

    def decorate(func):
        @functools.wraps(func)
        def wrapper(c, *args, **kwargs):
            try:
                return func(c, *args, **kwargs)
            except (MaintError, KeyboardInterrupt) as exc:
                raise fail(c, exc, bool(kwargs.get("json"))) from None

        return task(wrapper, help={**COMMON_HELP, **(help or {})}, **task_kwargs)

    return decorate
