"""A remote script: its template, the inputs it declares and the parser of its result.

Every script a host runs is one `Script`. It renders `templates/<template>.sh.j2` from one
frozen dataclass of inputs (never the whole settings object) and turns the JSON object the
script prints after its result marker into a typed result with `parse`.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..config import Settings
from ..hostpaths import LOCK_FILE
from ..layout import Layout, candidates
from ..render import render

R = TypeVar("R")
MARK_PREFIX = "@@trigger-maint-result-"
ALIVE = "@@trigger-maint-alive@@"  # a script's heartbeat on stderr: the link is alive


def new_marker() -> str:
    """A result marker for one run: a log line can never carry it by chance or on purpose."""
    return f"{MARK_PREFIX}{secrets.token_hex(8)}@@"


@dataclass(frozen=True)
class Script(Generic[R]):
    """One remote script; `requires` are the keys every successful result holds."""

    template: str
    inputs: type
    parse: Callable[[dict, object], R]  # (the result object, the inputs it was run with)
    requires: tuple[str, ...] = ()
    changes: bool = False  # changes the host: not run under --dry-run, cached facts go stale

    def render(self, inputs, marker: str, heartbeat: int = 0, template_dir: str = "") -> str:
        """The script text for `inputs` (an instance of `self.inputs`)."""
        if not isinstance(inputs, self.inputs):
            raise TypeError(f"{self.template}: inputs must be {self.inputs.__name__}")
        values = {f.name: getattr(inputs, f.name) for f in dataclasses.fields(inputs)}
        return render(self.template, template_dir, marker=marker, heartbeat=heartbeat,
                      lock_file=LOCK_FILE, **values)


class ResultError(ValueError):
    """A script's output holds no valid result."""


def parse_result(stdout: str, marker: str, requires: tuple[str, ...] = ()) -> dict:
    """The JSON object on the last line of `stdout`, which must start with `marker`.

    Anything else on stdout (a log line that happens to hold a marker included) is ignored;
    a successful result must hold every key of `requires`."""
    lines = stdout.rstrip().splitlines()
    last = lines[-1] if lines else ""
    if not last.startswith(marker):
        raise ResultError("no result line")
    try:
        value = json.loads(last[len(marker):])
    except ValueError as exc:
        raise ResultError(f"unreadable result ({exc})") from None
    if not isinstance(value, dict):
        raise ResultError("the result is not a JSON object")
    if "error" not in value:
        missing = [key for key in requires if key not in value]
        if missing:
            raise ResultError(f"the result lacks {', '.join(missing)}")
    return value


@dataclass(frozen=True)
class InstallInputs:
    """What every script needs to find the installation (templates/_installation.sh.j2)."""

    path: str
    layouts: tuple[Layout, ...]  # candidates in detection order
    forced: bool  # the layout is configured: no marker check
    webapp_url: str  # "" = from .env and the layout


def install_inputs(s: Settings) -> InstallInputs:
    """The installation inputs from the settings."""
    return InstallInputs(path=s.path, layouts=tuple(candidates(s)), forced=s.layout != "auto",
                         webapp_url=s.webapp_url)


@dataclass(frozen=True)
class NoInputs:
    """A script that needs nothing beyond its marker."""


def field(data: dict, key: str, kind: type, default: Any = None) -> Any:
    """`data[key]` when it is of `kind` (bool is not an int), else `default`."""
    value = data.get(key, default)
    if kind is int and isinstance(value, bool):
        return default
    return value if isinstance(value, kind) else default
