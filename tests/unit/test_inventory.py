import json
from datetime import UTC, datetime

from trigger_maint.inventory import (
    containers,
    image_repo,
    image_tag,
    normalize_version,
    parse_json_lines,
    parse_time,
    running_version,
)

WEBAPP = {
    "Id": "5f1c0e7a9b2d4c3e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e",
    "Name": "/trigger-webapp-1",
    "RestartCount": 2,
    "Image": "sha256:aaa",
    "State": {"Status": "running", "Health": {"Status": "healthy"}, "ExitCode": 0,
              "StartedAt": "2026-11-29T10:00:00.123456789Z",
              "FinishedAt": "0001-01-01T00:00:00Z"},
    "Config": {"Image": "ghcr.io/triggerdotdev/trigger.dev:v4",
               "Env": ["PATH=/usr/bin", "BUILD_APP_VERSION=v4.5.11"],
               "Labels": {"com.docker.compose.service": "webapp"}},
    "HostConfig": {"RestartPolicy": {"Name": "unless-stopped"}},
}
IMAGE = {
    "Id": "sha256:aaa",
    "RepoDigests": ["ghcr.io/triggerdotdev/trigger.dev@sha256:d1"],
    "Config": {"Labels": {"org.opencontainers.image.version": "v4.5.11"}},
}


def test_ps_output_as_array_or_lines():
    assert parse_json_lines('[{"a":1}]') == [{"a": 1}]
    assert parse_json_lines('{"a":1}\n{"a":2}\n') == [{"a": 1}, {"a": 2}]
    assert parse_json_lines("") == []


def test_docker_times():
    assert parse_time("2026-11-29T10:00:00.123456789Z") == datetime(
        2026, 11, 29, 10, 0, 0, 123456, tzinfo=UTC)
    assert parse_time("0001-01-01T00:00:00Z") is None


def test_container_fields():
    (c,) = containers([WEBAPP])
    assert (c.name, c.service, c.state, c.health, c.restart_count) == (
        "trigger-webapp-1", "webapp", "running", "healthy", 2)
    assert c.restart_policy == "unless-stopped" and c.running and c.id == "5f1c0e7a9b2d"
    assert c.uptime_seconds(datetime(2026, 11, 29, 10, 1, tzinfo=UTC)) > 59


def test_image_reference_parts():
    assert image_tag("127.0.0.1:5000/triggerdotdev/trigger.dev:v4.5.10") == "v4.5.10"
    assert image_tag("127.0.0.1:5000/postgres") == ""
    assert image_repo("127.0.0.1:5000/triggerdotdev/trigger.dev:v4@sha256:x") == \
        "127.0.0.1:5000/triggerdotdev/trigger.dev"
    assert normalize_version("v4.5.10") == "4.5.10"
    assert normalize_version("4.6.0-rc.1") == "4.6.0-rc.1"
    assert normalize_version("latest") is None


def test_floating_tag_version_comes_from_the_image():
    v = running_version(WEBAPP, IMAGE, "", "v4")
    assert (v.version, v.source, v.tag, v.floating, v.digest) == (
        "4.5.11", "BUILD_APP_VERSION", "v4", True, "sha256:d1")


def test_v3_version_comes_from_package_json():
    webapp = {**WEBAPP, "Config": {"Image": "ghcr.io/triggerdotdev/trigger.dev:v3", "Env": []}}
    v = running_version(webapp, {"Config": {"Labels": {}}}, json.dumps({"version": "3.3.17"}))
    assert (v.version, v.source) == ("3.3.17", "package.json")


def test_unknown_version_is_none():
    webapp = {**WEBAPP, "Config": {"Image": "ghcr.io/triggerdotdev/trigger.dev:main", "Env": []}}
    assert running_version(webapp, None, "not json").version is None
