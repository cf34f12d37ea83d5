"""What every phase task shares: one session per host per run, and how errors end a task."""

from __future__ import annotations

import functools
import inspect
import sys
import time

from fabric import Connection
from invoke import Exit, Task, task

from ..config import Settings, from_context
from ..conventions import with_fabric_defaults
from ..errors import INTERRUPTED, ConfigError, MaintError
from ..fleet import inventory_member
from ..output import Headers, document, print_json
from ..remote import Session, host_label
from ..scripts.base import install_inputs
from ..scripts.preflight import PREFLIGHT, PreflightInputs

# One Session per (user, host, port) for the whole process: chained tasks
# (`fab -H h status backup`) reuse the connection and what earlier tasks learned.
SESSIONS: dict[tuple, Session] = {}

COMMON_HELP = {
    "dry_run": "show the plan; run only read-only scripts, change nothing",
    "json": "print one JSON document on stdout (docs/json.md); everything else to stderr",
    "scripts": "also print every script behind the plan to stderr (with --dry-run)",
}


def _target(c, settings: Settings) -> tuple[Connection, Settings, str]:
    """The connection, settings and name for the task's host: an inventory name given with
    -H is looked up in trigger.hosts and gets that entry's host and settings."""
    name = getattr(c, "original_host", None) or getattr(c, "host", "")
    label = host_label(c)
    if name in settings.hosts:
        member = inventory_member(name, settings.hosts[name], settings)
        c, settings, label = Connection(member.host, config=c.config), member.settings, name
    timeouts = c.config.get("timeouts", {})
    connect = c.connect_kwargs.get("timeout") or c.connect_timeout or timeouts.get("connect")
    return c, with_fabric_defaults(settings, connect, timeouts.get("command"),
                                   dict(c.ssh_config)), label


def session_for(c, dry_run: bool = False, json_output: bool = False, scripts: bool = False,
                **overrides) -> Session:
    """The session for the task's connection `c`, created on first use."""
    if getattr(c, "host", None) is None:
        raise ConfigError("no host given: use -H user@host (or an inventory name from "
                          "trigger.hosts)")
    key = (getattr(c, "user", None), getattr(c, "host", None), getattr(c, "port", None))
    session = SESSIONS.get(key)
    if session is None:
        connection, settings, label = _target(c, from_context(c, **overrides))
        session = Session(connection, settings, dry_run=dry_run, json_output=json_output,
                          show_scripts=scripts)
        session.label = label
        SESSIONS[key] = session
    else:
        session.dry_run = session.dry_run or dry_run
        session.json_output = session.json_output or json_output
        session.show_scripts = session.show_scripts or scripts
        if any(value is not None for value in overrides.values()):
            _, session.settings, _ = _target(c, from_context(c, **overrides))
    return session


def run_preflight(session):
    """Phase 0 on the session's host; kept until a change makes it stale."""
    found = session.facts.get("preflight")
    if found is None:
        s = session.settings
        found = session.run(PREFLIGHT, PreflightInputs(install_inputs(s), session.label,
                                                       s.backup_dir))
        session.facts["preflight"] = found
    return found


def fail(c, exc: BaseException, json_output: bool, task_name: str) -> Exit:
    """Report `exc` as one line (and as a JSON document under --json); the Exit to raise."""
    label = host_label(c) if getattr(c, "host", None) else None
    if isinstance(exc, KeyboardInterrupt):
        message = f"{label or 'trigger-maint'}: interrupted; the host's scripts stopped and " \
                  "cleaned up (a change under way goes on on the host)"
        code = INTERRUPTED
    else:
        message, code = str(exc), exc.exit_code
    if json_output:
        print_json(document(task_name, label, code, {"error": message}))
    sys.stderr.write(f"trigger-maint: {message}\n")
    return Exit(code=code)


# One short flag, one meaning, in every task that has the option (docs/flags in README);
# every other option has its long name only.
SHORT_FLAGS = {
    "dry_run": "d", "json": "j", "scripts": "s", "yes": "y", "target": "t", "ack": "a",
    "reboot": "r", "no_update": "n", "update_only_security": "u", "group": "g",
    "parallel": "p", "canary": "c",
}
INT_FLAGS = frozenset({"parallel", "canary", "observe_seconds", "last"})


class PhaseTask(Task):
    """A task whose short flags come from SHORT_FLAGS (never picked by Invoke) and whose
    numeric options are typed (--parallel=INT, not =STRING)."""

    def __init__(self, *args, **kwargs):
        kwargs["auto_shortflags"] = False
        super().__init__(*args, **kwargs)

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, taken_names)
        if name in SHORT_FLAGS:
            opts["names"] = [*opts["names"], SHORT_FLAGS[name]]
        if name in INT_FLAGS:
            opts["kind"] = int
        return opts


def phase_task(help: dict | None = None, **task_kwargs):
    """A Fabric task whose MaintError / Ctrl-C ends in one line and a documented exit code."""

    def decorate(func):
        name = task_kwargs.get("name") or func.__name__.replace("_", "-")

        @functools.wraps(func)
        def wrapper(c, *args, **kwargs):
            label = host_label(c) if getattr(c, "host", None) else "trigger-maint"
            started = time.monotonic()

            def footer(code: int) -> None:
                if Headers.on:
                    sys.stderr.write(f"{label} | == {name}: exit {code} in "
                                     f"{time.monotonic() - started:.1f} s\n")

            if Headers.on:
                sys.stderr.write(f"{label} | == {name}\n")
            try:
                done = func(c, *args, **kwargs)
            except Exit as exc:
                if not Headers.on:
                    raise
                if exc.message:
                    sys.stderr.write(f"{exc.message}\n")
                footer(exc.code)
                raise Exit(code=exc.code) from None
            except (MaintError, KeyboardInterrupt) as exc:
                ended = fail(c, exc, bool(kwargs.get("json")), name)
                footer(ended.code)
                raise ended from None
            footer(0)
            return done

        params = inspect.signature(func).parameters
        common = {k: v for k, v in COMMON_HELP.items() if k in params}
        return task(wrapper, help={**common, **(help or {})}, klass=PhaseTask, **task_kwargs)

    return decorate


def check_exit(session, code: int, message: str) -> None:
    """End the task with `code` (after its document was shown), saying why on stderr."""
    if code:
        raise Exit(f"trigger-maint: {session.label}: {message}", code=code)
