"""The one place that relies on a name Fabric does not publish: ThreadingGroup runs a
method of every member connection in its own thread through `Group._do`, and there is no
public way to run anything but `run`, `sudo`, `put` and `get` like that. A unit test pins
this to the Fabric versions it was checked against (tests/unit/test_scripts.py)."""

from __future__ import annotations

from fabric import ThreadingGroup

CHECKED = ("3.2",)  # Fabric releases (major.minor) whose Group._do this was read against


def on_every_host(group: ThreadingGroup, method: str, *args, **kwargs):
    """`method` of every member connection, each in its own thread: a GroupResult (raises
    GroupException when a member raised)."""
    return group._do(method, *args, **kwargs)
