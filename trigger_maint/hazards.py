"""Known upgrade hazards of self-hosted Trigger.dev, kept as data.

A hazard applies to a jump when the running version is in `from_versions` and the target
in `to_versions`; `update` refuses the jump until each one is acknowledged by its `ack` name.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.specifiers import SpecifierSet
from packaging.version import Version


@dataclass(frozen=True)
class Hazard:
    """One upgrade hazard and the jumps it applies to."""

    id: str
    from_versions: str  # packaging specifier the running version must match
    to_versions: str  # packaging specifier the target version must match
    ack: str  # name given to `update --ack` to go ahead anyway
    text: str

    def applies(self, running: Version | None, target: Version) -> bool:
        """True for this jump; an unknown running version counts as matching."""
        return (running is None or SpecifierSet(self.from_versions).contains(
            running, prereleases=True)) and SpecifierSet(self.to_versions).contains(
            target, prereleases=True)


HAZARDS = (
    Hazard(
        id="v3-to-v4",
        from_versions="<4.0.0",
        to_versions=">=4.0.0",
        ack="v3-to-v4",
        text="v4 is a new installation (new compose files, supervisor instead of coordinator "
             "and docker-provider, new database layout), not an in-place update of v3; "
             "changing the image tag alone breaks the installation.",
    ),
    Hazard(
        id="clickhouse-secure-url",
        from_versions="<4.4.6",
        to_versions=">=4.4.6",
        ack="clickhouse-url",
        text="From 4.4.6 the webapp entrypoint adds ?secure=true to the ClickHouse URL and "
             "goose rejects a plain http:// URL: the webapp restarts in a loop until "
             "CLICKHOUSE_URL is fixed (triggerdotdev/trigger.dev#3674).",
    ),
    Hazard(
        id="clickhouse-25.8",
        from_versions="<4.5.0",
        to_versions=">=4.5.0",
        ack="clickhouse-version",
        text="4.5.0 and later need ClickHouse 25.8 or newer; the old bitnamilegacy/clickhouse "
             "image (25.5) rejects inserts and no runs appear in the dashboard "
             "(triggerdotdev/trigger.dev#4325).",
    ),
    Hazard(
        id="sdk-v3-tasks",
        from_versions="<4.5.1",
        to_versions=">=4.5.1",
        ack="sdk-v3",
        text="4.5.0 is the last version that runs tasks deployed with the v3 SDK; from 4.5.1 "
             "they are rejected. Redeploy every project with SDK v4 first.",
    ),
    Hazard(
        id="default-secrets",
        from_versions="<4.5.6",
        to_versions=">=4.5.6",
        ack="secrets",
        text="4.5.6 refuses to boot with the old default secrets from .env.example "
             "(POSTGRES_PASSWORD=unsafe-postgres-pw, the fixed hex secrets, "
             "CLICKHOUSE_PASSWORD=password); replace them (generate-secrets.sh) or set "
             "ALLOW_INSECURE_DEFAULT_SECRETS=1. Never rotate ENCRYPTION_KEY: it breaks "
             "stored data.",
    ),
    Hazard(
        id="clickhouse-image",
        from_versions="<4.5.10",
        to_versions=">=4.5.10",
        ack="clickhouse-image",
        text="From 4.5.10 the compose files use the official clickhouse/clickhouse-server "
             "image instead of bitnamilegacy/clickhouse; take the new compose files from "
             "hosting/docker and check the ClickHouse volume and settings carry over.",
    ),
)


def applicable(running: Version | None, target: Version) -> list[Hazard]:
    """The hazards of the jump from `running` to `target`."""
    return [hazard for hazard in HAZARDS if hazard.applies(running, target)]
