"""The verify script: services, restarts over a window, /healthcheck, database, Redis, the
version, and candidate error lines of every container."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ..installation import Installation, from_result
from ..logs import CANDIDATE_PATTERN
from .base import InstallInputs, Script, field


@dataclass(frozen=True)
class VerifyInputs:
    install: InstallInputs
    observe_seconds: int
    candidate_pattern: str = CANDIDATE_PATTERN
    max_lines: int = 200


@dataclass(frozen=True)
class VerifyFacts:
    """What the verify script measured."""

    now: datetime
    installation: Installation  # as first sampled
    raw: dict


def verify_facts(raw: dict, inputs: VerifyInputs) -> VerifyFacts:
    now = field(raw, "now", int)
    return VerifyFacts(now=datetime.fromtimestamp(now, UTC) if now else datetime.now(UTC),
                       installation=from_result(raw, inputs.install.layouts), raw=raw)


VERIFY = Script("verify", VerifyInputs, verify_facts,
                requires=("layout", "containers_after", "logs", "health"))
