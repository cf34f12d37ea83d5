import pytest

from trigger_maint.config import settings
from trigger_maint.errors import ConfigError
from trigger_maint.installation import compose_services, found_layout, from_result
from trigger_maint.layout import PRESETS, candidates, resolve
from trigger_maint.scripts.base import install_inputs


def test_auto_tries_every_preset_in_order():
    assert [layout.name for layout in candidates(settings({}))] == ["v4", "runbook", "v3"]


def test_configured_layout_and_overrides():
    s = settings({"layout": "v3", "project": "trigger-webapp",
                  "compose_files": ["docker-compose.webapp.yml"]})
    (only,) = candidates(s)
    assert (only.name, only.project, only.compose_files) == (
        "v3", "trigger-webapp", ("docker-compose.webapp.yml",))
    assert resolve("v4", settings({})).db_name == "main"
    with pytest.raises(ConfigError, match="unknown layout"):
        resolve("v5", settings({}))


def test_scripts_receive_the_candidates_not_the_settings():
    auto = install_inputs(settings({"path": "/srv/trigger"}))
    assert (auto.path, auto.forced, auto.webapp_url) == ("/srv/trigger", False, "")
    assert [layout.name for layout in auto.layouts] == ["v4", "runbook", "v3"]
    forced = install_inputs(settings({"layout": "runbook",
                                      "webapp_url": "http://10.0.0.1:3030/healthcheck"}))
    assert forced.forced and [layout.name for layout in forced.layouts] == ["runbook"]
    assert forced.webapp_url == "http://10.0.0.1:3030/healthcheck"


def test_presets_match_the_upstream_layouts():
    assert PRESETS["v4"].compose_files == ("webapp/docker-compose.yml",
                                           "worker/docker-compose.yml")
    assert (PRESETS["runbook"].db_user, PRESETS["runbook"].pin) == ("trigger", "image")
    assert (PRESETS["v3"].db_name, PRESETS["v3"].run_container_prefix) == ("postgres", "task-run")
    assert [PRESETS[name].major for name in ("v3", "v4", "runbook")] == [3, 4, 4]


def test_installation_from_a_script_result():
    config = {"services": {"webapp": {"image": "r/trigger.dev:v4.5.10"},
                           "postgres": {"image": "postgres:14"}}}
    assert compose_services(config) == (("postgres", "webapp"),
                                        {"webapp": "r/trigger.dev:v4.5.10",
                                         "postgres": "postgres:14"})
    layouts = candidates(settings({}))
    inst = from_result({"layout": "v4", "path": "/opt/trigger", "config": config,
                        "containers": []}, layouts)
    assert inst.layout is layouts[0]
    assert inst.missing_services == ["postgres", "webapp"] and inst.version is None
    assert inst.running is None and inst.webapp_url == ""
    broken = from_result({"layout": "v4", "path": "/opt/trigger", "config": "not json"}, layouts)
    assert broken.config is None and broken.services == ()


def test_a_layout_the_script_was_not_given_is_an_error():
    with pytest.raises(ValueError, match="'v3', which was not a candidate"):
        found_layout("v3", candidates(settings({"layout": "v4"})))
