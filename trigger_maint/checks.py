"""The status checks: from what the status script measured to Check rows (pure).

Every check has a stable `name` from NAMES (what scripts select on), the `item` it is about
("" for the host as a whole), what was measured (`value` for people, `data` for programs)
and the threshold it was held to. Anything that could not be measured is "unknown", never
"ok".
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from . import backups
from .backups import Backup, Folder
from .config import Settings
from .hostpaths import HostPaths
from .installation import Installation
from .inventory import Container
from .transactions import TxSummary
from .units import duration as human_duration
from .units import size as human_bytes

OK, WARN, UNKNOWN, FAIL = "ok", "warn", "unknown", "fail"
SEVERITY = {OK: 0, WARN: 1, UNKNOWN: 2, FAIL: 3}
# Every check name status can report (docs/json.md): a closed set.
NAMES = ("containers", "webapp", "resources", "disk", "memory", "swap", "certificate",
         "backup", "transaction", "reboot", "version", "run_containers", "docker_disk",
         "database", "replication_slots", "secrets")

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

    name: str  # one of NAMES
    state: str  # ok, warn, fail or unknown
    value: str = ""  # what was measured, for people
    threshold: str = ""  # what it was held to
    detail: str = ""
    item: str = ""  # what it is about: a service, a mount, a certificate ("" = the host)
    data: dict = field(default_factory=dict)  # what was measured, for programs

    @property
    def label(self) -> str:
        """The check as the table names it: name and item."""
        return f"{self.name} {self.item}" if self.item else self.name


@dataclass(frozen=True)
class StatusReport:
    """Every check of one host; `ok` counts unknown as failing unless allowed."""

    host: str
    checks: tuple[Check, ...]
    allow_unknown: bool = False
    backup_dir: str = ""
    backup_dir_reason: str = ""

    @property
    def worst(self) -> str:
        return max((c.state for c in self.checks), key=SEVERITY.__getitem__, default=UNKNOWN)

    @property
    def ok(self) -> bool:
        bad = {FAIL} if self.allow_unknown else {FAIL, UNKNOWN}
        return bool(self.checks) and not any(c.state in bad for c in self.checks)

    def named(self, name: str) -> list[Check]:
        """The checks called `name`."""
        return [c for c in self.checks if c.name == name]

    def first(self, name: str) -> Check | None:
        return next(iter(self.named(name)), None)

    def with_allow_unknown(self, allow_unknown: bool) -> StatusReport:
        return replace(self, allow_unknown=allow_unknown)


@dataclass(frozen=True)
class BackupFolder:
    """One candidate backup folder as the status script measured it."""

    paths: HostPaths
    folder: Folder
    transactions: TxSummary


@dataclass(frozen=True)
class StatusFacts:
    """What the status script measured."""

    now: datetime
    installation: Installation
    raw: dict  # the measurements the checks read
    folders: tuple[BackupFolder, ...]


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


CONTAINER_THRESHOLD = "running, healthy, no restarts"


def container_check(c: Container, label: str, one_shot: bool, now: datetime) -> Check:
    """One container: running, healthy where it has a healthcheck, and not restarting."""
    uptime = c.uptime_seconds(now)
    data = {"service": c.service, "container": c.name, "state": c.state, "health": c.health,
            "restarts": c.restart_count, "exit_code": c.exit_code,
            "uptime_seconds": int(uptime) if uptime is not None else None}

    def check(state, value, detail, threshold=CONTAINER_THRESHOLD):
        return Check("containers", state, value, threshold, detail, item=label, data=data)

    restarts = f"{c.restart_count} restart{'s' if c.restart_count != 1 else ''}"
    if c.state == "restarting":
        return check(FAIL, f"restarting, {restarts}", f"crash loop (last exit code {c.exit_code})")
    if c.state == "exited" and one_shot and c.exit_code == 0:
        return check(OK, "completed", "one-shot service others wait on", "exit code 0")
    if not c.running:
        return check(FAIL, f"{c.state} (exit code {c.exit_code})", f"{c.name} is not running")
    up = f"up {human_duration(uptime)}" if uptime is not None else "up ?"
    value = ", ".join(filter(None, ["running", c.health, up, restarts]))
    if c.health == "unhealthy":
        return check(FAIL, value, "its healthcheck fails")
    if c.restart_count and uptime is not None and uptime < CRASH_LOOP_SECONDS:
        return check(FAIL, value,
                     f"crash loop: restarted and up for less than {CRASH_LOOP_SECONDS} s")
    if c.health == "starting":
        return check(WARN, value, "healthcheck has not passed yet")
    if c.restart_count:
        return check(WARN, value, "it crashed and was restarted")
    return check(OK, value, "" if c.health else "no healthcheck defined")


def container_checks(inst: Installation, now: datetime) -> list[Check]:
    """Every declared service present and well; extra (undeclared) services named."""
    if inst.config is None:
        return [Check("containers", UNKNOWN, detail="`docker compose config` failed")]
    one_shot = _one_shot_services(inst.config)
    checks = []
    for service in inst.services:
        found = inst.service_containers(service)
        if not found:
            checks.append(Check("containers", FAIL, "missing", CONTAINER_THRESHOLD,
                                "no container for this service", item=service,
                                data={"service": service, "state": "missing"}))
        for c in found:
            label = service if len(found) == 1 else c.name
            checks.append(container_check(c, label, service in one_shot, now))
    extra = sorted({c.service or c.name for c in inst.containers} - set(inst.services))
    if extra:
        checks.append(Check("containers", WARN, ", ".join(extra), "none",
                            "containers of the project that the compose files do not declare",
                            item="undeclared", data={"services": extra}))
    return checks


def webapp_http_check(code: str | None, url: str) -> Check:
    threshold = "HTTP 200"

    def check(state, value, detail):
        return Check("webapp", state, value, threshold, detail, item="/healthcheck",
                     data={"url": url, "http_status": int(code) if code and code.isdigit()
                           else None})

    if code is None:
        return check(UNKNOWN, "", f"curl is not installed; {url} not probed")
    if not code:
        return check(UNKNOWN, "", f"curl gave no HTTP status for {url}")
    if code == "200":
        return check(OK, "HTTP 200", url)
    if code == "000":
        return check(FAIL, "no answer", f"nothing answers at {url}")
    return check(FAIL, f"HTTP {code}", url)


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
            checks.append(Check("disk", UNKNOWN, "", threshold, "df gave no answer",
                                item=item.get("path") or label, data={"holds": [what]}))
            continue
        by_mount.setdefault(fs.mount, (fs, []))[1].append(what)
    if not disks:
        checks.append(Check("disk", UNKNOWN, "", threshold, "df gave no answer"))
    for mount, (fs, holds) in by_mount.items():
        pct = fs.percent
        state = FAIL if pct >= s.disk_fail_percent else WARN if pct >= s.disk_warn_percent else OK
        checks.append(Check("disk", state, f"{pct}% used, {human_bytes(fs.available)} free",
                            threshold, "holds " + ", ".join(holds), item=mount,
                            data={"mount": mount, "percent": pct, "free_bytes": fs.available,
                                  "size_bytes": fs.size, "holds": holds}))
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
                    threshold, f"of {human_bytes(total)}",
                    data={"percent": pct, "available_bytes": available, "total_bytes": total})]
    swap_total, swap_free = values.get("SwapTotal", 0), values.get("SwapFree", 0)
    if not swap_total:
        checks.append(Check("swap", OK, "none configured", f"warn {SWAP_WARN_PERCENT}%",
                            data={"percent": None, "total_bytes": 0}))
    else:
        swap_pct = round((swap_total - swap_free) * 100 / swap_total)
        checks.append(Check("swap", WARN if swap_pct >= SWAP_WARN_PERCENT else OK,
                            f"{swap_pct}% used", f"warn {SWAP_WARN_PERCENT}%",
                            f"of {human_bytes(swap_total)}",
                            data={"percent": swap_pct, "total_bytes": swap_total}))
    return checks


def resources_check(stats: list | None, inst: Installation) -> Check:
    """Per-container CPU and memory from one `docker stats --no-stream` sample."""
    threshold = f"memory warn {CONTAINER_MEMORY_WARN_PERCENT}% of limit"
    if not stats:
        return Check("resources", UNKNOWN, "", threshold,
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
    data = {"containers": [{"name": label, "cpu_percent": cpu, "memory_bytes": used,
                            "memory_percent": mem} for label, cpu, used, mem in sorted(rows)]}
    if near_limit:
        return Check("resources", WARN, value, threshold,
                     f"near memory limit: {', '.join(near_limit)}; {detail}", data=data)
    return Check("resources", OK, value, threshold, detail, data=data)


def _certificate_state(seconds_left: float, s: Settings) -> str:
    if seconds_left < 0:
        return FAIL
    return WARN if seconds_left < s.cert_warn_days * 86400 else OK


def _cert_data(source: str, expiry: datetime | None, now: datetime) -> dict:
    if expiry is None:
        return {"source": source, "expires": None, "days_left": None}
    return {"source": source, "expires": expiry.isoformat(),
            "days_left": math.floor((expiry - now).total_seconds() / 86400)}


def live_certificate_check(tls: dict, domain: str, s: Settings, now: datetime) -> Check:
    """The certificate the domain serves, seen from the host (expiry, chain, name)."""
    threshold = f"warn < {s.cert_warn_days} days"
    fields = dict(line.split("=", 1) for line in (tls.get("certificate") or "").splitlines()
                  if "=" in line)
    expiry = parse_openssl_date(fields.get("notAfter", ""))
    data = _cert_data("live", expiry, now)

    def check(state, value, detail):
        return Check("certificate", state, value, threshold, detail, item=domain, data=data)

    if expiry is None:
        reason = _openssl_reason(tls.get("error") or "")
        return check(UNKNOWN, "", f"TLS handshake from the host failed: {reason}")
    left = (expiry - now).total_seconds()
    value = _expiry(expiry, left)
    verify = (tls.get("verify") or "").strip()
    issuer = f"issuer {fields.get('issuer', '?')}"
    if left < 0:
        return check(FAIL, value, f"the live certificate has expired; {issuer}")
    if not verify.startswith("0 "):
        return check(FAIL, value, f"not trusted: {verify or 'verification gave no answer'}; "
                                  f"{issuer}")
    return check(_certificate_state(left, s), value, f"live, {issuer}")


def certbot_checks(certbot: dict | None, s: Settings, now: datetime) -> list[Check]:
    """Certificates certbot manages on the host (none when certbot is not installed)."""
    if certbot is None:
        return []
    threshold = f"warn < {s.cert_warn_days} days"
    if certbot.get("rc") != 0:
        return [Check("certificate", UNKNOWN, "", threshold,
                      f"certbot certificates failed: {(certbot.get('err') or '').strip()}",
                      item="certbot")]
    certs, broken = parse_certbot(certbot.get("out"))
    checks = []
    for cert in certs:
        item = f"{cert.name} (certbot)"
        data = _cert_data("certbot", cert.expiry, now)
        if cert.expiry is None:
            checks.append(Check("certificate", UNKNOWN, cert.validity, threshold,
                                "no expiry date", item=item, data=data))
            continue
        left = (cert.expiry - now).total_seconds()
        state = _certificate_state(left, s)
        if cert.validity.startswith("INVALID"):
            state = FAIL
        checks.append(Check("certificate", state, _expiry(cert.expiry, left), threshold,
                            f"{cert.validity}; {' '.join(cert.domains)}", item=item, data=data))
    for path in broken:
        checks.append(Check("certificate", UNKNOWN, "", threshold,
                            f"certbot cannot read {path}", item="certbot"))
    return checks


def backup_check(found: list[Backup], directory: str, s: Settings, now: datetime) -> Check:
    """The newest dump in the backup folder, whoever made it: recent, and verified or
    inspected. A dump that is present but not checked warns; none, or too old, fails; one
    that failed its checks fails."""
    threshold = f"max {s.backup_max_age_hours} h old, verified or inspected"
    if not found:
        return Check("backup", FAIL, "none", threshold, f"no trigger-db dump in {directory}",
                     data={"dir": directory, "count": 0, "newest": None})
    newest = found[0]
    age = newest.age(now)
    data = {"dir": directory, "count": len(found), "newest": newest.name,
            "taken_at": newest.taken_at.isoformat(), "age_seconds": int(age.total_seconds()),
            "size": newest.size, "origin": newest.origin, "usable": newest.usable,
            "state": backups.state(newest)}
    words = ("verified" if newest.verified else "inspected" if newest.inspected
             else "FAILED its checks" if newest.known_bad else "not verified")
    value = (f"{newest.taken_at:%Y-%m-%d %H:%M} UTC, {human_duration(age.total_seconds())} "
             f"ago, {human_bytes(newest.size)}, {words}")
    detail = f"{newest.name}; {len(found)} dump{'s' if len(found) != 1 else ''} in {directory}"
    if age.total_seconds() > s.backup_max_age_hours * 3600:
        return Check("backup", FAIL, value, threshold,
                     f"older than {s.backup_max_age_hours} h; {detail}", data=data)
    if newest.known_bad:
        return Check("backup", FAIL, value, threshold, "; ".join(newest.problems), data=data)
    if not newest.usable:
        return Check("backup", WARN, value, threshold,
                     f"made outside trigger-maint and not inspected (`backups --verify` "
                     f"inspects it); {detail}", data=data)
    return Check("backup", OK, value, threshold, detail, data=data)


def transaction_check(tx: TxSummary) -> Check:
    """Changes (update, rollback, restore) the host carries out: one still running, one that
    was cut off, and the last one's outcome when no client has seen it."""
    data = {"current": tx.current, "running": tx.running, "newest": tx.newest,
            "outcome": tx.outcome, "seen": tx.seen}
    if tx.current and tx.running:
        return Check("transaction", WARN, f"{tx.kind or 'change'} {tx.current} running",
                     "none running", "the host is carrying out a change right now", data=data)
    if tx.current:
        return Check("transaction", FAIL, f"{tx.kind or 'change'} {tx.current} cut off",
                     "none running", "a change stopped half-way (the host went down?): run "
                     f"{tx.kind or 'update'} or rollback to finish it", data=data)
    if tx.newest and not tx.seen and tx.outcome in ("rolled-back", "failed"):
        state = FAIL if tx.outcome == "failed" else WARN
        return Check("transaction", state, f"{tx.kind} {tx.newest} {tx.outcome}",
                     "none running", tx.message or "its client went away before the end",
                     data=data)
    return Check("transaction", OK, "none running", "none running", data=data)


