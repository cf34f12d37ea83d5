"""The post-change checks of verify, from what the verify script measured. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from . import logs
from .hostpaths import STAMP_FORMAT
from .installation import Installation
from .inventory import Container, containers, image_tag, normalize_version

COMPLETED_POLICIES = ("", "no")  # a one-shot service that exited 0 under these is done


@dataclass(frozen=True)
class Check:
    """One verify check: state ok, fail or unknown (unknown counts as a failure)."""

    name: str
    state: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.state == "ok"


@dataclass(frozen=True)
class VerifyReport:
    """Every check verify made on one host."""

    host: str
    checks: tuple[Check, ...]
    intended: str | None  # the version that should run ("" for a floating pin)
    running: str | None

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]


def _ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def _fail(name: str, detail: str) -> Check:
    return Check(name, "fail", detail)


def container_problem(c: Container) -> str:
    """Why a service container is not fine, or "" when it is."""
    if c.running:
        return "" if c.health in ("", "healthy") else f"{c.health}"
    if c.state == "exited" and c.exit_code == 0 and c.restart_policy in COMPLETED_POLICIES:
        return ""
    if c.state == "exited":
        return f"exited ({c.exit_code})"
    return c.state


def last_errors(entries: list, inspected: list) -> dict[str, str]:
    """The last line at error level or above each service logged since its container
    started, noise or not: why a service that is down went down."""
    found = {}
    for raw, lines in _by_container(entries, inspected):
        service, image = _identity(raw)
        errors = logs.judge(lines, datetime.min.replace(tzinfo=UTC), service, image,
                            logs.NoiseRules((), 0, ())) if lines else []
        if errors:
            found[service] = errors[-1].text[:200]
    return found


def services_check(services, after: list[Container], why: dict | None = None) -> Check:
    """Every expected service has a container, running and healthy (or completed); for one
    that is not, the last error it logged."""
    problems = []
    why = why or {}
    for service in services:
        own = [c for c in after if c.service == service]
        if not own:
            problems.append(f"{service}: no container")
        for problem in filter(None, map(container_problem, own)):
            last = f" (last error: {why[service]})" if service in why else ""
            problems.append(f"{service}: {problem}{last}")
    if problems:
        return _fail("services", "; ".join(problems))
    return _ok("services", f"{len(services)} running and healthy")


def restarts_check(before: list[Container], after: list[Container], seconds: int) -> Check:
    """No container restarted, was replaced or is restarting during the observation window."""
    first = {c.id: c for c in before}
    problems = []
    for c in after:
        earlier = first.get(c.id)
        if c.state == "restarting":
            problems.append(f"{c.service or c.name}: restarting")
        elif earlier is None:
            problems.append(f"{c.service or c.name}: new container during the window")
        elif c.restart_count > earlier.restart_count:
            problems.append(f"{c.service or c.name}: restarted "
                            f"{c.restart_count - earlier.restart_count} times in {seconds} s")
    if problems:
        return _fail("restarts", "; ".join(problems))
    return _ok("restarts", f"no restarts in {seconds} s")


def _probe(result: dict, key: str) -> tuple[str, int | None]:
    probe = result.get(key) or {}
    return (probe.get("output") or "").strip(), probe.get("exit")


def healthcheck_check(result: dict, url: str) -> Check:
    """The webapp's /healthcheck answers 200 from the host."""
    output, code = _probe(result, "health")
    *body, status = output.splitlines() or [""]
    text = " ".join(line.strip() for line in body if line.strip())[:120]
    if code == 0 and status == "200":
        return _ok("healthcheck", f"{url}: 200")
    if code == 0 and status.isdigit():
        return _fail("healthcheck", f"{url}: HTTP {status}" + (f" ({text})" if text else ""))
    return _fail("healthcheck", f"{url}: no answer ({text or output or 'exit ' + str(code)})")


def _last_line(output: str) -> str:
    return output.splitlines()[-1].strip() if output else ""


def database_check(result: dict) -> Check:
    """`_prisma_migrations` is readable in the database container."""
    output, code = _probe(result, "database")
    if code == 0 and _last_line(output).isdigit():
        return _ok("database", f"_prisma_migrations readable ({_last_line(output)} migrations)")
    return _fail("database", f"_prisma_migrations not readable: {_last_line(output) or code}")


def redis_check(result: dict) -> Check:
    """Redis answers PING with PONG."""
    output, code = _probe(result, "redis")
    if code == 0 and _last_line(output) == "PONG":
        return _ok("redis", "PING answered PONG")
    return _fail("redis", f"PING failed: {_last_line(output) or code}")


def _by_container(entries: list, inspected: list):
    """(docker inspect object, candidate log lines) of every container that has both."""
    by_id = {str(raw.get("Id", "")): raw for raw in inspected or [] if isinstance(raw, dict)}
    for entry in entries or []:
        raw = by_id.get(str(entry.get("id", "")))
        if raw is not None:
            yield raw, entry.get("lines") or []


