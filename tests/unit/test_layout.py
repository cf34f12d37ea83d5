from trigger_maint.config import settings
from trigger_maint.installation import compose_services, from_result
from trigger_maint.layout import PRESETS, candidates, resolve


def test_auto_tries_every_preset_in_order():
    assert [layout.name for layout in candidates(settings({}))] == ["v4", "runbook", "v3"]


def test_configured_layout_and_overrides():
    s = settings({"layout": "v3", "project": "trigger-webapp",
                  "compose_files": ["docker-compose.webapp.yml"]})
    (only,) = candidates(s)
    assert (only.name, only.project, only.compose_files) == (
        "v3", "trigger-webapp", ("docker-compose.webapp.yml",))
    assert resolve("v4", settings({})).db_name == "main"


def test_presets_match_the_upstream_layouts():
    assert PRESETS["v4"].compose_files == ("webapp/docker-compose.yml",
                                           "worker/docker-compose.yml")
    assert (PRESETS["runbook"].db_user, PRESETS["runbook"].pin) == ("trigger", "image")
    assert (PRESETS["v3"].db_name, PRESETS["v3"].run_container_prefix) == ("postgres", "task-run")


def test_installation_from_a_script_result():
    config = {"services": {"webapp": {"image": "r/trigger.dev:v4.5.10"},
                           "postgres": {"image": "postgres:14"}}}
    assert compose_services(config) == (("postgres", "webapp"),
                                        {"webapp": "r/trigger.dev:v4.5.10",
                                         "postgres": "postgres:14"})
    inst = from_result({"layout": "v4", "path": "/opt/trigger", "config": config,
                        "containers": []}, settings({}))
    assert inst.missing_services == ["postgres", "webapp"] and inst.version is None
