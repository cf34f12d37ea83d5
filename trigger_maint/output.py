"""How a task shows its result: text for people, JSON (--json) for machines."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime
from enum import Enum


def plain(value):
    """A JSON-ready copy of dataclasses, enums, datetimes, tuples and sets."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def print_json(data) -> None:
    """A JSON document on stdout."""
    sys.stdout.write(json.dumps(plain(data), indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def emit(session, data, text: str) -> None:
    """`data` as JSON under --json, else `text` for people."""
    if session.json_output:
        print_json(data)
    else:
        session.print(text)
