"""The `trigger:` configuration tree: defaults, validation and precedence.

Precedence is built-in < fabric.yaml / invoke.yaml < FABRIC_TRIGGER_* environment <
command-line flags. Invoke merges the first three; `settings()` applies the flags and
validates the result into a frozen `Settings`.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import ConfigError

LAYOUT_NAMES = ("auto", "v4", "v3", "runbook")
HOST_KEY_POLICIES = ("strict", "accept-new", "off")
LANGUAGES = ("en", "nl")


@dataclass(frozen=True)
class Settings:
    """Every `trigger.*` key, its default and its meaning (docs/configuration.md)."""

    path: str = "/opt/trigger"  # installation folder on the host
    layout: str = "auto"  # auto, v4, v3 or runbook
    compose_files: tuple = ()  # compose files relative to path; empty = the layout's
    project: str = ""  # compose project name; empty = the layout's
    webapp_url: str = ""  # /healthcheck URL probed on the host; empty = from .env and layout
    domain: str = ""  # public name whose TLS certificate is checked from the host
    backup_dir: str = "/var/backups/trigger"  # backup folder on the host
    backups_keep: int = 7  # verified backups kept by cleanup
    backup_max_age_hours: int = 26  # status fails when the newest backup is older
    update_backup_max_age_minutes: int = 120  # update needs a verified backup this fresh
    disk_warn_percent: int = 80  # disk use that warns
    disk_fail_percent: int = 95  # disk use that fails
    cert_warn_days: int = 14  # certificate validity that warns
    github_api: str = "https://api.github.com"  # GitHub API base URL
    github_repo: str = "triggerdotdev/trigger.dev"  # repository with releases and advisories
    github_token: str = ""  # token for the GitHub API (GITHUB_TOKEN is used when empty)
    registry: str = "ghcr.io"  # image registry holding the Trigger.dev images
    http_timeout: int = 20  # seconds to wait for an answer from GitHub or the registry
    cache_dir: str = "~/.cache/trigger-maint"  # local cache of GitHub answers
    report_dir: str = "~/.local/state/trigger-maint"  # local folder for reports and history
    connect_timeout: int = 15  # seconds to open the SSH connection
    command_timeout: int = 3600  # seconds any one remote script may take
    health_timeout: int = 300  # seconds an update waits for every service to be healthy
    observe_seconds: int = 10  # verify's window for restart counts
    reboot_timeout: int = 600  # seconds to wait for a rebooted host
    run_container_max_age_hours: int = 24  # exited run containers older than this are removed
    run_containers_warn: int = 50  # exited run containers that make status warn
    rollback_points_keep: int = 2  # rollback points whose images cleanup keeps
    lang: str = "en"  # language of the checklist and summary: en or nl
    host_key_policy: str = "strict"  # strict, accept-new or off
    known_hosts: str = "~/.ssh/known_hosts"  # known_hosts file used for host keys
    webhook_url: str = ""  # URL that receives each maintain summary (JSON)
    webhook_format: str = "json"  # json or slack
    webhook_on: str = "always"  # when maintain calls the webhook: always, change or failure
    template_dir: str = ""  # folder whose *.sh.j2 override the shipped templates
    parallel: int = 1  # hosts worked on at once by fleet runs
    canary: int = 1  # hosts updated first in a staged fleet update
    hosts: Mapping = field(default_factory=dict)  # inventory: name -> {host, overrides}
    groups: Mapping = field(default_factory=dict)  # group name -> list of inventory names

    def local_path(self, key: str) -> str:
        """A local folder setting with `~` expanded."""
        return os.path.expanduser(getattr(self, key))


DEFAULTS = {f.name: (list(f.default) if f.default == () else f.default)
            for f in dataclasses.fields(Settings) if f.default is not dataclasses.MISSING}
DEFAULTS.update(hosts={}, groups={})

REMOTE_PATHS = ("path", "backup_dir")
LOCAL_PATHS = ("cache_dir", "report_dir", "known_hosts")
CHOICES = {
    "layout": LAYOUT_NAMES,
    "host_key_policy": HOST_KEY_POLICIES,
    "lang": LANGUAGES,
    "webhook_format": ("json", "slack"),
    "webhook_on": ("always", "change", "failure"),
}
_TYPES = typing.get_type_hints(Settings)


def _coerce(key: str, value, kind):
    """The value as `kind`, accepting the strings environment variables give."""
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"trigger.{key}: expected a number, got {value!r}")
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, int):
            return value
        raise ConfigError(f"trigger.{key}: expected a number, got {value!r}")
    if kind is tuple:
        if isinstance(value, str):
            value = [part for part in value.replace(",", " ").split() if part]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"trigger.{key}: expected a list of strings, got {value!r}")
        return tuple(value)
    if kind is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"trigger.{key}: expected a mapping, got {value!r}")
        return dict(value)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"trigger.{key}: expected text, got {value!r}")
    return value


def _check(values: dict) -> None:
    for key in REMOTE_PATHS:
        if not values[key].startswith("/"):
            raise ConfigError(f"trigger.{key}: must be an absolute path, got {values[key]!r}")
    for key in LOCAL_PATHS + ("template_dir",):
        value = values[key]
        if value and not os.path.isabs(os.path.expanduser(value)):
            raise ConfigError(f"trigger.{key}: must be an absolute path, got {value!r}")
    for key, allowed in CHOICES.items():
        if values[key] not in allowed:
            raise ConfigError(
                f"trigger.{key}: must be one of {', '.join(allowed)}, got {values[key]!r}")
    for key in ("backups_keep", "parallel", "canary"):
        if values[key] < 1:
            raise ConfigError(f"trigger.{key}: must be at least 1, got {values[key]}")
    if not 0 < values["disk_warn_percent"] <= values["disk_fail_percent"] <= 100:
        raise ConfigError("trigger.disk_warn_percent: must be between 1 and disk_fail_percent")


def settings(tree: Mapping | None, **overrides) -> Settings:
    """Validate a `trigger:` tree plus command-line overrides (None = not given)."""
    merged = dict(DEFAULTS)
    for key, value in dict(tree or {}).items():
        if key not in _TYPES:
            raise ConfigError(f"trigger.{key}: unknown setting (see docs/configuration.md)")
        merged[key] = value
    merged.update({k: v for k, v in overrides.items() if v is not None})
    values = {key: _coerce(key, merged[key], _TYPES[key]) for key in _TYPES}
    _check(values)
    return Settings(**values)


def from_context(c, **overrides) -> Settings:
    """Settings for a task's context `c` (Invoke config) with flag overrides."""
    tree = c.config.get("trigger", {}) if hasattr(c, "config") else {}
    return settings(tree, **overrides)


def with_overrides(base: Settings, overrides: Mapping) -> Settings:
    """`base` with per-host overrides (from the inventory), validated again."""
    values = {f.name: getattr(base, f.name) for f in dataclasses.fields(Settings)}
    for key, value in overrides.items():
        if key not in _TYPES:
            raise ConfigError(f"trigger.hosts: unknown setting {key!r}")
        values[key] = value
    return settings(values)
