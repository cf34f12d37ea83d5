"""Container logs judged as an operator would. Pure functions, no I/O beyond package data.

A line counts against a service only when its own format rates it at error level or above,
it was written at or after the window start (the service healthy, or the change verified),
and it is not known noise (data/log_noise.json). The host ships only lines matching
CANDIDATE_PATTERN, a loose superset of what counts.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from functools import lru_cache
from importlib import resources


class Level(IntEnum):
    """Severity of one log line; UNKNOWN (no recognisable level) ranks below everything."""

    UNKNOWN = 0
    DEBUG = 10
    INFO = 20
    NOTICE = 25
    WARNING = 30
    ERROR = 40
    FATAL = 50


# Level names as the services spell them (lower case). "log" is Trigger.dev's essential
# informational level; the four-letter ones are logrus's and syslog's abbreviations.
LEVEL_WORDS: dict[str, Level] = {
    "trace": Level.DEBUG, "trac": Level.DEBUG, "test": Level.DEBUG, "verbose": Level.DEBUG,
    "debug": Level.DEBUG, "debu": Level.DEBUG, "dbug": Level.DEBUG,
    "info": Level.INFO, "information": Level.INFO, "informational": Level.INFO,
    "log": Level.INFO,
    "notice": Level.NOTICE,
    "warn": Level.WARNING, "warning": Level.WARNING,
    "error": Level.ERROR, "err": Level.ERROR, "erro": Level.ERROR,
    "fatal": Level.FATAL, "fata": Level.FATAL, "panic": Level.FATAL, "pani": Level.FATAL,
    "crit": Level.FATAL, "critical": Level.FATAL, "alert": Level.FATAL,
    "emerg": Level.FATAL, "emergency": Level.FATAL,
}

# For `grep -aiE` on the host: every line level_of rates ERROR or FATAL matches (a superset).
CANDIDATE_PATTERN = (
    "err|fata|pani|crit|alert|emerg|exception|traceback|uncaught|unhandled"
    '|level"[[:space:]]*:[[:space:]]*"?([5-9][0-9]|[1-9][0-9][0-9]+)'
)

MAX_PREFIX = 120  # a level token further into the line is message text, not a level
HEALTH_LOG_KEPT = 5  # Docker remembers the last five probes

_WORD_ALT = "|".join(sorted(LEVEL_WORDS, key=len, reverse=True))
_JSON_LEVEL_KEYS = ("$level", "level", "lvl", "severity", "levelname", "log.level")
_PINO_KEYS = ("$level", "level")  # the only keys whose numbers are levels (pino's scale)

_ESCAPE = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"    # OSC, ended by BEL or ST
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"        # DCS, SOS, PM, APC strings
    r"|\x1b\[[0-?]*[ -/]*[@-~]"              # CSI
    r"|\x1b[ -/]*[0-~]"                      # two-character escapes (ESC 7, ESC 8, ESC c, ...)
    r"|\x9b[0-?]*[ -/]*[@-~]"                # 8-bit CSI
    r"|\x9d[^\x07\x9c]*(?:\x07|\x9c)?"       # 8-bit OSC
)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")

_DOCKER_STAMP = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) ?(.*)", re.DOTALL)
_TIME = re.compile(
    r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?\s*(Z|[+-]\d\d:?\d\d)?")


@dataclass(frozen=True)
class _Rule:
    """A level token: where it may appear, and how its text maps to a level."""

    name: str
    pattern: re.Pattern[str]
    levels: Mapping[str, Level] | None = None  # None: LEVEL_WORDS on the lower-cased token


_PG_LEVELS = {
    "PANIC": Level.FATAL, "FATAL": Level.FATAL, "ERROR": Level.ERROR,
    "WARNING": Level.WARNING, "NOTICE": Level.NOTICE, "LOG": Level.INFO, "INFO": Level.INFO,
    **{f"DEBUG{n}": Level.DEBUG for n in ("", 1, 2, 3, 4, 5)},
    # continuations of the line above, never a verdict of their own
    **dict.fromkeys(("DETAIL", "HINT", "STATEMENT", "CONTEXT", "QUERY", "LOCATION"),
                    Level.UNKNOWN),
}
_REDIS_LEVELS = {"#": Level.WARNING, "*": Level.NOTICE, "-": Level.DEBUG, ".": Level.DEBUG}

# Tried on the text without escapes; the earliest match wins, ties go to the earlier rule.
_RULES = (
    # {"$level":"error","message":"Failed to ...  (JSON cut off: Docker splits lines at 16 KiB)
    _Rule("json-fragment", re.compile(r'"\$?level"\s*:\s*"?(\w+)')),
    _Rule("json-fragment-word", re.compile(
        r'"(?:lvl|severity|levelname|log\.level)"\s*:\s*"([A-Za-z]+)"')),
    # 1:M 03 Dec 2026 09:00:00.000 # WARNING ...  (redis: # warning, * notice, - verbose)
    _Rule("redis", re.compile(
        r"^\d+:[XCSM] \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d\.\d{3} ([.\-*#]) "), _REDIS_LEVELS),
    # clickhouse 09:00:00.12 INFO  ==> ...  (Bitnami images' scripts)
    _Rule("bitnami", re.compile(
        r"^[\w.-]+ +\d\d:\d\d:\d\d\.\d\d +(INFO|WARN|ERROR|DEBUG) +==>")),
    # INFO[0000] ...  (logrus on a terminal)
    _Rule("logrus", re.compile(r"^(PANI|FATA|ERRO|WARN|INFO|DEBU|TRAC)\[\d+\]")),
    # 2026-12-03 09:00:00.123 UTC [64] FATAL:  ...  (PostgreSQL: two spaces after the colon)
    _Rule("postgres", re.compile(
        r"(?<!\S)(PANIC|FATAL|ERROR|WARNING|NOTICE|LOG|INFO|DEBUG[1-5]?"
        r"|DETAIL|HINT|STATEMENT|CONTEXT|QUERY|LOCATION):  "), _PG_LEVELS),
    # 09:12:01.123 [error] ...  [ERROR] ...  [warn] ...  (Elixir Logger and many others)
    _Rule("bracket", re.compile(rf"(?<![^\s\])>])\[({_WORD_ALT})\](?!\w)", re.IGNORECASE)),
    # 2026.12.03 09:00:00.123456 [ 1 ] {} <Error> ...  (ClickHouse)
    _Rule("angle", re.compile(
        r"(?<![^\s}])<(Fatal|Critical|Error|Warning|Notice|Information|Debug|Trace|Test)>"
        r"(?!\S)")),
    # time="..." level=warning msg="..."  (logfmt: registry, Go services)
    _Rule("logfmt", re.compile(
        r"(?<!\S)(?:level|lvl|severity|loglevel)=(\"?)([A-Za-z]+)\1(?!\S)", re.IGNORECASE)),
    # ERROR Unable to ..., INFO: Formatting ..., WARN: ...  (minio, Python, bare PostgreSQL)
    _Rule("line-start", re.compile(
        r"^(PANIC|FATAL|CRITICAL|ERROR|ERRO|WARNING|WARN|NOTICE|INFO|DEBUG|TRACE)(?::\s|\s+\S)")),
    # prisma:error ...  (prisma client's own log lines)
    _Rule("prisma", re.compile(r"^prisma:(error|warn|info|query)\b"),
          {"error": Level.ERROR, "warn": Level.WARNING, "info": Level.INFO,
           "query": Level.DEBUG}),
    # (node:1) [DEP0040] DeprecationWarning: ...
    _Rule("node-warning", re.compile(r"^\(node:\d+\) (?:\[[\w-]+\] )?\w*(Warning):"),
          {"Warning": Level.WARNING}),
    # Unmistakable crashes at the start of an unindented line.
    _Rule("crash", re.compile(
        r"^(?:(?:[A-Za-z_$][\w$.]*)?Error|error|[A-Za-z_$][\w$.]*Exception)"
        r"(?: \[[\w-]+\])?:(?:\s|$)"
        r"|^Traceback \(most recent call last\):"
        r"|^(?:\[[\w-]+\] )?(?:Uncaught|Unhandled)\b"), {"": Level.ERROR}),
    _Rule("crash-fatal", re.compile(r"^(?:panic: |(?i:fatal error): )"), {"": Level.FATAL}),
)


def strip_escapes(text: str) -> str:
    """Text as a terminal shows it: ANSI CSI/OSC and other escape sequences and control
    characters removed (tab kept); after a carriage return, the last text written wins."""
    text = _ESCAPE.sub("", text)
    if "\r" in text:
        text = next((part for part in reversed(text.split("\r")) if part.strip()), "")
    return _CONTROL.sub("", text)


def parse_time(text: str) -> datetime | None:
    """An aware datetime from an RFC 3339 time as Docker writes it (nanoseconds, Z or an
    offset); None when the text is not one."""
    match = _TIME.match(text.strip()) if text else None
    if not match:
        return None
    day, clock, fraction, zone = match.groups()
    zone = "+00:00" if zone in (None, "Z") else zone
    if len(zone) == 5:
        zone = f"{zone[:3]}:{zone[3:]}"
    fraction = f".{(fraction or '')[:6]:0<6}"
    try:
        return datetime.fromisoformat(f"{day}T{clock}{fraction}{zone}")
    except ValueError:
        return None


def parse_docker_line(raw: str) -> tuple[datetime | None, str]:
    """Split a `docker logs --timestamps` line into its time and text (None, raw) when it
    carries no timestamp. The line end is dropped."""
    raw = raw.rstrip("\n")
    match = _DOCKER_STAMP.match(raw)
    if match:
        when = parse_time(match.group(1))
        if when is not None:
            return when, match.group(2)
    return None, raw


def _pino_level(value: float) -> Level:
    """pino's numeric levels: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal."""
    return (Level.FATAL if value >= 60 else Level.ERROR if value >= 50
            else Level.WARNING if value >= 40 else Level.INFO if value >= 30 else Level.DEBUG)


