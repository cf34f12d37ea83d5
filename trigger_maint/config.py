"""The `trigger:` configuration tree: defaults, validation and precedence.

Precedence, lowest first: built-in defaults < Fabric's config files (/etc/fabric.yaml,
~/.fabric.yaml, ./fabric.yaml, then the `-f` file) < FABRIC_TRIGGER_* environment variables
< command-line flags. Invoke merges the files; `from_context()` adds the environment and the
flags and validates the result into a frozen `Settings`. Messages never show a secret.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .errors import ConfigError
from .web import origin

LAYOUT_NAMES = ("auto", "v4", "v3", "runbook")
HOST_KEY_POLICIES = ("strict", "accept-new", "off")
LANGUAGES = ("en", "nl")
COMPRESSIONS = ("auto", "gzip", "zstd")


@dataclass(frozen=True)
class Settings:
    """Every `trigger.*` key, its default and its meaning (docs/configuration.md)."""

    path: str = "/opt/trigger"  # installation folder on the host
    layout: str = "auto"  # auto, v4, v3 or runbook
    compose_files: tuple = ()  # compose files relative to path; empty = the layout's
    project: str = ""  # compose project name; empty = the layout's
    webapp_url: str = ""  # /healthcheck URL probed on the host; empty = from .env and layout
    domain: str = ""  # public name whose TLS certificate is checked from the host
    backup_dir: str = ""  # backup folder on the host; empty = found (see docs/configuration.md)
    backups_keep: int = 7  # verified backups kept by cleanup
    backup_compression: str = "auto"  # auto (zstd when the host has it, else gzip), gzip, zstd
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
    pull_timeout: int = 1800  # seconds the image pull of an update may take
    dump_timeout: int = 3600  # seconds one database dump or restore may take
    health_timeout: int = 300  # seconds an update waits for every service to be healthy
    health_fail_seconds: int = 20  # seconds /healthcheck may fail after its first answer
    observe_seconds: int = 10  # verify's window for restart counts
    reboot_timeout: int = 600  # seconds to wait for a rebooted host
    link_timeout: int = 60  # seconds without a sign of life before the SSH link counts as dead
    keepalive_interval: int = 15  # seconds between SSH keepalives
    reconnect_timeout: int = 120  # seconds to keep reattaching to a change the host carries on
    run_container_max_age_hours: int = 24  # exited run containers older than this are removed
    run_containers_warn: int = 50  # exited run containers that make status warn
    rollback_points_keep: int = 2  # rollback points whose images cleanup keeps
    lang: str = "en"  # language of the checklist and summary: en or nl
    host_key_policy: str = "strict"  # strict, accept-new or off
    known_hosts: str = "~/.ssh/known_hosts"  # known_hosts file used for host keys
    webhook_url: str = ""  # http(s) URL that receives each maintain summary (JSON)
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
    "backup_compression": COMPRESSIONS,
    "webhook_format": ("json", "slack"),
    "webhook_on": ("always", "change", "failure"),
}
SECONDS, HOURS, MINUTES, DAYS, PERCENT = " seconds", " hours", " minutes", " days", " percent"
# key -> (lowest, highest, unit): every number is checked against its range.
RANGES = {
    "backups_keep": (1, 1000, ""),
    "backup_max_age_hours": (1, 8760, HOURS),
    "update_backup_max_age_minutes": (1, 10080, MINUTES),
    "disk_warn_percent": (1, 100, PERCENT),
    "disk_fail_percent": (1, 100, PERCENT),
    "cert_warn_days": (0, 365, DAYS),
    "http_timeout": (1, 600, SECONDS),
    "connect_timeout": (1, 600, SECONDS),
    "command_timeout": (60, 86400, SECONDS),
    "pull_timeout": (60, 86400, SECONDS),
    "dump_timeout": (60, 86400, SECONDS),
    "health_timeout": (10, 3600, SECONDS),
    "health_fail_seconds": (1, 600, SECONDS),
    "observe_seconds": (0, 600, SECONDS),
    "reboot_timeout": (10, 3600, SECONDS),
    "link_timeout": (10, 3600, SECONDS),
    "keepalive_interval": (1, 300, SECONDS),
    "reconnect_timeout": (10, 3600, SECONDS),
    "run_container_max_age_hours": (0, 8760, HOURS),
    "run_containers_warn": (1, 100000, ""),
    "rollback_points_keep": (1, 20, ""),
    "parallel": (1, 64, ""),
    "canary": (1, 1000, ""),
}
# Values that are never shown in a message: tokens, and URLs whose path or query hold them.
SECRETS = frozenset({"github_token", "webhook_url"})
# backup_dir may be none of these: the update makes it mode 0700.
SYSTEM_FOLDERS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32",
    "/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp",
    "/usr", "/var", "/var/lib", "/var/log", "/var/backups", "/var/lib/docker",
})
SYSTEM_TREES = ("/proc", "/sys", "/dev", "/run", "/var/lib/docker")  # nor anything inside
INT_RE = re.compile(r"-?[0-9]{1,18}")  # what a number given as text may look like
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")
_TYPES = typing.get_type_hints(Settings)
_KINDS = {int: "a number", bool: "true or false", tuple: "a list of strings",
          Mapping: "a mapping", str: "text"}


class SettingError(ConfigError):
    """A bad value of one key; `key` lets the caller name where the value came from."""

    def __init__(self, key: str, text: str, source: str = ""):
        self.key, self.text, self.source = key, text, source
        where = f" ({source})" if source else ""
        super().__init__(f"trigger.{key}{where}: {text}")

    def at(self, source: str) -> SettingError:
        """The same error naming its source: a file, an environment variable or a flag."""
        return SettingError(self.key, self.text, source) if source else self


def kind_of(value) -> str:
    """What a value is, in words, without showing it."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, int | float):
        return "a number"
    return "text"


