"""What a Trigger.dev installation looks like on disk: the v4, v3 and runbook presets.

Every script finds the installation itself (one round trip): it is rendered with the
candidate layouts and picks the first whose compose files exist and whose marker matches.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .config import Settings
from .errors import ConfigError


@dataclass(frozen=True)
class Layout:
    """One installation layout; every field can be overridden by configuration."""

    name: str
    compose_files: tuple[str, ...]  # relative to the installation path
    project: str  # compose project name (-p)
    webapp_service: str
    db_service: str
    db_user: str
    db_name: str
    redis_service: str
    pin: str  # where the version is pinned: "dotenv" (TRIGGER_IMAGE_TAG in .env) or "image"
    webapp_port: int  # host port of the webapp
    marker: str = ""  # text the first compose file must contain to match ("" = any)
    image_repo: str = "triggerdotdev/trigger.dev"
    run_container_prefix: str = "runner-"  # exited task-run containers that pile up
    volumes: tuple[str, ...] = ()  # named volumes worth backing up on request
    pin_variable: str = "TRIGGER_IMAGE_TAG"

    @property
    def major(self) -> int:
        """The Trigger.dev major line this layout belongs to (v3 or v4)."""
        return 3 if self.name == "v3" else 4


PRESETS: dict[str, Layout] = {
    "v4": Layout(
        name="v4",
        compose_files=("webapp/docker-compose.yml", "worker/docker-compose.yml"),
        project="trigger",
        webapp_service="webapp",
        db_service="postgres",
        db_user="postgres",
        db_name="main",
        redis_service="redis",
        pin="dotenv",
        webapp_port=8030,
        volumes=("shared",),
    ),
    "runbook": Layout(
        name="runbook",
        compose_files=("docker-compose.yml",),
        project="trigger",
        webapp_service="webapp",
        db_service="postgres",
        db_user="trigger",
        db_name="trigger",
        redis_service="redis",
        pin="image",
        webapp_port=3030,
        marker="container_name: trigger-webapp",
    ),
    "v3": Layout(
        name="v3",
        compose_files=("docker-compose.yml",),
        project="trigger",
        webapp_service="webapp",
        db_service="postgres",
        db_user="postgres",
        db_name="postgres",
        redis_service="redis",
        pin="dotenv",
        webapp_port=3040,
        marker="docker-provider",
        run_container_prefix="task-run",
    ),
}


def _configured(layout: Layout, s: Settings) -> Layout:
    changes = {}
    if s.compose_files:
        changes["compose_files"] = tuple(s.compose_files)
    if s.project:
        changes["project"] = s.project
    return dataclasses.replace(layout, **changes)


def candidates(s: Settings) -> list[Layout]:
    """Layouts a script should try, in detection order (just one when configured)."""
    if s.layout != "auto":
        return [_configured(PRESETS[s.layout], s)]
    return [_configured(layout, s) for layout in PRESETS.values()]


def resolve(name: str, s: Settings) -> Layout:
    """The layout a script reported finding, with configuration applied."""
    if name not in PRESETS:
        raise ConfigError(f"unknown layout {name!r}")
    return _configured(PRESETS[name], s)