def reboot_check(reboot: dict | None) -> Check:
    threshold = "not required"
    if not reboot or reboot.get("required") is None:
        return Check("reboot", UNKNOWN, "", threshold,
                     "no /var/run/reboot-required mechanism or needs-restarting on this host",
                     data={"required": None})
    data = {"required": bool(reboot["required"]), "packages": list(reboot.get("packages") or [])}
    if not reboot["required"]:
        return Check("reboot", OK, "not required", threshold, reboot.get("source", ""),
                     data=data)
    packages = data["packages"]
    return Check("reboot", WARN, "required", threshold,
                 f"asked for by {', '.join(packages)}" if packages else reboot.get("source", ""),
                 data=data)


def version_check(inst: Installation, research=None) -> Check:
    """The running version, and whether research found a newer one (when it ran)."""
    running = inst.running
    if not running:
        return Check("version", UNKNOWN, "", "", "cannot tell the running Trigger.dev version",
                     data={"running": None, "latest": None, "update_available": None})
    value = f"v{running}"
    source = f"from {inst.version.source}"
    if research is None:
        return Check("version", OK, value, "", f"{source}; run research to compare releases",
                     data={"running": running, "latest": None, "update_available": None})
    latest = research.target or research.latest
    available = bool(research.update_available and latest)
    data = {"running": running, "latest": latest, "update_available": available}
    if available:
        return Check("version", WARN, f"{value}, v{latest} available", "newest release", source,
                     data=data)
    return Check("version", OK, f"{value}, up to date", "newest release", source, data=data)


