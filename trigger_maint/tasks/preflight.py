"""Phase 0: connect, check Docker and Compose, find the installation."""

from __future__ import annotations

from dataclasses import dataclass

from ..installation import Installation, from_result
from ..output import emit
from .common import phase_task, session_for


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
    installation: Installation


def run_preflight(session) -> Preflight:
    """Phase 0 on `session`'s host (once per run); the result is kept for later phases."""
    if "preflight" in session.results:
        return session.results["preflight"]
    result = session.run("preflight")
    found = Preflight(
        host=session.label,
        hostname=result["hostname"],
        os=result["os"],
        kernel=result["kernel"],
        boot_id=result["boot_id"],
        docker_version=result["docker_version"],
        compose_version=result["compose_version"],
        docker_root=result["docker_root"],
        installation=from_result(result, session.settings),
    )
    session.results["preflight"] = found
    return found


def describe(p: Preflight) -> str:
    """The preflight result for people."""
    inst = p.installation
    version = inst.version
    running = "unknown"
    if version is not None:
        running = f"v{version.version}" if version.version else "unknown"
        running += f" (image {version.image_ref}"
        running += f", digest {version.digest[:19]})" if version.digest else ")"
    return "\n".join([
        f"host        {p.host} ({p.hostname}, {p.os}, kernel {p.kernel})",
        f"docker      {p.docker_version}, compose {p.compose_version}",
        f"install     {inst.path} (layout {inst.layout.name},"
        f" files {', '.join(inst.layout.compose_files)}, project {inst.layout.project})",
        f"services    {', '.join(inst.services) or 'none'}",
        f"running     {running}",
    ])


@phase_task(help={"layout": "installation layout: auto, v4, v3 or runbook",
                  "path": "installation folder on the host"})
def preflight(c, layout=None, path=None, dry_run=False, json=False):
    """Connect; report OS, Docker, Compose and the installation (layout, services, version)."""
    session = session_for(c, dry_run, json, layout=layout, path=path)
    found = run_preflight(session)
    emit(session, found, describe(found))
