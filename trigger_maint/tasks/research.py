"""Phase 1: what to update to, and whether the running version is unsafe."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from ..errors import CHECK_FAILED, ConfigError, MaintError, UnsafeError
from ..github import GitHub
from ..hazards import applicable
from ..inventory import RunningVersion
from ..oci import Registry
from ..output import emit, plain
from ..research import (
    Research,
    affecting,
    choose,
    describe,
    notes_between,
    releases,
    tag_version,
)
from .common import check_exit, phase_task, run_preflight, session_for


def _running(rv: RunningVersion | None) -> Version | None:
    try:
        return Version(rv.version) if rv and rv.version else None
    except InvalidVersion:
        return None


def _base(rv: RunningVersion | None, running: Version | None, **fields) -> Research:
    return Research(
        running=rv.version if running else None,
        running_tag=rv.tag if rv else "",
        running_digest=rv.digest if rv else "",
        floating=bool(rv and rv.floating),
        **fields,
    )


def _given(target: str, running: Version | None, major: int | None, pre: bool,
           has_image, image: str) -> dict:
    """Research fields for `--target` (GitHub is not asked: offline use)."""
    tag = "v" + target.strip().removeprefix("v")
    version = tag_version(tag, pre=True)
    if version is None:
        raise ConfigError(f"--target {target!r}: expected a version like v4.5.12")
    if version.is_prerelease and not pre:
        raise ConfigError(f"--target {tag} is a pre-release; add --pre to allow it")
    if major is not None and version.major != major:
        raise UnsafeError(f"--target {tag} leaves the running v{major} line; "
                          "add --allow-major to allow it")
    if running is not None and version < running:
        raise UnsafeError(f"--target {tag} is older than the running v{running}; migrations "
                          "only go forward, going back is rollback's job")
    fields = dict(latest=None, advisories=[], advisories_checked=False, source="--target")
    if running is not None and version == running:
        return dict(fields, target=None, target_tag="", target_digest="", hazards=[],
                    update_available=False)
    digest = has_image(tag)
    if not digest:
        raise UnsafeError(f"--target {tag}: no image {image}:{tag} in the registry; "
                          "refusing to propose it")
    return dict(fields, target=tag[1:], target_tag=tag, target_digest=digest,
                hazards=applicable(running, version), update_available=running is not None)


def _looked_up(github: GitHub, running: Version | None, major: int | None, pre: bool,
               has_image) -> dict:
    """Research fields from GitHub's releases and advisories and the registry."""

    def reached_running(page: list[dict]) -> bool:
        versions = (tag_version(item.get("tag_name") or "", pre=True) for item in page)
        return running is not None and any(
            v is not None and v.major == running.major and v <= running for v in versions)

    candidates = releases(github.releases(stop=reached_running), pre)
    found, digest, skipped = choose(candidates, running, major, has_image)
    if found is not None:
        latest = found.name
    else:
        known = running is not None and any(r.version == running for r in candidates)
        latest = str(running) if known else None
    target = found if running is not None else None
    advisories = affecting(github.advisories(), running) if running is not None else []
    return dict(
        latest=latest,
        target=target.name if target else None,
        target_tag=target.tag if target else "",
        target_digest=digest if target else "",
        update_available=target is not None,
        advisories=advisories,
        advisories_checked=True,
        hazards=applicable(running, target.version) if target else [],
        notes=notes_between(candidates, running, target.version) if target else [],
        skipped=skipped,
    )


def run_research(session, target=None, allow_major=False, pre=False) -> Research:
    """Phase 1 for `session`'s host; kept in session.outcomes["research"] for update."""
    cached = session.outcomes.get("research")
    if cached is not None and (cached.requested, cached.allow_major, cached.pre) == (
            target, allow_major, pre):
        return cached
    installation = run_preflight(session).installation
    rv = installation.version
    running = _running(rv)
    major = None if allow_major else (running.major if running else installation.layout.major)
    s = session.settings
    registry = Registry(s.registry, s.http_timeout)
    repo = installation.layout.image_repo
    digests: dict[str, str | None] = {}

    def has_image(tag: str) -> str | None:
        if tag not in digests:
            digests[tag] = registry.digest(repo, tag)
        return digests[tag]

    try:
        if target:
            fields = _given(target, running, major, pre, has_image, f"{s.registry}/{repo}")
        else:
            fields = _looked_up(GitHub(s), running, major, pre, has_image)
    except MaintError as exc:
        raise type(exc)(f"{session.label}: {exc}") from None
    found = _base(rv, running, requested=target, allow_major=allow_major, pre=pre, **fields)
    session.outcomes["research"] = found
    return found


@phase_task(help={
    "target": "propose this version (vX.Y.Z) without asking GitHub; its image must exist",
    "allow_major": "allow a newer major version than the running one",
    "pre": "consider pre-releases (vX.Y.Z-rc.N)",
})
def research(c, target=None, allow_major=False, pre=False, dry_run=False, json=False,
             scripts=False):
    """Find the newest release and the advisories that affect the running one.

    The newest release with a published image, advisories affecting the running version,
    breaking changes and upgrade hazards. Exit 1 when an advisory affects it."""
    session = session_for(c, dry_run, json, scripts)
    found = run_research(session, target=target, allow_major=allow_major, pre=pre)
    code = 0 if found.ok else CHECK_FAILED
    emit(session, "research", plain(found),
         describe(found, session.settings.registry), exit_code=code)
    check_exit(session, code, "an advisory affects the running version")