def run_containers_check(runs: dict | None, s: Settings, now: datetime) -> Check:
    """Exited task-run containers (v3 task-run…, v4 runner-…) that were not removed."""
    threshold = (f"warn at {s.run_containers_warn} or older than "
                 f"{s.run_container_max_age_hours} h")
    if runs is None:
        return Check("run_containers", UNKNOWN, "", threshold, "docker ps gave no answer")
    count = int(runs.get("count") or 0)
    prefix = runs.get("prefix", "")
    if not count:
        return Check("run_containers", OK, "0", threshold, f"exited, prefix {prefix}",
                     data={"count": 0, "oldest_seconds": None})
    oldest = parse_docker_created(runs.get("oldest_created"))
    age = (now - oldest).total_seconds() if oldest else None
    data = {"count": count, "oldest_seconds": int(age) if age is not None else None}
    value = f"{count}" + (f", oldest {human_duration(age)}" if age is not None else "")
    stale = age is not None and age > s.run_container_max_age_hours * 3600
    if count >= s.run_containers_warn or stale:
        return Check("run_containers", WARN, value, threshold,
                     f"exited {prefix}* containers pile up; cleanup removes them", data=data)
    return Check("run_containers", OK, value, threshold, f"exited, prefix {prefix}", data=data)


def docker_disk_check(system_df: list | None) -> Check:
    """What `docker system df` says could be reclaimed."""
    if not system_df:
        return Check("docker_disk", UNKNOWN, "", "", "docker system df gave no answer")
    total = reclaimable = 0
    parts = []
    for row in system_df:
        size = parse_size(row.get("Size")) or 0
        free = parse_size(str(row.get("Reclaimable", "")).split(" (")[0]) or 0
        total += size
        reclaimable += free
        if free:
            parts.append(f"{str(row.get('Type', '?')).lower()} {human_bytes(free)}")
    return Check("docker_disk", OK, f"{human_bytes(total)}, {human_bytes(reclaimable)} "
                 "reclaimable", "", ", ".join(parts) or "nothing to reclaim",
                 data={"total_bytes": total, "reclaimable_bytes": reclaimable})


