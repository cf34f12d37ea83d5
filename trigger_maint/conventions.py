"""Fabric's own settings as defaults under trigger's: `-t`/`timeouts.connect` and
ssh_config's ConnectTimeout, `-T`/`timeouts.command`, ssh_config's UserKnownHostsFile and
StrictHostKeyChecking. A `trigger.*` key set to anything but its default wins; a key left at
its default takes Fabric's value when Fabric has one."""

from __future__ import annotations

import dataclasses

from .config import DEFAULTS, Settings

# ssh_config's StrictHostKeyChecking -> trigger.host_key_policy
STRICT_HOST_KEY_CHECKING = {"yes": "strict", "ask": "strict", "accept-new": "accept-new",
                            "no": "off", "off": "off"}


def _seconds(value) -> int | None:
    try:
        seconds = int(float(value))
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None


def with_fabric_defaults(s: Settings, connect: object = None, command: object = None,
                         ssh_config: dict | None = None) -> Settings:
    """`s` with Fabric's values for the keys `s` leaves at their defaults. `connect` is
    Fabric's connect timeout (-t, timeouts.connect or ssh_config's ConnectTimeout),
    `command` its command timeout (-T, timeouts.command), `ssh_config` the host's entry."""
    ssh_config = ssh_config or {}
    changes = {}

    def take(key: str, value) -> None:
        if value is not None and getattr(s, key) == DEFAULTS[key]:
            changes[key] = value

    take("connect_timeout", _seconds(connect) or _seconds(ssh_config.get("connecttimeout")))
    command_seconds = _seconds(command)
    take("command_timeout", max(60, command_seconds) if command_seconds else None)
    files = ssh_config.get("userknownhostsfile")
    if isinstance(files, str) and files.split():
        take("known_hosts", files.split()[0])
    policy = STRICT_HOST_KEY_CHECKING.get(str(ssh_config.get("stricthostkeychecking", "")).lower())
    take("host_key_policy", policy)
    return dataclasses.replace(s, **changes) if changes else s
