"""The task namespace: one module per phase, each exposing its Fabric tasks."""

from __future__ import annotations

import importlib

from invoke import Collection, Task

from ..config import DEFAULTS

PHASE_MODULES = (
    "preflight",
    "backup",
    "research",
    "status",
    "cleanup",
    "verify",
    "reboot",
    "update",
    "rollback",
    "maintain",
    "report",
    "fleet",
)


def _namespace() -> Collection:
    ns = Collection()
    for name in PHASE_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        for value in vars(module).values():
            if isinstance(value, Task) and value.__module__ == module.__name__:
                ns.add_task(value)
    ns.configure({"trigger": DEFAULTS, "run": {"encoding": "utf-8"}})
    return ns


ns = _namespace()