def postgres_checks(text: str | None) -> list[Check]:
    """Database size, and the WAL replication slots (Electric) hold back."""
    data = _json(text)
    threshold = f"warn {human_bytes(SLOT_WAL_WARN_BYTES)} WAL per slot"
    if not isinstance(data, dict):
        why = "psql in the database container gave no answer"
        return [Check("database", UNKNOWN, "", "", why),
                Check("replication_slots", UNKNOWN, "", threshold, why)]
    checks = [Check("database", OK, human_bytes(data.get("size")), "", "size on disk",
                    data={"size_bytes": data.get("size")})]
    slots = data.get("slots") or []
    if not slots:
        checks.append(Check("replication_slots", OK, "none", threshold, data={"slots": []}))
        return checks
    heavy = [sl for sl in slots if (sl.get("retained") or 0) >= SLOT_WAL_WARN_BYTES]
    worst = max(slots, key=lambda sl: sl.get("retained") or 0)
    detail = "; ".join(f"{sl.get('name')} {'active' if sl.get('active') else 'inactive'} "
                       f"{human_bytes(sl.get('retained') or 0)}" for sl in slots)
    checks.append(Check("replication_slots", WARN if heavy else OK,
                        f"{len(slots)}, max {human_bytes(worst.get('retained') or 0)} WAL "
                        "retained", threshold, detail, data={"slots": slots}))
    return checks