def _word_level(word: str) -> Level:
    word = word.strip()
    if word.isdigit():
        return _pino_level(int(word))
    return LEVEL_WORDS.get(word.lower(), Level.UNKNOWN)


def _json_level(obj: Mapping) -> Level:
    for key in _JSON_LEVEL_KEYS:
        value = obj.get(key)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int | float):
            if key in _PINO_KEYS:
                return _pino_level(value)
            continue
        if isinstance(value, str):
            return LEVEL_WORDS.get(value.strip().lower(), Level.UNKNOWN)
    return Level.UNKNOWN


def _token_level(rule: _Rule, token: str) -> Level:
    if rule.levels is None:
        return _word_level(token)
    return rule.levels.get(token, Level.UNKNOWN)


def _level_of_clean(text: str) -> Level:
    if text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            return _json_level(obj)
    best: tuple[int, Level] | None = None
    for rule in _RULES:
        match = rule.pattern.search(text)
        if not match or match.start() > MAX_PREFIX:
            continue
        if best is not None and match.start() >= best[0]:
            continue
        token = next((g for g in reversed(match.groups()) if g), "")
        best = (match.start(), _token_level(rule, token))
    return best[1] if best else Level.UNKNOWN


def level_of(text: str) -> Level:
    """The level a log line (without Docker's timestamp) states in its own format:
    structured JSON, bracket or angle tags, logfmt, PostgreSQL, Redis, or an unmistakable
    crash at the start of an unindented line; UNKNOWN otherwise (stack frames included)."""
    return _level_of_clean(strip_escapes(text))


