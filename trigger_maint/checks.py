"""The status checks: from the raw result of templates/status.sh.j2 to Check rows (pure).

Every check states what was measured and the threshold it was held to. Anything that
could not be measured is "unknown", never "ok".
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from .config import Settings
from .installation import Installation, from_result
from .inventory import Container, parse_time

OK, WARN, UNKNOWN, FAIL = "ok", "warn", "unknown", "fail"
SEVERITY = {OK: 0, WARN: 1, UNKNOWN: 2, FAIL: 3}

CRASH_LOOP_SECONDS = 300  # a container that restarted and is up for less is crash-looping
MEMORY_WARN_PERCENT = 90  # host memory in use (total - available) that warns
MEMORY_FAIL_PERCENT = 98  # ... and that fails: the OOM killer is next
SWAP_WARN_PERCENT = 80  # swap in use that warns
CONTAINER_MEMORY_WARN_PERCENT = 90  # a container this close to its memory limit warns
SLOT_WAL_WARN_BYTES = 1 << 30  # WAL one replication slot holds back that warns

# Published defaults of hosting/docker/.env.example (v4 up to 4.5.5; 4.5.6+ refuses the
# first four) and of triggerdotdev/docker's .env.example (v3). Patterns are shell globs
# matched on the host, so no value ever leaves it.
DEFAULT_SECRETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SESSION_SECRET", ("2818143646516f6fffd707b36f334bbb", "secret")),
    ("MAGIC_LINK_SECRET", ("44da78b7bbb0dfe709cf38931d25dcdd", "secret")),
    ("ENCRYPTION_KEY", ("f686147ab967943ebbe9ed3b496e465a", "ae13021afef0819c3a307ad487071c06")),
    ("MANAGED_WORKER_SECRET", ("447c29678f9eaf289e9c4b70d3dd8a7f", "managed-secret")),
    ("POSTGRES_PASSWORD", ("unsafe-postgres-pw", "postgres")),
    ("DATABASE_URL", ("*:unsafe-postgres-pw@*",)),
    ("DIRECT_URL", ("*:unsafe-postgres-pw@*",)),
    ("CLICKHOUSE_PASSWORD", ("password",)),
    ("CLICKHOUSE_URL", ("*//default:password@*",)),
    ("RUN_REPLICATION_CLICKHOUSE_URL", ("*//default:password@*",)),
    ("DOCKER_REGISTRY_PASSWORD", ("very-secure-indeed",)),
    ("OBJECT_STORE_SECRET_ACCESS_KEY", ("very-safe-password",)),
    ("MINIO_ROOT_PASSWORD", ("very-safe-password",)),
    ("PROVIDER_SECRET", ("provider-secret",)),
    ("COORDINATOR_SECRET", ("coordinator-secret",)),
)


@dataclass(frozen=True)
class Check:
    """One row of the status table."""

    name: str
    state: str  # ok, warn, fail or unknown
    value: str = ""  # what was measured, for people
    threshold: str = ""  # what it was held to
    detail: str = ""


@dataclass(frozen=True)
class StatusReport:
    """Every check of one host; `ok` counts unknown as failing unless allowed."""

    host: str
    checks: tuple[Check, ...]
    allow_unknown: bool = False

    @property
    def worst(self) -> str:
        return max((c.state for c in self.checks), key=SEVERITY.__getitem__, default=UNKNOWN)

    @property
    def ok(self) -> bool:
        bad = {FAIL} if self.allow_unknown else {FAIL, UNKNOWN}
        return bool(self.checks) and not any(c.state in bad for c in self.checks)

    def with_allow_unknown(self, allow_unknown: bool) -> StatusReport:
        return replace(self, allow_unknown=allow_unknown)


# ---- units and small parsers -------------------------------------------------------

_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}
_SIZE_RE = re.compile(r"^\s*([\d.]+)\s*([kKmMgGtTpP]?)(i?)[bB]?\s*$")


def parse_size(text: str | None) -> int | None:
    """Docker's sizes in bytes: "1.2GB" (decimal), "3.9MiB" (binary), "0B"."""
    match = _SIZE_RE.match(text or "")
    if not match:
        return None
    number, unit, binary = match.groups()
    unit = unit.lower()
    base = 1024 ** ("kmgtp".index(unit) + 1) if binary and unit else _UNITS[unit]
    return int(float(number) * base)