def default_secrets_check(names: list | None, allowed: str) -> Check:
    """.env keys that still hold a published default (names only)."""
    if names is None:
        return Check("secrets", UNKNOWN, "", "none", ".env could not be read")
    if not names:
        return Check("secrets", OK, "none", "none", ".env holds no published default",
                     data={"default_keys": []})
    detail = "published defaults in .env; Trigger.dev 4.5.6+ refuses to start with them"
    if allowed:
        detail += " (ALLOW_INSECURE_DEFAULT_SECRETS is set)"
    return Check("secrets", FAIL, ", ".join(names), "none", detail,
                 data={"default_keys": list(names)})


def chosen_folder(facts: StatusFacts, configured: str) -> BackupFolder:
    """The backup folder of this host among the measured candidates (see
    backups.backup_dir_for): the configured one, the runbook's, one holding dumps."""
    first = facts.folders[0]
    dumps = len(backups.in_folder(first.folder))
    directory, _ = backups.backup_dir_for(configured, facts.installation.layout.name,
                                          facts.installation.path, dumps)
    return next((f for f in facts.folders if f.paths.backup_dir == directory), first)


def evaluate(facts: StatusFacts, s: Settings, research=None) -> list[Check]:
    """Every status check from what the status script measured."""
    raw, now, inst = facts.raw, facts.now, facts.installation
    chosen = chosen_folder(facts, s.backup_dir)
    disks = {label: item for label, item in (raw.get("disks") or {}).items()
             if not label.startswith("backups") or item.get("path") == chosen.paths.backup_dir}
    disks = {("backups" if label.startswith("backups") else label): item
             for label, item in disks.items()}
    checks: list[Check] = []
    checks += container_checks(inst, now)
    checks.append(webapp_http_check(raw.get("webapp_http"), inst.webapp_url))
    checks.append(resources_check(raw.get("stats"), inst))
    checks += disk_checks(disks, s)
    checks += memory_checks(raw.get("meminfo"))
    if raw.get("tls"):
        tls = raw["tls"]
        checks.append(live_certificate_check(tls, tls.get("host") or s.domain, s, now))
    checks += certbot_checks(raw.get("certbot"), s, now)
    checks.append(backup_check(backups.in_folder(chosen.folder), chosen.paths.backup_dir, s,
                               now))
    checks.append(transaction_check(chosen.transactions))
    checks.append(reboot_check(raw.get("reboot")))
    checks.append(version_check(inst, research))
    checks.append(run_containers_check(raw.get("run_containers"), s, now))
    checks.append(docker_disk_check(raw.get("system_df")))
    checks += postgres_checks(raw.get("postgres"))
    checks.append(default_secrets_check(raw.get("default_secrets"),
                                        raw.get("insecure_secrets_allowed", "")))
    return checks


def tls_target(domain: str) -> tuple[str, int]:
    """The host name and port whose certificate is checked ("" when no domain is set)."""
    domain = domain.strip()
    host, sep, port = domain.rpartition(":")
    if sep and port.isdigit():
        return host, int(port)
    return domain, 443
