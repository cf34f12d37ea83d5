"""The installation a script found: layout, services, containers and running version."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Settings
from .inventory import Container, RunningVersion, containers, running_version
from .layout import Layout, resolve


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

    def service_containers(self, service: str) -> list[Container]:
        return [c for c in self.containers if c.service == service]

    @property
    def missing_services(self) -> list[str]:
        present = {c.service for c in self.containers}
        return [s for s in self.services if s not in present]


def compose_services(config: dict | None) -> tuple[tuple[str, ...], dict]:
    """Service names and their image references from `docker compose config --format json`."""
    services = (config or {}).get("services") or {}
    return tuple(sorted(services)), {name: (spec or {}).get("image", "")
                                     for name, spec in services.items()}


def from_result(result: dict, s: Settings) -> Installation:
    """An Installation from a script result that included the installation parts."""
    services, images = compose_services(result.get("config"))
    version = None
    if "webapp_container" in result:
        version = running_version(result.get("webapp_container"), result.get("webapp_image"),
                                  result.get("core_package", ""), result.get("pinned_tag", ""))
    return Installation(
        layout=resolve(result["layout"], s),
        path=result["path"],
        webapp_url=result.get("webapp_url", ""),
        services=services,
        images=images,
        containers=tuple(containers(result.get("containers"))),
        version=version,
    )
