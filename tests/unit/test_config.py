import pytest

from trigger_maint.config import DEFAULTS, Settings, settings, with_overrides
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
