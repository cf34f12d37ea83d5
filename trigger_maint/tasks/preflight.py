"""Phase 0: connect, check Docker and Compose, find the installation and its backup folder."""

from __future__ import annotations

from ..installation import Preflight
from ..output import emit, plain
from ..units import v
from .common import phase_task, run_preflight, session_for


def describe(p: Preflight) -> str:
    """The preflight result for people."""
    inst = p.installation
    version = inst.version
    running = "unknown"
    if version is not None:
        running = v(version.version) or "unknown"
        running += f" (image {version.image_ref}"
        running += f", digest {version.digest[:19]})" if version.digest else ")"
    return "\n".join([
        f"host        {p.host} ({p.hostname}, {p.os}, kernel {p.kernel})",
        f"docker      {p.docker_version}, compose {p.compose_version}",
        f"install     {inst.path} (layout {inst.layout.name},"
        f" files {', '.join(inst.layout.compose_files)}, project {inst.layout.project})",
        f"services    {', '.join(inst.services) or 'none'}",
        f"running     {running}",
        f"backups     {p.backup_dir} ({p.backup_dir_reason})",
    ])


@phase_task(help={"layout": "installation layout: auto, v4, v3 or runbook",
                  "path": "installation folder on the host"})
def preflight(c, layout=None, path=None, dry_run=False, json=False, scripts=False):
    """Connect and find the installation and its backup folder.

    OS, Docker, Compose, the installation (layout, services, running version) and the
    backup folder it uses (configured, or found)."""
    session = session_for(c, dry_run, json, scripts, layout=layout, path=path)
    found = run_preflight(session)
    emit(session, "preflight", plain(found), describe(found))