def human_bytes(n: int | float | None) -> str:
    """1536 -> "1.5 KiB"."""
    if n is None:
        return "?"
    value, unit = float(n), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"


def human_duration(seconds: float) -> str:
    """3700 -> "1 h"; rounded down to the largest unit."""
    seconds = max(0, int(seconds))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _percent(text: str | None) -> float | None:
    try:
        return float((text or "").strip().rstrip("%"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Filesystem:
    """One `df -P -B1` line."""

    device: str
    size: int
    used: int
    available: int
    mount: str

    @property
    def percent(self) -> int:
        """Use as df rounds it: used / (used + available), rounded up."""
        total = self.used + self.available
        return math.ceil(self.used * 100 / total) if total else 100


_DF_RE = re.compile(r"^(.*?)\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+%\s+(/.*)$")


def parse_df_line(line: str | None) -> Filesystem | None:
    match = _DF_RE.match((line or "").strip())
    if not match:
        return None
    device, size, used, available, mount = match.groups()
    return Filesystem(device, int(size), int(used), int(available), mount)


def parse_meminfo(text: str | None) -> dict[str, int]:
    """/proc/meminfo as bytes by field name."""
    values = {}
    for line in (text or "").splitlines():
        key, _, rest = line.partition(":")
        words = rest.split()
        if words and words[0].isdigit():
            values[key.strip()] = int(words[0]) * (1024 if words[1:] == ["kB"] else 1)
    return values


@dataclass(frozen=True)
class CertbotCertificate:
    """One certificate from `certbot certificates`."""

    name: str
    domains: tuple[str, ...]
    expiry: datetime | None
    validity: str  # certbot's own words: "VALID: 59 days", "INVALID: EXPIRED"


def parse_certbot(text: str | None) -> tuple[list[CertbotCertificate], list[str]]:
    """Certificates, and renewal configurations certbot could not read."""
    certs: list[CertbotCertificate] = []
    broken: list[str] = []
    current: dict = {}
    in_broken = False

    def flush():
        if current.get("name"):
            certs.append(CertbotCertificate(current["name"], current.get("domains", ()),
                                            current.get("expiry"), current.get("validity", "")))
        current.clear()

    for raw in (text or "").splitlines():
        line = raw.strip()
        if line.startswith("Certificate Name:"):
            flush()
            in_broken = False
            current["name"] = line.split(":", 1)[1].strip()
        elif line.startswith("Domains:"):
            current["domains"] = tuple(line.split(":", 1)[1].split())
        elif line.startswith("Expiry Date:"):
            match = re.match(r"Expiry Date:\s*(\S+ \S+)\s*(?:\((.*)\))?", line)
            if match:
                try:
                    current["expiry"] = datetime.fromisoformat(match.group(1))
                except ValueError:
                    current["expiry"] = None
                current["validity"] = match.group(2) or ""
        elif "renewal configurations were invalid" in line:
            flush()
            in_broken = True
        elif in_broken and line.startswith("/"):
            broken.append(line)
        elif line.startswith("- - -"):
            in_broken = False
    flush()
    return certs, broken


def parse_openssl_date(text: str) -> datetime | None:
    """`notAfter=Dec  6 04:58:55 2026 GMT` -> an aware datetime."""
    value = text.split("=", 1)[-1].strip()
    value = re.sub(r"\s+", " ", value)
    try:
        return datetime.strptime(value, "%b %d %H:%M:%S %Y GMT").replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_docker_created(text: str | None) -> datetime | None:
    """`docker ps`'s CreatedAt: "2026-11-30 08:12:01 +0000 UTC"."""
    match = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ([+-]\d{4})", (text or "").strip())
    if not match:
        return None
    return datetime.strptime(" ".join(match.groups()), "%Y-%m-%d %H:%M:%S %z")


def _json(text: str | None):
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _expiry(expiry: datetime, seconds_left: float) -> str:
    days = seconds_left / 86400
    if days >= 0:
        return f"valid until {expiry:%Y-%m-%d} ({math.floor(days)} days)"
    return f"expired on {expiry:%Y-%m-%d} ({math.ceil(-days)} days ago)"


def _openssl_reason(stderr: str) -> str:
    """The reason in OpenSSL's `...:error:CODE:lib:func:REASON:file:line:` lines."""
    lines = [line for line in stderr.splitlines() if line.strip() and line.strip() != "DONE"]
    for line in lines:
        parts = line.split(":")
        if len(parts) > 5 and parts[1] == "error":
            return parts[5]
    return lines[-1].strip() if lines else "no certificate received"


# ---- the checks ----------------------------------------------------------------------

def _one_shot_services(config: dict | None) -> set[str]:
    """Services others wait on to complete (e.g. v4's s2-init): exited 0 is their goal."""
    found = set()
    for spec in ((config or {}).get("services") or {}).values():
        depends = (spec or {}).get("depends_on") or {}
        if isinstance(depends, dict):
            for name, cond in depends.items():
                if (cond or {}).get("condition") == "service_completed_successfully":
                    found.add(name)
    return found


def container_check(c: Container, label: str, one_shot: bool, now: datetime) -> Check:
    """One container: running, healthy where it has a healthcheck, and not restarting."""
    name = f"container {label}"
    restarts = f"{c.restart_count} restart{'s' if c.restart_count != 1 else ''}"
    threshold = "running, healthy, no restarts"
    if c.state == "restarting":
        return Check(name, FAIL, f"restarting, {restarts}", threshold,
                     f"crash loop (last exit code {c.exit_code})")
    if c.state == "exited" and one_shot and c.exit_code == 0:
        return Check(name, OK, "completed", "exit code 0", "one-shot service others wait on")
    if not c.running:
        return Check(name, FAIL, f"{c.state} (exit code {c.exit_code})", threshold,
                     f"{c.name} is not running")
    uptime = c.uptime_seconds(now)
    up = f"up {human_duration(uptime)}" if uptime is not None else "up ?"
    value = ", ".join(filter(None, ["running", c.health, up, restarts]))
    if c.health == "unhealthy":
        return Check(name, FAIL, value, threshold, "its healthcheck fails")
    if c.restart_count and uptime is not None and uptime < CRASH_LOOP_SECONDS:
        return Check(name, FAIL, value, threshold,
                     f"crash loop: restarted and up for less than {CRASH_LOOP_SECONDS} s")
    if c.health == "starting":
        return Check(name, WARN, value, threshold, "healthcheck has not passed yet")
    if c.restart_count:
        return Check(name, WARN, value, threshold, "it crashed and was restarted")
    return Check(name, OK, value, threshold, "" if c.health else "no healthcheck defined")


def container_checks(inst: Installation, config: dict | None, now: datetime) -> list[Check]:
    """Every declared service present and well; extra (undeclared) services named."""
    if config is None:
        return [Check("containers", UNKNOWN, detail="`docker compose config` failed")]
    one_shot = _one_shot_services(config)
    checks = []
    for service in inst.services:
        found = inst.service_containers(service)
        if not found:
            checks.append(Check(f"container {service}", FAIL, "missing",
                                "running, healthy, no restarts", "no container for this service"))
        for c in found:
            label = service if len(found) == 1 else c.name
            checks.append(container_check(c, label, service in one_shot, now))
    extra = sorted({c.service or c.name for c in inst.containers} - set(inst.services))
    if extra:
        checks.append(Check("extra services", WARN, ", ".join(extra), "none",
                            "containers of the project that the compose files do not declare"))
    return checks


def webapp_http_check(code: str | None, url: str) -> Check:
    name, threshold = "webapp /healthcheck", "HTTP 200"
    if code is None:
        return Check(name, UNKNOWN, "", threshold, f"curl is not installed; {url} not probed")
    if not code:
        return Check(name, UNKNOWN, "", threshold, f"curl gave no HTTP status for {url}")
    if code == "200":
        return Check(name, OK, "HTTP 200", threshold, url)
    if code == "000":
        return Check(name, FAIL, "no answer", threshold, f"nothing answers at {url}")
    return Check(name, FAIL, f"HTTP {code}", threshold, url)


DISK_LABELS = {"docker": "Docker data", "backups": "backups"}


def disk_checks(disks: dict | None, s: Settings) -> list[Check]:
    """Use of /, the Docker data root and the backup folder's filesystem (merged when shared)."""
    threshold = f"warn {s.disk_warn_percent}%, fail {s.disk_fail_percent}%"
    by_mount: dict[str, tuple[Filesystem, list[str]]] = {}
    checks = []
    for label, item in (disks or {}).items():
        fs = parse_df_line((item or {}).get("df"))
        what = "/" if label == "root" else f"{DISK_LABELS.get(label, label)} {item.get('path')}"
        if fs is None:
            checks.append(Check(f"disk {what}", UNKNOWN, "", threshold, "df gave no answer"))
            continue
        by_mount.setdefault(fs.mount, (fs, []))[1].append(what)
    if not disks:
        checks.append(Check("disk", UNKNOWN, "", threshold, "df gave no answer"))
    for mount, (fs, holds) in by_mount.items():
        pct = fs.percent
        state = FAIL if pct >= s.disk_fail_percent else WARN if pct >= s.disk_warn_percent else OK
        checks.append(Check(f"disk {mount}", state,
                            f"{pct}% used, {human_bytes(fs.available)} free", threshold,
                            "holds " + ", ".join(holds)))
    return checks


def memory_checks(meminfo: str | None) -> list[Check]:
    values = parse_meminfo(meminfo)
    total, available = values.get("MemTotal"), values.get("MemAvailable")
    threshold = f"warn {MEMORY_WARN_PERCENT}%, fail {MEMORY_FAIL_PERCENT}%"
    if not total or available is None:
        return [Check("memory", UNKNOWN, "", threshold, "/proc/meminfo has no MemAvailable")]
    pct = round((total - available) * 100 / total)
    state = FAIL if pct >= MEMORY_FAIL_PERCENT else WARN if pct >= MEMORY_WARN_PERCENT else OK
    checks = [Check("memory", state, f"{pct}% used, {human_bytes(available)} available",
                    threshold, f"of {human_bytes(total)}")]
    swap_total, swap_free = values.get("SwapTotal", 0), values.get("SwapFree", 0)
    if not swap_total:
        checks.append(Check("swap", OK, "none configured", f"warn {SWAP_WARN_PERCENT}%"))
    else:
        swap_pct = round((swap_total - swap_free) * 100 / swap_total)
        checks.append(Check("swap", WARN if swap_pct >= SWAP_WARN_PERCENT else OK,
                            f"{swap_pct}% used", f"warn {SWAP_WARN_PERCENT}%",
                            f"of {human_bytes(swap_total)}"))
    return checks


def container_resources_check(stats: list | None, inst: Installation) -> Check:
    """Per-container CPU and memory from one `docker stats --no-stream` sample."""
    name = "docker stats"
    threshold = f"memory warn {CONTAINER_MEMORY_WARN_PERCENT}% of limit"
    if not stats:
        return Check(name, UNKNOWN, "", threshold,
                     "docker stats gave no answer" if any(c.running for c in inst.containers)
                     else "no running container to measure")
    by_id = {c.id[:12]: c.service or c.name for c in inst.containers}
    rows = []
    for row in stats:
        label = by_id.get(str(row.get("ID", ""))[:12]) or row.get("Name", "?")
        used = parse_size(str(row.get("MemUsage", "")).split("/")[0])
        rows.append((label, _percent(row.get("CPUPerc")), used, _percent(row.get("MemPerc"))))
    near_limit = [r[0] for r in rows if r[3] is not None and r[3] >= CONTAINER_MEMORY_WARN_PERCENT]
    top_cpu = max(rows, key=lambda r: r[1] or 0)
    top_mem = max(rows, key=lambda r: r[2] or 0)
    value = (f"CPU max {top_cpu[0]} {top_cpu[1] or 0:.1f}%, "
             f"memory max {top_mem[0]} {human_bytes(top_mem[2])}")
    detail = "; ".join(f"{label} {cpu or 0:.1f}% {human_bytes(used)}"
                       for label, cpu, used, _ in sorted(rows, key=lambda r: r[0]))
    if near_limit:
        return Check(name, WARN, value, threshold,
                     f"near memory limit: {', '.join(near_limit)}; {detail}")
    return Check(name, OK, value, threshold, detail)


def _certificate_state(seconds_left: float, s: Settings) -> str:
    if seconds_left < 0:
        return FAIL
    return WARN if seconds_left < s.cert_warn_days * 86400 else OK


def live_certificate_check(tls: dict, domain: str, s: Settings, now: datetime) -> Check:
    """The certificate the domain serves, seen from the host (expiry, chain, name)."""
    name = f"certificate {domain}"
    threshold = f"warn < {s.cert_warn_days} days"
    fields = dict(line.split("=", 1) for line in (tls.get("certificate") or "").splitlines()
                  if "=" in line)
    expiry = parse_openssl_date(fields.get("notAfter", ""))
    if expiry is None:
        reason = _openssl_reason(tls.get("error") or "")
        return Check(name, UNKNOWN, "", threshold, f"TLS handshake from the host failed: {reason}")
    left = (expiry - now).total_seconds()
    value = _expiry(expiry, left)
    verify = (tls.get("verify") or "").strip()
    issuer = f"issuer {fields.get('issuer', '?')}"
    if left < 0:
        return Check(name, FAIL, value, threshold, f"the live certificate has expired; {issuer}")
    if not verify.startswith("0 "):
        return Check(name, FAIL, value, threshold,
                     f"not trusted: {verify or 'verification gave no answer'}; {issuer}")
    return Check(name, _certificate_state(left, s), value, threshold, f"live, {issuer}")


def certbot_checks(certbot: dict | None, s: Settings, now: datetime) -> list[Check]:
    """Certificates certbot manages on the host (none when certbot is not installed)."""
    if certbot is None:
        return []
    threshold = f"warn < {s.cert_warn_days} days"
    if certbot.get("rc") != 0:
        return [Check("certificate certbot", UNKNOWN, "", threshold,
                      f"certbot certificates failed: {(certbot.get('err') or '').strip()}")]
    certs, broken = parse_certbot(certbot.get("out"))
    checks = []
    for cert in certs:
        name = f"certificate {cert.name} (certbot)"
        if cert.expiry is None:
            checks.append(Check(name, UNKNOWN, cert.validity, threshold, "no expiry date"))
            continue
        left = (cert.expiry - now).total_seconds()
        state = _certificate_state(left, s)
        if cert.validity.startswith("INVALID"):
            state = FAIL
        checks.append(Check(name, state, _expiry(cert.expiry, left), threshold,
                            f"{cert.validity}; {' '.join(cert.domains)}"))
    for path in broken:
        checks.append(Check("certificate certbot", UNKNOWN, "", threshold,
                            f"certbot cannot read {path}"))
    return checks


def backup_check(result: dict, s: Settings, now: datetime) -> Check:
    """The newest backup: present, recent, verified and its dump still there."""
    name = "backup"
    threshold = f"max {s.backup_max_age_hours} h old, verified"
    sidecar_name = result.get("backup_sidecar_name") or ""
    if not sidecar_name:
        return Check(name, FAIL, "none", threshold, f"no trigger-db-*.json in {s.backup_dir}")
    sidecar = _json(result.get("backup_sidecar"))
    if not isinstance(sidecar, dict):
        return Check(name, FAIL, sidecar_name, threshold, "its record is not readable JSON")
    finished = parse_time(sidecar.get("finished_at"))
    if finished is None:
        return Check(name, FAIL, sidecar_name, threshold, "its record has no finished_at")
    age = (now - finished).total_seconds()
    size = result.get("backup_file_size")
    verified = sidecar.get("verified") is True
    value = (f"{finished:%Y-%m-%d %H:%M} UTC, {human_duration(age)} ago, {human_bytes(size)}, "
             + ("verified" if verified else "NOT verified"))
    count = result.get("backup_count")
    detail = f"{sidecar.get('file', sidecar_name)}; {count} backup{'s' if count != 1 else ''} kept"
    if size is None:
        return Check(name, FAIL, value, threshold, f"the dump {sidecar.get('file', '')} is missing")
    if isinstance(sidecar.get("size"), int) and sidecar["size"] != size:
        return Check(name, FAIL, value, threshold,
                     f"the dump is {size} bytes, its record says {sidecar['size']}")
    if not verified:
        failed = [k for k, v in (sidecar.get("checks") or {}).items() if v is not True]
        return Check(name, FAIL, value, threshold,
                     "verification did not pass" + (f": {', '.join(failed)}" if failed else ""))
    if age > s.backup_max_age_hours * 3600:
        return Check(name, FAIL, value, threshold, f"older than {s.backup_max_age_hours} h")
    return Check(name, OK, value, threshold, detail)


def update_state_check(result: dict) -> Check:
    stamp = result.get("update_in_progress")
    if stamp is None:
        return Check("interrupted update", OK, "none", "none")
    return Check("interrupted update", FAIL, f"rollback point {stamp.strip()}", "none",
                 "an update stopped half-way; run update or rollback to complete it")


def reboot_check(reboot: dict | None) -> Check:
    if not reboot or reboot.get("required") is None:
        return Check("reboot", UNKNOWN, "", "not required",
                     "no /var/run/reboot-required mechanism or needs-restarting on this host")
    if not reboot["required"]:
        return Check("reboot", OK, "not required", "not required", reboot.get("source", ""))
    packages = reboot.get("packages") or []
    return Check("reboot", WARN, "required", "not required",
                 f"asked for by {', '.join(packages)}" if packages else reboot.get("source", ""))


def version_check(inst: Installation, research=None) -> Check:
    """The running version, and whether research found a newer one (when it ran)."""
    running = inst.version.version if inst.version else None
    if not running:
        return Check("version", UNKNOWN, "", "", "cannot tell the running Trigger.dev version")
    value = f"v{running}"
    source = f"from {inst.version.source}"
    if research is None:
        return Check("version", OK, value, "", f"{source}; run research to compare releases")
    latest = getattr(research, "target", None) or getattr(research, "latest", None)
    if getattr(research, "update_available", False) and latest:
        return Check("version", WARN, f"{value}, v{latest} available", "newest release", source)
    return Check("version", OK, f"{value}, up to date", "newest release", source)


def run_containers_check(runs: dict | None, s: Settings, now: datetime) -> Check:
    """Exited task-run containers (v3 task-run…, v4 runner-…) that were not removed."""
    name = "exited run containers"
    threshold = (f"warn at {s.run_containers_warn} or older than "
                 f"{s.run_container_max_age_hours} h")
    if runs is None:
        return Check(name, UNKNOWN, "", threshold, "docker ps gave no answer")
    count = int(runs.get("count") or 0)
    prefix = runs.get("prefix", "")
    if not count:
        return Check(name, OK, "0", threshold, f"prefix {prefix}")
    oldest = parse_docker_created(runs.get("oldest_created"))
    age = (now - oldest).total_seconds() if oldest else None
    value = f"{count}" + (f", oldest {human_duration(age)}" if age is not None else "")
    stale = age is not None and age > s.run_container_max_age_hours * 3600
    if count >= s.run_containers_warn or stale:
        return Check(name, WARN, value, threshold,
                     f"{prefix}* containers pile up; cleanup removes them")
    return Check(name, OK, value, threshold, f"prefix {prefix}")


def docker_disk_check(system_df: list | None) -> Check:
    """What `docker system df` says could be reclaimed."""
    name = "docker disk usage"
    if not system_df:
        return Check(name, UNKNOWN, "", "", "docker system df gave no answer")
    total = reclaimable = 0
    parts = []
    for row in system_df:
        size = parse_size(row.get("Size")) or 0
        free = parse_size(str(row.get("Reclaimable", "")).split(" (")[0]) or 0
        total += size
        reclaimable += free
        if free:
            parts.append(f"{str(row.get('Type', '?')).lower()} {human_bytes(free)}")
    return Check(name, OK, f"{human_bytes(total)}, {human_bytes(reclaimable)} reclaimable", "",
                 ", ".join(parts) or "nothing to reclaim")


def postgres_checks(text: str | None) -> list[Check]:
    """Database size, and the WAL replication slots (Electric) hold back."""
    data = _json(text)
    if not isinstance(data, dict):
        return [Check("database", UNKNOWN, "", "", "psql in the database container gave no answer"),
                Check("replication slots", UNKNOWN, "", f"warn {human_bytes(SLOT_WAL_WARN_BYTES)}",
                      "psql in the database container gave no answer")]
    checks = [Check("database", OK, human_bytes(data.get("size")), "", "size on disk")]
    slots = data.get("slots") or []
    threshold = f"warn {human_bytes(SLOT_WAL_WARN_BYTES)} WAL per slot"
    if not slots:
        checks.append(Check("replication slots", OK, "none", threshold))
        return checks
    heavy = [sl for sl in slots if (sl.get("retained") or 0) >= SLOT_WAL_WARN_BYTES]
    worst = max(slots, key=lambda sl: sl.get("retained") or 0)
    detail = "; ".join(f"{sl.get('name')} {'active' if sl.get('active') else 'inactive'} "
                       f"{human_bytes(sl.get('retained') or 0)}" for sl in slots)
    checks.append(Check("replication slots", WARN if heavy else OK,
                        f"{len(slots)}, max {human_bytes(worst.get('retained') or 0)} WAL retained",
                        threshold, detail))
    return checks


def default_secrets_check(names: list | None, allowed: str) -> Check:
    """.env keys that still hold a published default (names only)."""
    name = "default secrets"
    if names is None:
        return Check(name, UNKNOWN, "", "none", ".env could not be read")
    if not names:
        return Check(name, OK, "none", "none", ".env holds no published default")
    detail = "published defaults in .env; Trigger.dev 4.5.6+ refuses to start with them"
    if allowed:
        detail += " (ALLOW_INSECURE_DEFAULT_SECRETS is set)"
    return Check(name, FAIL, ", ".join(names), "none", detail)


def evaluate(result: dict, s: Settings, research=None) -> list[Check]:
    """Every status check from the status script's result."""
    now = datetime.fromtimestamp(result["now"], UTC) if result.get("now") else datetime.now(UTC)
    inst = from_result(result, s)
    checks: list[Check] = []
    checks += container_checks(inst, result.get("config"), now)
    checks.append(webapp_http_check(result.get("webapp_http"), inst.webapp_url))
    checks.append(container_resources_check(result.get("stats"), inst))
    checks += disk_checks(result.get("disks"), s)
    checks += memory_checks(result.get("meminfo"))
    if result.get("tls"):
        tls = result["tls"]
        checks.append(live_certificate_check(tls, tls.get("host") or s.domain, s, now))
    checks += certbot_checks(result.get("certbot"), s, now)
    checks.append(backup_check(result, s, now))
    checks.append(update_state_check(result))
    checks.append(reboot_check(result.get("reboot")))
    checks.append(version_check(inst, research))
    checks.append(run_containers_check(result.get("run_containers"), s, now))
    checks.append(docker_disk_check(result.get("system_df")))
    checks += postgres_checks(result.get("postgres"))
    checks.append(default_secrets_check(result.get("default_secrets"),
                                        result.get("insecure_secrets_allowed", "")))
    return checks


def tls_target(s: Settings) -> tuple[str, int]:
    """The host name and port whose certificate is checked ("" when no domain is set)."""
    domain = s.domain.strip()
    host, sep, port = domain.rpartition(":")
    if sep and port.isdigit():
        return host, int(port)
    return domain, 443


def script_context(s: Settings) -> dict:
    """What templates/status.sh.j2 needs besides the installation candidates."""
    host, port = tls_target(s)
    return {"tls_host": host, "tls_port": port, "default_secrets": DEFAULT_SECRETS}
