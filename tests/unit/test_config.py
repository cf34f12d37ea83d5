import dataclasses
import types

import pytest

from trigger_maint.config import (
    DEFAULTS,
    RANGES,
    SYSTEM_FOLDERS,
    Settings,
    coerce,
    env_prefix,
    environment,
    from_context,
    hidden,
    settings,
    shown,
    tree_problem,
    with_overrides,
)
from trigger_maint.errors import ConfigError


def test_defaults_validate():
    s = settings({})
    assert s == Settings()
    assert s.path == "/opt/trigger" and s.backups_keep == 7 and s.disk_warn_percent == 80


def test_environment_strings_are_coerced():
    s = settings({"backups_keep": "14", "compose_files": "a.yml, b.yml"})
    assert s.backups_keep == 14
    assert s.compose_files == ("a.yml", "b.yml")


def test_flags_win_over_tree_and_none_means_not_given():
    s = settings({"layout": "v3", "path": "/srv/t"}, layout="v4", path=None)
    assert s.layout == "v4" and s.path == "/srv/t"


@pytest.mark.parametrize(
    "tree, message",
    [
        ({"bakups_keep": 3}, "trigger.bakups_keep: unknown setting"),
        ({"backups_keep": "many"}, "trigger.backups_keep: expected a number"),
        ({"backups_keep": True}, "trigger.backups_keep: expected a number"),
        ({"path": "opt/trigger"}, "trigger.path: must be an absolute path"),
        ({"backup_dir": "~/b"}, "trigger.backup_dir: must be an absolute path"),
        ({"report_dir": "reports"}, "trigger.report_dir: must be an absolute path"),
        ({"layout": "v5"}, "trigger.layout: must be one of auto, v4, v3, runbook"),
        ({"host_key_policy": "yes"}, "trigger.host_key_policy: must be one of"),
        ({"backups_keep": 0}, "trigger.backups_keep: must be between 1 and 1000, got 0"),
        ({"disk_warn_percent": 99, "disk_fail_percent": 90},
         "trigger.disk_warn_percent: must not be above disk_fail_percent (90), got 99"),
        ({"compose_files": [1]}, "trigger.compose_files: expected a list of strings"),
        ({"hosts": ["a"]}, "trigger.hosts: expected a mapping"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(tree, message):
    with pytest.raises(ConfigError) as err:
        settings(tree)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert err.value.exit_code == 2


def test_local_paths_expand_home(monkeypatch):
    monkeypatch.setenv("HOME", "/home/ops")
    assert settings({}).local_path("cache_dir") == "/home/ops/.cache/trigger-maint"


def test_per_host_overrides_are_validated():
    base = settings({"domain": "a.example"})
    assert with_overrides(base, {"path": "/srv/x"}).path == "/srv/x"
    assert with_overrides(base, {"path": "/srv/x"}).domain == "a.example"
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        with_overrides(base, {"colour": "red"})


def test_defaults_cover_every_setting():
    assert set(DEFAULTS) == {f for f in Settings.__dataclass_fields__}


# Ranges: every number has one; timeouts are never zero or negative.

def _valid_tree(key, value):
    """A tree with `key` at `value` whose other keys keep every cross-key rule."""
    tree = {key: value}
    if key == "disk_warn_percent":
        tree["disk_fail_percent"] = 100
    if key == "disk_fail_percent":
        tree["disk_warn_percent"] = 1
    return tree


@pytest.mark.parametrize("key", sorted(RANGES))
def test_every_number_is_range_checked(key):
    low, high, unit = RANGES[key]
    assert getattr(settings(_valid_tree(key, low)), key) == low
    assert getattr(settings(_valid_tree(key, high)), key) == high
    for bad in (low - 1, high + 1):
        with pytest.raises(ConfigError) as err:
            settings(_valid_tree(key, bad))
        assert str(err.value) == f"trigger.{key}: must be between {low} and {high}{unit}, " \
                                 f"got {bad}"


def test_every_int_setting_has_a_range():
    ints = {f.name for f in dataclasses.fields(Settings) if f.type in ("int", int)}
    assert ints == set(RANGES)


@pytest.mark.parametrize("key", sorted(k for k in RANGES if k.endswith("_timeout")))
@pytest.mark.parametrize("value", [0, -1, "0", "-5"])
def test_zero_or_negative_timeouts_are_refused(key, value):
    with pytest.raises(ConfigError, match=rf"^trigger\.{key}: must be between [1-9]"):
        settings({key: value})


def test_the_documented_example_message():
    with pytest.raises(ConfigError) as err:
        settings({"command_timeout": 0})
    assert str(err.value) == \
        "trigger.command_timeout: must be between 60 and 86400 seconds, got 0"


def test_new_keys_and_their_defaults():
    s = settings({})
    assert (s.health_fail_seconds, s.pull_timeout, s.dump_timeout, s.link_timeout,
            s.keepalive_interval, s.reconnect_timeout, s.backup_compression) == (
        20, 1800, 3600, 60, 15, 120, "auto")
    assert settings({"backup_compression": "zstd"}).backup_compression == "zstd"
    with pytest.raises(ConfigError, match="trigger.backup_compression: must be one of auto, "
                                          "gzip, zstd, got 'xz'"):
        settings({"backup_compression": "xz"})


def test_timeouts_can_be_set_one_at_a_time():
    s = settings({"link_timeout": 10, "health_timeout": 10, "reboot_timeout": 12,
                  "run_container_max_age_hours": 0})
    assert (s.link_timeout, s.keepalive_interval, s.health_timeout, s.health_fail_seconds) == (
        10, 15, 10, 20)


# backup_dir: empty means automatic; otherwise never a system folder or the installation.

@pytest.mark.parametrize("given, kept", [
    ("", ""),
    ("/var/backups/trigger", "/var/backups/trigger"),
    ("/var/backups/trigger/", "/var/backups/trigger"),
    ("//srv//trigger-backups/./", "/srv/trigger-backups"),
    ("/opt/trigger/backups", "/opt/trigger/backups"),
    ("/var/lib/trigger-backups", "/var/lib/trigger-backups"),
    ("/home/ops/backups", "/home/ops/backups"),
    ("/usr/local/trigger/backups", "/usr/local/trigger/backups"),
])
def test_backup_dir_accepted_and_normalised(given, kept):
    assert settings({"backup_dir": given}).backup_dir == kept


@pytest.mark.parametrize("folder", sorted(SYSTEM_FOLDERS) + [
    "/usr/local", "/usr/lib", "/usr/share/", "/var/backups/", "//etc", "/etc/.",
    "/proc/1", "/proc/self/cwd", "/sys/fs/cgroup", "/dev/shm", "/run/lock",
    "/var/lib/docker/volumes/trigger_db/_data",
])
def test_backup_dir_is_never_a_system_folder(folder):
    with pytest.raises(ConfigError, match=r"^trigger\.backup_dir: must not be a system "
                                          r"folder, got '/"):
        settings({"backup_dir": folder})


@pytest.mark.parametrize("tree, message", [
    ({"backup_dir": "/opt/trigger"}, "must not be the installation folder trigger.path "
                                     "(/opt/trigger)"),
    ({"backup_dir": "/opt/trigger/"}, "must not be the installation folder"),
    ({"path": "/srv/apps/trigger", "backup_dir": "/srv/apps"},
     "must not contain the installation folder trigger.path (/srv/apps/trigger)"),
    ({"path": "/srv/trigger/", "backup_dir": "/srv/trigger"}, "must not be the installation"),
    ({"backup_dir": "/var/backups/../../etc"}, "must not contain '..'"),
    ({"backup_dir": "backups"}, "must be an absolute path"),
])
def test_backup_dir_is_not_the_installation_nor_odd(tree, message):
    with pytest.raises(ConfigError) as err:
        settings(tree)
    assert str(err.value).startswith("trigger.backup_dir: ") and message in str(err.value)


# Text keys with a shape.

@pytest.mark.parametrize("tree, message", [
    ({"github_api": "api.github.com"}, "trigger.github_api: must start with https:// or "
                                       "http:// (the value has no scheme)"),
    ({"github_api": "https://"}, "trigger.github_api: has no host name"),
    ({"webapp_url": "ftp://127.0.0.1:3030/healthcheck"}, "trigger.webapp_url: must start "
                                                         "with https:// or http://, got ftp:"),
    ({"github_repo": "trigger.dev"}, "trigger.github_repo: expected owner/name"),
    ({"registry": ""}, "trigger.registry: expected a registry host"),
    ({"registry": "ftp://mirror"}, "trigger.registry: expected a registry host"),
])
def test_urls_and_names_are_checked(tree, message):
    with pytest.raises(ConfigError) as err:
        settings(tree)
    assert str(err.value).startswith(message)


TOKEN = "ghp_SECRETTOKEN0123456789"
HOOK_PATH = "/services/T0AAA/B0BBB/SECRETHOOKPATH"


@pytest.mark.parametrize("url, message", [
    (f"hooks.slack.com{HOOK_PATH}", "must start with https:// or http:// (the value has "
                                    "no scheme)"),
    (f"ftp://hooks.slack.com{HOOK_PATH}?k=SECRETQUERY",
     "must start with https:// or http://, got ftp://hooks.slack.com"),
    (f"https://user:SECRETPASSWORD@hooks.slack.com{HOOK_PATH}",
     "must not hold a user name or password (user@ before the host)"),
    (f"https://hooks.slack.com:port{HOOK_PATH}", "is not a valid URL"),
    (f"https://{HOOK_PATH}", "has no host name"),
])
def test_a_bad_webhook_url_shows_at_most_scheme_and_host(url, message):
    with pytest.raises(ConfigError) as err:
        settings({"webhook_url": url})
    assert str(err.value) == f"trigger.webhook_url: {message}"
    assert "SECRET" not in str(err.value)


@pytest.mark.parametrize("tree", [
    {"github_token": [TOKEN]},
    {"github_token": {"value": TOKEN}},
    {"github_token": 1234567890123},
    {"webhook_url": {"url": f"https://hooks.slack.com{HOOK_PATH}"}},
    {"webhook_url": [f"https://hooks.slack.com{HOOK_PATH}"]},
])
def test_a_secret_of_the_wrong_type_is_not_shown(tree):
    with pytest.raises(ConfigError) as err:
        settings(tree)
    assert "SECRET" not in str(err.value) and "1234567890123" not in str(err.value)
    assert str(err.value).startswith(f"trigger.{next(iter(tree))}: expected text, got a")


def test_a_good_webhook_url_is_kept_whole():
    url = f"https://hooks.slack.com{HOOK_PATH}?x=1"
    assert settings({"webhook_url": url}).webhook_url == url


# Environment variables: FABRIC_TRIGGER_<KEY>, one line naming the variable and the key.

def test_environment_values_and_their_types():
    env = environment({"FABRIC_TRIGGER_BACKUPS_KEEP": " 14 ",
                       "FABRIC_TRIGGER_COMPOSE_FILES": "a.yml, b.yml c.yml",
                       "FABRIC_TRIGGER_BACKUP_DIR": "",
                       "FABRIC_RUN_ECHO": "1", "INVOKE_TRIGGER_LAYOUT": "v9"})
    assert env == {"backups_keep": ("FABRIC_TRIGGER_BACKUPS_KEEP", 14),
                   "compose_files": ("FABRIC_TRIGGER_COMPOSE_FILES", ("a.yml", "b.yml", "c.yml")),
                   "backup_dir": ("FABRIC_TRIGGER_BACKUP_DIR", "")}
    s = settings({"backups_keep": 3, "layout": "v3"}, env)
    assert (s.backups_keep, s.compose_files, s.backup_dir, s.layout) == (
        14, ("a.yml", "b.yml", "c.yml"), "", "v3")


@pytest.mark.parametrize("environ, message", [
    ({"FABRIC_TRIGGER_BACKUPS_KEEP": "abc"},
     "trigger.backups_keep (FABRIC_TRIGGER_BACKUPS_KEEP): expected a number, got 'abc'"),
    ({"FABRIC_TRIGGER_BACKUPS_KEEP": ""},
     "trigger.backups_keep (FABRIC_TRIGGER_BACKUPS_KEEP): expected a number, got ''"),
    ({"FABRIC_TRIGGER_BACKUPS_KEEP": "--5"},
     "trigger.backups_keep (FABRIC_TRIGGER_BACKUPS_KEEP): expected a number, got '--5'"),
    ({"FABRIC_TRIGGER_BACKUPS_KEEP": "\u00b2"},
     "trigger.backups_keep (FABRIC_TRIGGER_BACKUPS_KEEP): expected a number, got '\u00b2'"),
    ({"FABRIC_TRIGGER_BACKUPS_KEEP": "9" * 5000},
     "trigger.backups_keep (FABRIC_TRIGGER_BACKUPS_KEEP): expected a number, got '99999"),
    ({"FABRIC_TRIGGER_BACKUPS_KEEP": "7.5"},
     "trigger.backups_keep (FABRIC_TRIGGER_BACKUPS_KEEP): expected a number, got '7.5'"),
    ({"FABRIC_TRIGGER_BAKUPS_KEEP": "3"},
     "FABRIC_TRIGGER_BAKUPS_KEEP: no such setting trigger.bakups_keep (see "
     "docs/configuration.md)"),
    ({"FABRIC_TRIGGER_HOSTS": "a"}, "FABRIC_TRIGGER_HOSTS: trigger.hosts can only be set in a "
                                    "config file"),
    ({"FABRIC_TRIGGER_HOSTS_ACME_DOMAIN": "a.example"},
     "FABRIC_TRIGGER_HOSTS_ACME_DOMAIN: trigger.hosts can only be set in a config file"),
    ({"FABRIC_TRIGGER_GROUPS_EU": "a,b"},
     "FABRIC_TRIGGER_GROUPS_EU: trigger.groups can only be set in a config file"),
])
def test_bad_environment_is_one_line_naming_variable_and_key(environ, message):
    with pytest.raises(ConfigError) as err:
        environment(environ)
    assert str(err.value).startswith(message) and err.value.exit_code == 2
    assert len(str(err.value)) < 200 and "\n" not in str(err.value)


def test_range_and_choice_errors_name_the_variable_or_the_flag():
    env = environment({"FABRIC_TRIGGER_COMMAND_TIMEOUT": "0",
                       "FABRIC_TRIGGER_WEBHOOK_URL": f"ftp://hooks.example{HOOK_PATH}"})
    with pytest.raises(ConfigError) as err:
        settings({}, env)
    assert str(err.value) == ("trigger.command_timeout (FABRIC_TRIGGER_COMMAND_TIMEOUT): "
                              "must be between 60 and 86400 seconds, got 0")
    with pytest.raises(ConfigError) as err:
        settings({}, env, command_timeout="600")
    assert str(err.value) == ("trigger.webhook_url (FABRIC_TRIGGER_WEBHOOK_URL): must start "
                              "with https:// or http://, got ftp://hooks.example")
    with pytest.raises(ConfigError) as err:
        settings({}, layout="v5")
    assert str(err.value) == \
        "trigger.layout (--layout): must be one of auto, v4, v3, runbook, got 'v5'"


@pytest.mark.parametrize("text, value", [("1", True), ("TRUE", True), ("yes", True),
                                         ("on", True), ("0", False), ("false", False),
                                         ("No", False), ("off", False), ("", False)])
def test_booleans_from_the_environment(text, value):
    assert coerce("x", text, bool) is value


def test_a_word_is_not_a_boolean():
    with pytest.raises(ConfigError, match="trigger.x: expected true or false, got 'maybe'"):
        coerce("x", "maybe", bool)


def test_from_context_reads_the_fabric_prefix(monkeypatch):
    from fabric import Config

    monkeypatch.setenv("FABRIC_TRIGGER_BACKUPS_KEEP", "21")
    monkeypatch.setenv("INVOKE_TRIGGER_BACKUPS_KEEP", "99")
    c = types.SimpleNamespace(config=Config(overrides={"trigger": {"backups_keep": 5,
                                                                   "layout": "v3"}}))
    assert env_prefix(c.config) == "FABRIC_"
    s = from_context(c)
    assert (s.backups_keep, s.layout) == (21, "v3")
    assert from_context(c, backups_keep="4").backups_keep == 4


def test_hidden_removes_and_restores_the_trigger_variables():
    environ = {"FABRIC_TRIGGER_LAYOUT": "v3", "FABRIC_RUN_ECHO": "1"}
    with hidden(environ, "FABRIC_"):
        assert environ == {"FABRIC_RUN_ECHO": "1"}
    assert environ == {"FABRIC_TRIGGER_LAYOUT": "v3", "FABRIC_RUN_ECHO": "1"}


@pytest.mark.parametrize("tree, problem", [
    (None, None),
    ({}, None),
    ({"layout": "v3", "hosts": {"a": {}}}, None),
    (["a"], "trigger: expected a mapping of settings, got a list"),
    ("x", "trigger: expected a mapping of settings, got text"),
    ({"hosts": ["a", "b"]}, "trigger.hosts: expected a mapping, got a list"),
    ({"groups": "eu"}, "trigger.groups: expected a mapping, got 'eu'"),
    ({"path": {"a": 1}}, "trigger.path: expected text, got a mapping"),
    ({"bakups_keep": 3}, "trigger.bakups_keep: unknown setting (see docs/configuration.md)"),
])
def test_tree_problems(tree, problem):
    assert tree_problem(tree) == problem


def test_shown_values():
    assert shown("webhook_url", "https://h.example:8443/T/secret?k=v") == "https://h.example:8443"
    assert shown("github_token", "ghp_x") == "text"
    assert shown("path", ["a"]) == "a list"
    assert shown("domain", "x" * 200).endswith("...") and len(shown("domain", "x" * 200)) == 80