def shown(key: str, value) -> str:
    """A value as a message may show it: secrets as their kind only (URLs as scheme://host),
    lists and mappings as their kind, long text cut short."""
    if key in SECRETS:
        if key == "webhook_url" and isinstance(value, str) and "://" in value:
            return origin(value)
        return kind_of(value)
    if isinstance(value, Mapping | list | tuple) or value is None:
        return kind_of(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def coerce(key: str, value, kind):
    """The value as `kind`, accepting the strings environment variables give."""
    if kind is int:
        if isinstance(value, str) and INT_RE.fullmatch(value.strip()):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
    elif kind is tuple:
        if isinstance(value, str):
            value = [part for part in value.replace(",", " ").split() if part]
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif kind is Mapping:
        if isinstance(value, Mapping):
            return dict(value)
    elif value is None:
        return ""
    elif isinstance(value, str):
        return value
    raise SettingError(key, f"expected {_KINDS[kind]}, got {shown(key, value)}")


def host_path(key: str, value: str) -> str:
    """An absolute path on the host, normalised (`//`, `/./` and a trailing `/` dropped)."""
    if not value.startswith("/"):
        raise SettingError(key, f"must be an absolute path, got {value!r}")
    parts = value.split("/")
    if ".." in parts:
        raise SettingError(key, f"must not contain '..', got {value!r}")
    return "/" + "/".join(part for part in parts if part not in ("", "."))


def inside(folder: str, parent: str) -> bool:
    """Whether normalised `folder` is `parent` or lies below it."""
    return folder == parent or folder.startswith(parent.rstrip("/") + "/")


def backup_dir_problem(backup_dir: str, path: str) -> str | None:
    """Why `backup_dir` (normalised, non-empty) may not be the backup folder; None if it may.

    The update makes the backup folder mode 0700: never a system folder or the installation.
    """
    if (backup_dir in SYSTEM_FOLDERS or backup_dir.rpartition("/")[0] == "/usr"
            or any(inside(backup_dir, tree) for tree in SYSTEM_TREES)):
        return f"must not be a system folder, got {backup_dir!r}"
    if backup_dir == path:
        return f"must not be the installation folder trigger.path ({path})"
    if inside(path, backup_dir):
        return f"must not contain the installation folder trigger.path ({path})"
    return None


def url_problem(key: str, url: str) -> str | None:
    """Why `url` is not a usable http(s) URL; None when it is. Shows at most scheme://host."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a valid URL"
    if "://" not in url or not parts.scheme:
        return "must start with https:// or http:// (the value has no scheme)"
    if parts.scheme not in ("https", "http"):
        return f"must start with https:// or http://, got {origin(url) if key in SECRETS else url}"
    if not parts.hostname:
        return "has no host name"
    if parts.username is not None or parts.password is not None:
        return "must not hold a user name or password (user@ before the host)"
    if any(ch.isspace() for ch in url):
        return "must not contain spaces"
    return None


def _check(values: dict) -> None:
    """Cross-key and value checks on coerced values; paths are normalised in place."""
    if not values["path"].startswith("/"):
        raise SettingError("path", f"must be an absolute path, got {values['path']!r}")
    if values["backup_dir"]:
        values["backup_dir"] = host_path("backup_dir", values["backup_dir"])
        path = os.path.normpath(values["path"]).replace("//", "/")
        problem = backup_dir_problem(values["backup_dir"], path)
        if problem:
            raise SettingError("backup_dir", problem)
    for key in LOCAL_PATHS + ("template_dir",):
        value = values[key]
        if value and not os.path.isabs(os.path.expanduser(value)):
            raise SettingError(key, f"must be an absolute path, got {value!r}")
    for key, allowed in CHOICES.items():
        if values[key] not in allowed:
            raise SettingError(key, f"must be one of {', '.join(allowed)}, "
                                    f"got {shown(key, values[key])}")
    for key, (low, high, unit) in RANGES.items():
        if not low <= values[key] <= high:
            raise SettingError(key, f"must be between {low} and {high}{unit}, got {values[key]}")
    for key in ("webhook_url", "github_api", "webapp_url"):
        problem = values[key] and url_problem(key, values[key])
        if problem:
            raise SettingError(key, problem)
    _check_names(values)
    _check_pairs(values)


def _check_names(values: dict) -> None:
    registry = values["registry"]
    if not registry or any(ch.isspace() for ch in registry) or (
            "://" in registry and not registry.startswith(("https://", "http://"))):
        raise SettingError("registry", f"expected a registry host such as ghcr.io or "
                                       f"http://127.0.0.1:5000, got {registry!r}")
    owner, _, name = values["github_repo"].partition("/")
    if not owner or not name or "/" in name or any(ch.isspace() for ch in values["github_repo"]):
        raise SettingError("github_repo", f"expected owner/name, got {values['github_repo']!r}")


def _check_pairs(values: dict) -> None:
    if values["disk_warn_percent"] > values["disk_fail_percent"]:
        raise SettingError("disk_warn_percent", "must not be above disk_fail_percent "
                           f"({values['disk_fail_percent']}), got {values['disk_warn_percent']}")


def tree_problem(tree) -> str | None:
    """Why a `trigger:` tree as a config file gives it is unusable (not a mapping, an unknown
    key, a value of the wrong type); None when it is usable. These include the mistakes
    that would otherwise stop Invoke itself while it merges files (a mapping where a value
    belongs or the other way round)."""
    if tree is None:
        return None
    if not isinstance(tree, Mapping):
        return f"trigger: expected a mapping of settings, got {kind_of(tree)}"
    for key, value in tree.items():
        if key not in _TYPES:
            return f"trigger.{key}: unknown setting (see docs/configuration.md)"
        try:
            coerce(key, value, _TYPES[key])
        except SettingError as exc:
            return str(exc)
    return None


def env_prefix(config) -> str:
    """The environment prefix of an Invoke/Fabric config: "FABRIC_" for Fabric's Config."""
    kind = type(config)
    return f"{(getattr(kind, 'env_prefix', None) or kind.prefix).upper()}_"


def environment(environ: Mapping[str, str], prefix: str = "FABRIC_") -> dict:
    """The `trigger.*` values given as `<prefix>TRIGGER_<KEY>` variables: key -> (variable,
    value as its type). An unknown variable, a list or mapping key, or a value of the wrong
    type is one line naming the variable and the key."""
    start = f"{prefix}TRIGGER_"
    found = {}
    for name in sorted(environ):
        if not name.startswith(start):
            continue
        key = name[len(start):].lower()
        if key.split("_")[0] in ("hosts", "groups"):
            raise ConfigError(f"{name}: trigger.{key.split('_')[0]} can only be set in a "
                              "config file")
        if key not in _TYPES:
            raise ConfigError(f"{name}: no such setting trigger.{key} "
                              "(see docs/configuration.md)")
        try:
            found[key] = (name, coerce(key, environ[name], _TYPES[key]))
        except SettingError as exc:
            raise exc.at(name) from None
    return found


@contextmanager
def hidden(environ: MutableMapping[str, str], prefix: str) -> Iterator[None]:
    """Remove the `<prefix>TRIGGER_*` variables from `environ` for a while (Invoke would cast
    them by its own rules; `environment()` reads them instead)."""
    removed = {name: environ.pop(name) for name in list(environ)
               if name.startswith(f"{prefix}TRIGGER_")}
    try:
        yield
    finally:
        environ.update(removed)


def flag_name(key: str) -> str:
    """The task flag that sets `key`."""
    return "--" + key.replace("_", "-")


def settings(tree: Mapping | None, env: Mapping | None = None, **overrides) -> Settings:
    """Validate a `trigger:` tree, environment values (from `environment()`) and
    command-line overrides (None = not given); a bad value names its variable or flag."""
    problem = tree_problem(tree)
    if problem:
        raise ConfigError(problem)
    merged, sources = dict(DEFAULTS), {}
    merged.update(tree or {})
    for key, (name, value) in (env or {}).items():
        merged[key], sources[key] = value, name
    for key, value in overrides.items():
        if value is not None:
            merged[key], sources[key] = value, flag_name(key)
    try:
        values = {key: coerce(key, merged[key], _TYPES[key]) for key in _TYPES}
        _check(values)
    except SettingError as exc:
        raise exc.at(sources.get(exc.key, "")) from None
    return Settings(**values)


def from_context(c, **overrides) -> Settings:
    """Settings for a task's context `c`: its config's `trigger:` tree, the FABRIC_TRIGGER_*
    environment and the task's flags (None = not given)."""
    config = getattr(c, "config", None)
    if config is None:
        return settings({}, **overrides)
    env = environment(os.environ, env_prefix(config))
    return settings(config.get("trigger", {}), env, **overrides)


def with_overrides(base: Settings, overrides: Mapping) -> Settings:
    """`base` with per-host overrides (from the inventory), validated again."""
    values = {f.name: getattr(base, f.name) for f in dataclasses.fields(Settings)}
    for key, value in overrides.items():
        if key not in _TYPES:
            raise ConfigError(f"trigger.hosts: unknown setting {key!r}")
        values[key] = value
    return settings(values)
