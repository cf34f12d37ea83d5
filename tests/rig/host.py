"""RigHost: one simulated server, driven from tests."""

import contextlib
import datetime as dt
import fcntl
import functools
import importlib.util
import json
import shlex
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from . import certs, images, layouts, proc, runbook
from .config import (
    BASE_IMAGE,
    HOST_PATH,
    KEY,
    KNOWN_HOSTS,
    REGISTRY,
    SSH_PORT,
    RigError,
    host_address,
    host_dir,
    host_domain,
)
from .images import STANDINS, WEBAPP_VERSIONS


@functools.cache
def logfmt():
    """The stand-ins' log formats (standins/logfmt.py), for lines a test injects."""
    spec = importlib.util.spec_from_file_location("rig_logfmt", STANDINS / "logfmt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RigHost:
    """Host k: 127.0.0.(10+k):2222, reached as root with the rig's key."""

    def __init__(self, number: int):
        self.number = number
        self.address = host_address(number)
        self.port = SSH_PORT
        self.key = str(KEY)
        self.known_hosts = str(KNOWN_HOSTS)
        self.domain = host_domain(number)
        self.dir = host_dir(number)

    def __repr__(self):
        return f"RigHost({self.number}, {self.layout}, {self.version})"

    def fab_args(self) -> list[str]:
        """Arguments that point fab/trigger-maint at this host."""
        return ["-H", f"root@{self.address}:{self.port}", "-i", self.key]

    # -- state ------------------------------------------------------------------------------
    def _state(self) -> dict:
        try:
            return json.loads((self.dir / "layout.json").read_text())
        except (OSError, ValueError):
            return {}

    @property
    def layout(self) -> str | None:
        return self._state().get("layout")

    @property
    def version(self) -> str | None:
        return self._state().get("version")

    def is_up(self) -> bool:
        """True if the host's Docker engine and sshd answer."""
        return (proc.docker_ping(self.dir / "run" / "docker.sock")
                and proc.ssh_banner(self.address, self.port))

    def boot_id(self) -> str:
        """The boot id the host reports in /proc/sys/kernel/random/boot_id."""
        return (self.dir / "boot_id").read_text().strip()

    @contextlib.contextmanager
    def lock(self):
        """Exclusive use of this host across processes."""
        with open(self.dir / "lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- commands ---------------------------------------------------------------------------
    def run(self, cmd: str, check: bool = True, input: str | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
        """Run a shell command inside the host's namespaces (as root, cwd /root)."""
        pid = proc.read_pid(self.dir / "hostd.pid")
        if not pid:
            raise RigError(f"host {self.number} is not up")
        env = {"PATH": HOST_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
        result = subprocess.run(["nsenter", "-t", str(pid), "-m", "-u", "--", "/bin/sh", "-c",
                                 f"cd /root && {cmd}"], env=env, text=True, capture_output=True,
                                input=input, timeout=timeout,
                                stdin=subprocess.DEVNULL if input is None else None)
        if check and result.returncode:
            raise RigError(f"host {self.number}: {cmd[:300]} -> {result.returncode}\n"
                           f"{result.stdout[-2000:]}{result.stderr[-3000:]}")
        return result

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`docker compose` for the current layout, run in /opt/trigger."""
        layout = layouts.LAYOUTS[self.layout or "v4"]
        argv = ["docker", "compose", *layout.compose_args, *args]
        return self.run("cd /opt/trigger && " + shlex.join(argv), check=check)

    def psql(self, sql: str) -> str:
        """Run SQL in the layout's database container as its user; unaligned output."""
        layout = layouts.LAYOUTS[self.layout or "v4"]
        argv = ["docker", "compose", *layout.compose_args, "exec", "-T", "postgres", "psql",
                "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", layout.db_user,
                "-d", layout.db_name]
        return self.run("cd /opt/trigger && " + shlex.join(argv), input=sql).stdout.strip()

    def row_counts(self) -> dict[str, int]:
        """Row counts of the seeded tables and _prisma_migrations."""
        tables = ["User", "Project", "RuntimeEnvironment", "TaskRun", "_prisma_migrations"]
        sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in tables)
        rows = (line.split("|") for line in self.psql(sql + ";").splitlines())
        return {name: int(count) for name, count in rows}

    # -- set-up -----------------------------------------------------------------------------
    def control(self, action: str, timeout: float = 180) -> None:
        """Ask the host supervisor to reboot / stop-sshd / start-sshd / ensure-up."""
        status, body = proc.unix_request(self.dir / "run" / "rig" / "control.sock", "POST",
                                         f"/{action}", timeout)
        if status not in (200, 202):
            raise RigError(f"host {self.number} {action}: {status} {body}")

    def stop_sshd(self) -> None:
        self.control("stop-sshd")

    def start_sshd(self) -> None:
        self.control("start-sshd")

    def reset(self, layout: str, version: str | None = None, wait: bool | None = None) -> None:
        """Fresh installation of layout at version (default: the layout's base version).
        Waits for a healthy webapp (migrated and seeded) when that version can get there."""
        spec = layouts.LAYOUTS[layout]
        version = version or spec.base_version
        behaviour = WEBAPP_VERSIONS[version][1]
        self.control("ensure-up")
        self.clean()
        (self.dir / "layout.json").write_text(json.dumps({"layout": layout, "version": version}))
        layouts.render(spec, self.number, version, self.dir / "opt" / "trigger")
        self.set_certificate(60)
        self.compose("up", "-d", "--quiet-pull")
        url = f"http://{self.address}:{spec.web_port}/healthcheck"
        if wait is False or behaviour == "crash":
            return
        if behaviour == "healthy":
            proc.wait_for(lambda: proc.http_status(url) == 200, 180, f"{url} to answer 200", 0.2)
            proc.wait_for(self.all_healthy, 180, "every container to be healthy", 0.2)
        else:
            proc.wait_for(lambda: proc.http_status(url), 180, f"{url} to answer", 0.2)

    def all_healthy(self) -> bool:
        """Every container running, and healthy where it has a healthcheck (or done: exited 0,
        as upstream's s2-init)."""
        sock = self.dir / "run" / "docker.sock"
        containers = proc.docker_api(sock, "GET", "/containers/json?all=1")
        return all(c["State"] == "running" and "(health: starting)" not in c["Status"]
                   and "(unhealthy)" not in c["Status"] or c["Status"].startswith("Exited (0)")
                   for c in containers)

    def clean(self) -> None:
        """Remove containers, volumes, images not from the registry, dangling images,
        /opt/trigger, /var/backups/*, /run/reboot-required*, /etc/letsencrypt/* and
        /etc/cron.d/*."""
        sock = self.dir / "run" / "docker.sock"
        with ThreadPoolExecutor(8) as pool:
            containers = proc.docker_api(sock, "GET", "/containers/json?all=1")
            list(pool.map(lambda c: proc.docker_api(
                sock, "DELETE", f"/containers/{c['Id']}?force=1&v=1"), containers))
            volumes = proc.docker_api(sock, "GET", "/volumes")["Volumes"] or []
            list(pool.map(lambda v: proc.docker_api(
                sock, "DELETE", f"/volumes/{v['Name']}?force=1"), volumes))
        stale = self.images_stale()
        for image in proc.docker_api(sock, "GET", "/images/json"):
            for tag in image.get("RepoTags") or []:
                if (stale or not tag.startswith(f"{REGISTRY}/")) and tag != "<none>:<none>":
                    proc.docker_api(sock, "DELETE", f"/images/{quote(tag, safe='')}?force=1")
        (self.dir / "images-key").write_text(images.built_key() + "\n")
        dangling = quote(json.dumps({"dangling": ["true"]}))
        proc.docker_api(sock, "POST", f"/images/prune?filters={dangling}")
        proc.docker_api(sock, "POST", "/networks/prune")
        hostd = proc.read_pid(self.dir / "hostd.pid")
        if hostd and " /var/backups/trigger " in Path(f"/proc/{hostd}/mountinfo").read_text():
            self.restore_backup_fs()
        layouts.wipe(self.dir / "opt" / "trigger")
        for folder in ("backups", "letsencrypt", "cron.d"):
            for path in (self.dir / folder).glob("*"):
                layouts.wipe(path)
        for name in ("reboot-required", "reboot-required.pkgs"):
            (self.dir / "run" / name).unlink(missing_ok=True)

    def images_stale(self) -> bool:
        """True if the host's images may predate the stand-ins last built (install changed
        them): clean() then drops them all, so the next start pulls the new ones."""
        try:
            return (self.dir / "images-key").read_text().strip() != images.built_key()
        except OSError:
            return True

    def require_reboot(self, *packages: str) -> None:
        """Write /run/reboot-required (and .pkgs) as unattended-upgrades does."""
        run = self.dir / "run"
        (run / "reboot-required").write_text("*** System restart required ***\n")
        (run / "reboot-required.pkgs").write_text("".join(f"{p}\n" for p in packages))

    def set_certificate(self, days: float) -> None:
        """certbot-style certificate for self.domain expiring in `days` (negative: expired)."""
        certs.make_certificate(self.dir / "letsencrypt", self.domain, days)

    def shrink_backup_fs(self, kib: int) -> None:
        """Mount a kib-sized tmpfs at /var/backups/trigger inside the host."""
        self.run(f"mkdir -p /var/backups/trigger && umount /var/backups/trigger 2>/dev/null; "
                 f"mount -t tmpfs -o size={int(kib)}k rig-backups /var/backups/trigger")

    def restore_backup_fs(self) -> None:
        self.run("umount /var/backups/trigger 2>/dev/null || true")

    def pile_exited_containers(self, n: int, prefix: str = "runner") -> list[str]:
        """Create n exited containers named <prefix>-<hex> from the base image."""
        names = [f"{prefix}-{i:04x}{self.number:02x}" for i in range(n)]
        self.run(f"docker image inspect {BASE_IMAGE} >/dev/null 2>&1 || docker pull -q "
                 f"{BASE_IMAGE} >/dev/null")
        script = "xargs -P 8 -I NAME docker run --name NAME --network host " \
                 f"--label rig.pile=1 {BASE_IMAGE} true >/dev/null"
        self.run(script, input="\n".join(names) + "\n")
        return names

    # -- reality's mess -------------------------------------------------------------------------
    def container_id(self, service: str) -> str:
        """Id of the running container of the layout's compose service."""
        ids = self.compose("ps", "-q", service).stdout.split()
        if not ids:
            raise RigError(f"host {self.number}: no running container for service {service}")
        return ids[0]

    def log_line(self, service: str, text: str) -> None:
        """Write text (one or more lines) to the stdout of service's main process (PID 1 of its
        container), so it shows in `docker logs` as if the service had logged it."""
        sock = self.dir / "run" / "docker.sock"
        pid = proc.docker_api(sock, "GET", f"/containers/{self.container_id(service)}/json")
        with open(f"/proc/{pid['State']['Pid']}/fd/1", "w", encoding="utf-8") as out:
            out.write(text if text.endswith("\n") else text + "\n")

    def log_error(self, service: str, message: str, level: str = "error") -> str:
        """Make service log message at level in its real program's format; returns the line."""
        line = logfmt().line_for(service, level, message)
        self.log_line(service, line)
        return line

    def write_cron(self, name: str, text: str) -> None:
        """/etc/cron.d/<name> inside the host (private to it)."""
        (self.dir / "cron.d").mkdir(exist_ok=True)
        (self.dir / "cron.d" / name).write_text(text)

    def _dump_source(self) -> tuple[str, str]:
        """(container, database user) that pg_dumpall runs in and as."""
        return self.container_id("postgres"), layouts.LAYOUTS[self.layout or "v4"].db_user

    def runbook_backups(self, nights: int = 10, gap_after: int = 7, gap_days: int = 28,
                        folder: str = runbook.FOLDER, foreign: str | None = "README.txt"
                        ) -> list[str]:
        """The runbook cron's dumps: one real `pg_dumpall | gzip` saved as
        trigger-db-YYYYMMDD-0300.sql.gz for each of `nights` nights (mtime that night), the
        nights after the newest `gap_after` lying `gap_days` further back; a foreign file
        (None: none) older than all; /etc/cron.d/trigger-db-backup. Dump names, oldest first."""
        times = runbook.nights(nights, gap_after, gap_days)
        files = {runbook.dump_name(t): t.timestamp() + 7 for t in times}
        tmp = f"{folder}/.rig-dump.tmp"
        script = runbook.dump_script(*self._dump_source(), tmp)
        script += runbook.copies_script(tmp, folder, files)
        if foreign:
            first = times[0] if times else dt.datetime.now()
            target = shlex.quote(f"{folder}/{foreign}")
            script += (f"printf %s {shlex.quote(runbook.README)} > {target} && touch -d "
                       f"@{(first - dt.timedelta(days=2)).timestamp():.0f} {target}\n")
        self.run(script)
        self.write_cron(runbook.CRON_NAME, runbook.CRONTAB)
        return list(files)

    def add_truncated_dump(self, name: str, folder: str = runbook.FOLDER) -> str:
        """A real dump cut off in the middle, saved as folder/name (mtime from the name's
        stamp); returns its path."""
        tmp = f"{folder}/.rig-dump.tmp"
        mtime = runbook.mtime_of(name) or time.time()
        self.run(runbook.dump_script(*self._dump_source(), tmp)
                 + runbook.truncate_script(tmp, f"{folder}/{name}", mtime))
        return f"{folder}/{name}"

    def add_fake_dump(self, name: str, text: str = runbook.NOT_A_DUMP,
                      folder: str = runbook.FOLDER) -> str:
        """A gzip'ed text that is no dump, saved as folder/name; returns its path."""
        target = shlex.quote(f"{folder}/{name}")
        mtime = runbook.mtime_of(name) or time.time()
        self.run(f"mkdir -p {shlex.quote(folder)} && gzip -c > {target} && "
                 f"touch -d @{mtime:.0f} {target}", input=text)
        return f"{folder}/{name}"

    def backup_files(self, folder: str = runbook.FOLDER) -> dict[str, int]:
        """Regular files directly in folder inside the host: name -> size in bytes."""
        out = self.run(f"find {shlex.quote(folder)} -maxdepth 1 -type f -printf '%f\\t%s\\n' "
                       "2>/dev/null || true").stdout
        return {name: int(size) for name, size in (line.split("\t") for line in out.splitlines())}