def _collapse_key(line: str) -> str:
    return re.sub(r"\d+", "#", line)


def tail_distinct(lines: Iterable[str], n: int) -> list[str]:
    """The last n distinct lines for people, in order of last appearance: Docker timestamps
    and escapes stripped, whitespace trimmed, blank lines dropped, repeats (lines that differ
    only in numbers: times, pids, counters) collapsed into the last one with a count "(xN)"."""
    counts: Counter[str] = Counter()
    last: dict[str, tuple[int, str]] = {}
    for index, raw in enumerate(lines):
        line = strip_escapes(parse_docker_line(raw)[1]).strip()
        if line:
            key = _collapse_key(line)
            counts[key] += 1
            last[key] = (index, line)
    ordered = sorted(last.items(), key=lambda item: item[1][0])[-n:] if n > 0 else []
    return [line if counts[key] == 1 else f"{line} (x{counts[key]})"
            for key, (_, line) in ordered]


# ---- start-up noise and start-up allowance, as data -------------------------------------

def image_repository(image: str) -> str:
    """An image reference's repository without registry host, tag or digest, lower case:
    "ghcr.io/triggerdotdev/trigger.dev:v4.0.4" -> "triggerdotdev/trigger.dev",
    "postgres:14" -> "postgres"."""
    name = (image or "").strip().lower().split("@", 1)[0]
    parts = name.split("/")
    if ":" in parts[-1]:
        parts[-1] = parts[-1].split(":", 1)[0]
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if len(parts) > 1 and parts[0] == "library":
        parts = parts[1:]
    return "/".join(parts)


