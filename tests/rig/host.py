"""RigHost: one simulated server, driven from tests."""

import contextlib
import fcntl
import json
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from . import certs, layouts, proc
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
from .images import WEBAPP_VERSIONS


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
        """Every container running, and healthy where it has a healthcheck."""
        sock = self.dir / "run" / "docker.sock"
        containers = proc.docker_api(sock, "GET", "/containers/json?all=1")
        return all(c["State"] == "running" and "(health: starting)" not in c["Status"]
                   and "(unhealthy)" not in c["Status"] for c in containers)

    def clean(self) -> None:
        """Remove containers, volumes, images not from the registry, dangling images,
        /opt/trigger, /var/backups/*, /run/reboot-required* and /etc/letsencrypt/*."""
        sock = self.dir / "run" / "docker.sock"
        with ThreadPoolExecutor(8) as pool:
            containers = proc.docker_api(sock, "GET", "/containers/json?all=1")
            list(pool.map(lambda c: proc.docker_api(
                sock, "DELETE", f"/containers/{c['Id']}?force=1&v=1"), containers))
            volumes = proc.docker_api(sock, "GET", "/volumes")["Volumes"] or []
            list(pool.map(lambda v: proc.docker_api(
                sock, "DELETE", f"/volumes/{v['Name']}?force=1"), volumes))
        for image in proc.docker_api(sock, "GET", "/images/json"):
            for tag in image.get("RepoTags") or []:
                if not tag.startswith(f"{REGISTRY}/") and tag != "<none>:<none>":
                    proc.docker_api(sock, "DELETE", f"/images/{quote(tag, safe='')}?force=1")
        dangling = quote(json.dumps({"dangling": ["true"]}))
        proc.docker_api(sock, "POST", f"/images/prune?filters={dangling}")
        proc.docker_api(sock, "POST", "/networks/prune")
        hostd = proc.read_pid(self.dir / "hostd.pid")
        if hostd and " /var/backups/trigger " in Path(f"/proc/{hostd}/mountinfo").read_text():
            self.restore_backup_fs()
        layouts.wipe(self.dir / "opt" / "trigger")
        for folder in ("backups", "letsencrypt"):
            for path in (self.dir / folder).iterdir():
                layouts.wipe(path)
        for name in ("reboot-required", "reboot-required.pkgs"):
            (self.dir / "run" / name).unlink(missing_ok=True)

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
