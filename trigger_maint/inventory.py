"""Pure parsers for what Docker reports: containers, images and the running version."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

VERSION_RE = re.compile(r"^v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$")
FLOATING_TAGS = frozenset({"v3", "v4", "v4-beta", "latest", "main"})


def parse_json_lines(text: str) -> list:
    """A JSON array, or one JSON value per line (docker compose ps prints either)."""
    text = (text or "").strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def parse_time(value: str | None) -> datetime | None:
    """Docker's RFC 3339 time (nanoseconds allowed); None for the zero time."""
    if not value or value.startswith("0001-"):
        return None
    value = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Container:
    """One container as `docker inspect` describes it."""

    id: str
    name: str
    service: str
    state: str  # running, exited, restarting, created, ...
    health: str  # healthy, unhealthy, starting, or "" without a healthcheck
    restart_count: int
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int
    image_id: str
    image_ref: str  # what the container was created from (may be a floating tag)
    restart_policy: str

    @property
    def running(self) -> bool:
        return self.state == "running"

    def uptime_seconds(self, now: datetime | None = None) -> float | None:
        if not self.running or self.started_at is None:
            return None
        return ((now or datetime.now(UTC)) - self.started_at).total_seconds()


def container(raw: dict) -> Container:
    """A Container from one `docker inspect` object."""
    state = raw.get("State") or {}
    config = raw.get("Config") or {}
    labels = config.get("Labels") or {}
    host = raw.get("HostConfig") or {}
    return Container(
        id=raw.get("Id", "")[:12],
        name=raw.get("Name", "").lstrip("/"),
        service=labels.get("com.docker.compose.service", ""),
        state=state.get("Status", "unknown"),
        health=(state.get("Health") or {}).get("Status", ""),
        restart_count=int(raw.get("RestartCount") or 0),
        started_at=parse_time(state.get("StartedAt")),
        finished_at=parse_time(state.get("FinishedAt")),
        exit_code=int(state.get("ExitCode") or 0),
        image_id=raw.get("Image", ""),
        image_ref=config.get("Image", ""),
        restart_policy=(host.get("RestartPolicy") or {}).get("Name", ""),
    )


def containers(raw: list | None) -> list[Container]:
    """Containers from a `docker inspect` array, sorted by service then name."""
    return sorted((container(item) for item in raw or []), key=lambda c: (c.service, c.name))


def image_tag(ref: str) -> str:
    """The tag of an image reference ("" when it has none or only a digest)."""
    ref = ref.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def image_repo(ref: str) -> str:
    """An image reference without its tag and digest."""
    ref = ref.split("@", 1)[0]
    head, _, last = ref.rpartition("/")
    name = last.split(":", 1)[0]
    return f"{head}/{name}" if head else name


def normalize_version(text: str | None) -> str | None:
    """"v4.5.10" or "4.5.10" -> "4.5.10"; None for anything that is not a version."""
    match = VERSION_RE.match((text or "").strip())
    return match.group(1) if match else None


@dataclass(frozen=True)
class RunningVersion:
    """The Trigger.dev version a host runs, and how we know it."""

    version: str | None  # "4.5.10", or None when it cannot be told
    source: str  # BUILD_APP_VERSION, label, package.json, tag, or unknown
    image_ref: str  # the reference the webapp was created from
    tag: str  # its tag (maybe floating)
    image_id: str
    digest: str  # repo digest of the running image ("" when never pulled)
    pinned_tag: str  # what .env pins (TRIGGER_IMAGE_TAG), "" when not pinned there

    @property
    def floating(self) -> bool:
        return self.tag in FLOATING_TAGS


def _env(raw: dict) -> dict:
    pairs = ((raw.get("Config") or {}).get("Env")) or []
    return dict(item.split("=", 1) for item in pairs if "=" in item)


def running_version(webapp: dict | None, image: dict | None, core_package: str,
                    pinned_tag: str = "") -> RunningVersion:
    """The version from env, OCI label, an exact version tag, then core package.json."""
    webapp = webapp or {}
    image = image or {}
    ref = (webapp.get("Config") or {}).get("Image", "")
    tag = image_tag(ref)
    labels = (image.get("Config") or {}).get("Labels") or {}
    # An exact version tag outranks packages/core/package.json, which can lag the release
    # (upstream's docker-only v3.3.18 still says 3.3.17).
    candidates = [
        ("BUILD_APP_VERSION", _env(webapp).get("BUILD_APP_VERSION")),
        ("label", labels.get("org.opencontainers.image.version")),
        ("tag", tag),
    ]
    try:
        candidates.append(("package.json", json.loads(core_package).get("version")))
    except (ValueError, AttributeError):
        pass
    version, source = None, "unknown"
    for name, value in candidates:
        if normalize_version(value):
            version, source = normalize_version(value), name
            break
    repo = image_repo(ref)
    digests = image.get("RepoDigests") or []
    digest = next((d.split("@", 1)[1] for d in digests if image_repo(d) == repo), "")
    if not digest and digests:
        digest = digests[0].split("@", 1)[1]
    return RunningVersion(version=version, source=source, image_ref=ref, tag=tag,
                          image_id=webapp.get("Image", ""), digest=digest,
                          pinned_tag=pinned_tag)