@dataclass(frozen=True)
class Scope:
    """Which containers a rule is for: compose service names and image repositories
    (matched at a path boundary, so mirrors match too). Empty: every container."""

    services: frozenset[str] = frozenset()
    images: tuple[str, ...] = ()

    def applies(self, service: str, image: str) -> bool:
        if not self.services and not self.images:
            return True
        if service in self.services:
            return True
        repo = image_repository(image)
        return any(repo == want or repo.endswith("/" + want) for want in self.images)


@dataclass(frozen=True)
class NoiseRule:
    """A line that is known noise while a service or its dependencies (re)start."""

    scope: Scope
    pattern: re.Pattern[str]
    why: str


@dataclass(frozen=True)
class StartupOverride:
    scope: Scope
    seconds: int
    why: str
    health_passes_early: bool = False  # its health check passes before it is ready


@dataclass(frozen=True)
class NoiseRules:
    """The contents of data/log_noise.json."""

    noise: tuple[NoiseRule, ...]
    startup_default: int
    startup_overrides: tuple[StartupOverride, ...]


def _scope(entry: Mapping) -> Scope:
    return Scope(frozenset(entry.get("services", ())),
                 tuple(image_repository(i) for i in entry.get("images", ())))


def rules_from(data: Mapping) -> NoiseRules:
    """NoiseRules from the data file's parsed JSON; ValueError (or re.error) when malformed."""
    if data.get("version") != 1:
        raise ValueError(f"log noise data: unsupported version {data.get('version')!r}")
    noise = []
    for entry in data.get("noise", ()):
        if not entry.get("pattern") or not entry.get("why"):
            raise ValueError(f"log noise data: an entry needs pattern and why: {entry!r}")
        noise.append(NoiseRule(_scope(entry), re.compile(entry["pattern"], re.IGNORECASE),
                               entry["why"]))
    startup = data.get("startup_seconds") or {}
    overrides = [StartupOverride(_scope(o), int(o["seconds"]), o.get("why", ""),
                                 o.get("health_passes_early") is True)
                 for o in startup.get("overrides", ())]
    return NoiseRules(tuple(noise), int(startup.get("default", 60)), tuple(overrides))


@lru_cache(maxsize=1)
def noise_rules() -> NoiseRules:
    """The package's start-up noise and start-up allowances (loaded once)."""
    text = resources.files("trigger_maint").joinpath("data", "log_noise.json").read_text(
        encoding="utf-8")
    return rules_from(json.loads(text))


def is_noise(service: str, image: str, text: str, rules: NoiseRules | None = None) -> str | None:
    """Why a line of this service's log is known start-up or restart noise, or None."""
    for rule in (rules or noise_rules()).noise:
        if rule.scope.applies(service, image) and rule.pattern.search(text):
            return rule.why
    return None


def _override(service: str, image: str, rules: NoiseRules) -> StartupOverride | None:
    return next((o for o in rules.startup_overrides if o.scope.applies(service, image)), None)


def startup_seconds(service: str, image: str, rules: NoiseRules | None = None) -> int:
    """How long this service may take to start before its log counts (no health check)."""
    rules = rules or noise_rules()
    override = _override(service, image, rules)
    return override.seconds if override else rules.startup_default


# ---- when a container became healthy, and what it logged since -----------------------------

@dataclass(frozen=True)
class _Probe:
    start: datetime
    end: datetime
    passed: bool


def _probe(entry: Mapping) -> _Probe | None:
    start, end = parse_time(entry.get("Start") or ""), parse_time(entry.get("End") or "")
    if start is None or end is None:
        return None
    return _Probe(start, end, entry.get("ExitCode") == 0)


