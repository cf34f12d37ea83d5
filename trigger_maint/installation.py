"""The installation a script found: layout, services, containers and running version; and
the host as preflight saw it."""

from __future__ import annotations

from dataclasses import dataclass

from .inventory import Container, RunningVersion, containers, running_version
from .layout import Layout


@dataclass(frozen=True)
class Installation:
    """What every script reports about the installation (from the shared template parts)."""

    layout: Layout
    path: str
    webapp_url: str
    services: tuple[str, ...]  # services the compose files declare
    images: dict  # service -> image reference from the compose config
    containers: tuple[Container, ...]
    version: RunningVersion | None
    config: dict | None = None  # `docker compose config --format json` (None: it failed)

    def service_containers(self, service: str) -> list[Container]:
        return [c for c in self.containers if c.service == service]

    @property
    def missing_services(self) -> list[str]:
        present = {c.service for c in self.containers}
        return [s for s in self.services if s not in present]

    @property
    def running(self) -> str | None:
        """The running Trigger.dev version ("4.5.10"), None when it cannot be told."""
        return self.version.version if self.version else None


def compose_services(config: dict | None) -> tuple[tuple[str, ...], dict]:
    """Service names and their image references from `docker compose config --format json`."""
    services = (config or {}).get("services") or {}
    return tuple(sorted(services)), {name: (spec or {}).get("image", "")
                                     for name, spec in services.items()}


def found_layout(name: str, layouts) -> Layout:
    """The candidate layout the script reported finding."""
    for layout in layouts:
        if layout.name == name:
            return layout
    raise ValueError(f"the script found layout {name!r}, which was not a candidate")


def from_result(result: dict, layouts) -> Installation:
    """An Installation from a script result that included the installation parts;
    `layouts` are the candidates the script was rendered with."""
    config = result.get("config") if isinstance(result.get("config"), dict) else None
    services, images = compose_services(config)
    version = None
    if "webapp_container" in result:
        version = running_version(result.get("webapp_container"), result.get("webapp_image"),
                                  result.get("core_package", ""), result.get("pinned_tag", ""))
    return Installation(
        layout=found_layout(result["layout"], layouts),
        path=result["path"],
        webapp_url=result.get("webapp_url", ""),
        services=services,
        images=images,
        containers=tuple(containers(result.get("containers"))),
        version=version,
        config=config,
    )


@dataclass(frozen=True)
class Preflight:
    """The host and its installation as preflight found them."""

    host: str
    hostname: str
    os: str
    kernel: str
    boot_id: str
    docker_version: str
    compose_version: str
    docker_root: str
    zstd: bool  # the host can compress backups with zstd
    installation: Installation
    install_dumps: int  # trigger-db dumps in <path>/backups
    backup_dir: str  # the backup folder this run uses (configured, or found)
    backup_dir_reason: str  # why that folder: "configured", "runbook layout", ...