def _identity(raw: dict) -> tuple[str, str]:
    """A container's compose service (else its name) and image."""
    config = raw.get("Config") or {}
    service = (config.get("Labels") or {}).get("com.docker.compose.service", "") or \
        str(raw.get("Name", "")).lstrip("/")
    return service, str(config.get("Image") or "")


def logs_check(entries: list, inspected: list, changed_at: datetime | None) -> Check:
    """No container logged a line at error level or above since it became healthy (or since
    the change, when that was later). Start-up noise and known harmless lines don't count."""
    findings = []
    for raw, lines in _by_container(entries, inspected):
        service, image = _identity(raw)
        config = raw.get("Config") or {}
        state = raw.get("State") or {}
        health = state.get("Health") or {}
        since = logs.counts_from(service, image, state.get("StartedAt") or "",
                                 health.get("Log"), bool(config.get("Healthcheck")))
        if changed_at is not None and changed_at > since:
            since = changed_at
        findings += logs.judge(lines, since, service, image)
    if findings:
        return _fail("logs", logs.summary(findings))
    return _ok("logs", "no error lines since the services became healthy")


def pinned_version(installation: Installation) -> str:
    """What the installation pins: TRIGGER_IMAGE_TAG in .env, or the webapp's image tag."""
    version = installation.version
    if installation.layout.pin == "dotenv" and version is not None and version.pinned_tag:
        return version.pinned_tag
    return image_tag(installation.images.get(installation.layout.webapp_service, ""))


def intended_version(update, installation: Installation) -> str:
    """The version that should run: the update's target (or origin when it rolled back)
    when an update changed something in this run, else the pinned tag."""
    if update is not None and getattr(update, "changed", False):
        wanted = update.from_version if getattr(update, "rolled_back", False) \
            else update.to_version
        return normalize_version(wanted) or wanted or ""
    pinned = pinned_version(installation)
    return normalize_version(pinned) or pinned


def version_check(installation: Installation, intended: str, pinned_image_id: str) -> Check:
    """The webapp runs the intended version (a floating pin: the image the tag names here)."""
    running = installation.version.version if installation.version else None
    image_id = installation.version.image_id if installation.version else ""
    if not intended:
        return Check("version", "unknown", "no pinned version found")
    if normalize_version(intended):
        if running == intended:
            return _ok("version", f"v{running} as intended")
        return _fail("version", f"running {'v' + running if running else 'unknown'}, "
                                f"intended v{intended}")
    if image_id and image_id == pinned_image_id:
        return _ok("version", f"v{running or '?'}: the image {intended!r} names on the host")
    return _fail("version", f"running v{running or '?'} ({image_id[:19] or 'no container'}), "
                            f"but {intended!r} names {pinned_image_id[:19] or 'no local image'}")


def changed_at(update) -> datetime | None:
    """When this run's update began (its rollback point's stamp, UTC); None when no update
    changed anything."""
    if update is None or not getattr(update, "changed", False):
        return None
    try:
        began = datetime.strptime((getattr(update, "point", "") or "")[:15], STAMP_FORMAT)
    except ValueError:
        return None
    return began.replace(tzinfo=UTC)


def verify_report(host: str, facts, intended: str, observe_seconds: int,
                  changed: datetime | None) -> VerifyReport:
    """All checks from the verify script's result (scripts.verify.VerifyFacts)."""
    installation, raw = facts.installation, facts.raw
    before = list(installation.containers)
    after = containers(raw.get("containers_after"))
    checks = (
        services_check(installation.services, after,
                       last_errors(raw.get("logs"), raw.get("containers_after"))),
        restarts_check(before, after, observe_seconds),
        healthcheck_check(raw, installation.webapp_url),
        database_check(raw),
        redis_check(raw),
        logs_check(raw.get("logs"), raw.get("containers_after"), changed),
        version_check(installation, intended, raw.get("pinned_image_id", "")),
    )
    return VerifyReport(host=host, checks=checks, intended=intended,
                        running=installation.running)


def describe(report: VerifyReport) -> str:
    """The checks for people, one line each, and the verdict."""
    lines = [f"{check.state:8} {check.name:12} {check.detail}" for check in report.checks]
    if report.ok:
        lines.append("verify: all checks passed")
    else:
        lines.append("verify FAILED: " + ", ".join(c.name for c in report.failures))
    return "\n".join(lines)


def settling(found: list[Container]) -> list[str]:
    """Containers still coming back after the engine started (empty when settled).

    The engine restarts containers by their restart policy before it answers, so an exited
    container is not waited for: verify reports it."""
    return [c.name for c in found
            if c.state in ("created", "restarting") or (c.running and c.health == "starting")]