def _as_time(value: datetime | str) -> datetime:
    when = value if isinstance(value, datetime) else parse_time(value)
    if when is None or when.tzinfo is None:
        raise ValueError(f"not an aware time: {value!r}")
    return when


def healthy_since(started_at: datetime | str, health_log: Sequence[Mapping] | None,
                  has_healthcheck: bool, startup_seconds: int) -> datetime:
    """When a container became healthy, from Docker's State.StartedAt and State.Health.Log.

    After the last failing probe, the first passing probe's End. When every remembered probe
    passed: the first one's End if the log reaches back to the start (fewer than five kept,
    one from before this start, or the first began within one probe interval of the start),
    else StartedAt + startup_seconds. Without a health check, with no probe since the start,
    or while still failing: StartedAt + startup_seconds."""
    start = _as_time(started_at)
    allowance = start + timedelta(seconds=startup_seconds)
    if not has_healthcheck:
        return allowance
    entries = [p for p in map(_probe, health_log or ()) if p is not None]
    probes = sorted((p for p in entries if p.start >= start), key=lambda p: p.start)
    if not probes:
        return allowance
    failed = [i for i, p in enumerate(probes) if not p.passed]
    if failed:
        after = probes[failed[-1] + 1:]
        return after[0].end if after else allowance
    interval = probes[1].start - probes[0].start if len(probes) > 1 else None
    reaches_back = (len(health_log or ()) < HEALTH_LOG_KEPT or len(probes) < len(entries)
                    or (interval is not None and probes[0].start - start <= interval * 1.5))
    return probes[0].end if reaches_back else allowance


def counts_from(service: str, image: str, started_at: datetime | str,
                health_log: Sequence[Mapping] | None, has_healthcheck: bool,
                rules: NoiseRules | None = None) -> datetime:
    """From when this container's log counts: when it became healthy (healthy_since), but
    never before its start-up allowance for a service whose health check passes before it
    is ready (Electric's /v1/health answers 202 while it still waits for PostgreSQL)."""
    rules = rules or noise_rules()
    seconds = startup_seconds(service, image, rules)
    since = healthy_since(started_at, health_log, has_healthcheck, seconds)
    override = _override(service, image, rules)
    if override and override.health_passes_early:
        return max(since, _as_time(started_at) + timedelta(seconds=seconds))
    return since


@dataclass(frozen=True)
class Finding:
    """One log line that counts against a service: error level or above, in the window,
    not noise. text is without Docker's timestamp and escapes."""

    service: str
    time: datetime | None
    level: Level
    text: str


def judge(lines: Iterable[str], window_start: datetime, service: str, image: str,
          rules: NoiseRules | None = None) -> list[Finding]:
    """The lines of one container's `docker logs --timestamps` output that count: at ERROR
    or above, written at or after window_start, not known noise. A line without a timestamp
    takes the one before it; with none before it, it counts (its age is unknown)."""
    found = []
    when: datetime | None = None
    for raw in lines:
        stamp, text = parse_docker_line(raw)
        when = stamp or when
        if when is not None and when < window_start:
            continue
        clean = strip_escapes(text)
        level = _level_of_clean(clean)
        if level < Level.ERROR:
            continue
        clean = clean.strip()
        if is_noise(service, image, clean, rules) is None:
            found.append(Finding(service, when, level, clean))
    return found


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:max(limit - 3, 0)].rstrip() + "..."


def summary(findings: Sequence[Finding], since: str = "healthy", limit: int = 160) -> str:
    """One line for the verify check's detail, each service's part capped at `limit`
    characters: "webapp: 2 error lines since healthy, last: ..."."""
    if not findings:
        return f"no error lines since {since}"
    by_service: dict[str, list[Finding]] = {}
    for finding in findings:
        by_service.setdefault(finding.service, []).append(finding)
    parts = []
    for service, own in by_service.items():
        count = len(own)
        head = f"{service}: {count} error line{'s' if count != 1 else ''} since {since}, last: "
        last = strip_escapes(own[-1].text).strip()
        parts.append(_shorten(head + last, limit))
    return "; ".join(parts)
