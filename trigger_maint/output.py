"""How a task shows its result: text for people, or one JSON document for machines.

Under --json stdout holds nothing else: one document per task and host, one per line, each
with the schema version, the task, the host, ok and the exit code (docs/json.md). Text for
people, progress and scripts go to stderr then."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime
from enum import Enum

SCHEMA = "trigger-maint/1"


def plain(value):
    """A JSON-ready copy of dataclasses, enums, datetimes, tuples and sets."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # JSON_PROPERTIES: what a type computes from its fields that readers need too
        names = [f.name for f in dataclasses.fields(value)]
        names += list(getattr(value, "JSON_PROPERTIES", ()))
        return {name: plain(getattr(value, name)) for name in names}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def document(task: str, host: str | None, exit_code: int, body: dict | None = None,
             ok: bool | None = None) -> dict:
    """A task's JSON document: the envelope every document has, then the task's own data.
    `ok` is whether the task's work succeeded (exit code 0, unless told otherwise)."""
    return {"schema": SCHEMA, "task": task, "host": host,
            "ok": exit_code == 0 if ok is None else ok, "exit_code": exit_code,
            **plain(body or {})}


def print_json(data: dict) -> None:
    """One JSON document on one line of stdout."""
    sys.stdout.write(json.dumps(plain(data), sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def emit(session, task: str, body: dict, text: str, exit_code: int = 0,
         ok: bool | None = None) -> None:
    """The task's document under --json, else `text` for people."""
    if session.json_output:
        print_json(document(task, session.label, exit_code, body, ok))
    elif text:
        session.print(text)


class Headers:
    """Whether each task run is framed on stderr by a header and an `exit N in T s` line:
    only when one command runs several (chained tasks, or one task on several hosts), so
    that a lone task's error stays one line."""

    on = False

    @classmethod
    def for_calls(cls, calls: int) -> None:
        cls.on = calls > 1
