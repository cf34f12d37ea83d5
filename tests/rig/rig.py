"""The rig as a whole: install, up, down and status of the registry and the hosts."""

import contextlib
import fcntl
import os
import shutil
import sys
import threading
import uuid
from pathlib import Path

from . import images, install, proc, registry
from .config import (
    AUTHORIZED_KEYS,
    COMPOSE_PLUGIN,
    HOST_PATH,
    KNOWN_HOSTS,
    REPO,
    SSH_PORT,
    STATE,
    RigError,
    host_address,
    host_dir,
    host_domain,
)
from .host import RigHost

PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
BIND_DIRS = ["run", "opt", "root", "backups", "letsencrypt", "cron.d", "docker", "sbin/upper",
             "sbin/work", "letsencrypt-lib", "letsencrypt-log"]
SSHD_CONFIG = """Port {port}
ListenAddress {address}
HostKey {dir}/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
MaxStartups 50:30:100
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
"""
STANDIN_REBOOT = """#!/bin/sh
# Stand-in {name} (trigger-maint test rig): asks the host supervisor to restart sshd and
# dockerd with a new boot id, as a real reboot would.
{guard}exec curl -sf --unix-socket /run/rig/control.sock -X POST http://rig/reboot -o /dev/null
"""
SHUTDOWN_GUARD = ('case " $* " in *" -r "*|*" --reboot "*) ;; '
                  '*) echo "shutdown: only -r is supported on this host" >&2; exit 1;; esac\n')


@contextlib.contextmanager
def rig_lock():
    """Serialize install/up/down between processes."""
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / "rig.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


class Rig:
    """Registry plus hosts 1..N on 127.0.0.11..; see tests/rig/README.md."""

    def install(self) -> None:
        with rig_lock():
            install.install()

    def up(self, hosts: int = 3) -> list[RigHost]:
        """Start the registry and hosts 1..hosts; hosts already up stay up."""
        with rig_lock():
            if not COMPOSE_PLUGIN.exists():
                raise RigError("run `python -m tests.rig install` first")
            install.client_key()
            registry.start()
            if not registry.has_tag("triggerdotdev/trigger.dev", "v4.5.10"):
                raise RigError("registry has no images: run `python -m tests.rig install`")
            numbers = range(1, hosts + 1)
            for k in numbers:
                start_host(k)
            write_known_hosts()
            for k in numbers:
                wait_host(k)
        return [RigHost(k) for k in numbers]

    def down(self) -> None:
        """Stop every host, the registry and the builder engine."""
        with rig_lock():
            threads = [threading.Thread(target=stop_host, args=(k,)) for k in started_hosts()]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            registry.stop()
            images.stop_builder()

    def status(self) -> str:
        lines = [f"state {STATE}", f"registry {'up' if registry.running() else 'down'}"]
        for k in started_hosts():
            h = RigHost(k)
            state = "up" if h.is_up() else "down"
            lines.append(f"host {k} {state} {h.address}:{SSH_PORT} layout={h.layout} "
                         f"version={h.version} boot_id={h.boot_id()}")
        return "\n".join(lines)

    def host(self, k: int) -> RigHost:
        return RigHost(k)


def started_hosts() -> list[int]:
    """Numbers of hosts that have a state folder."""
    root = STATE / "hosts"
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit()) if root.exists() else []


def prepare_host(k: int) -> None:
    """Fresh host folder for a boot: empty /run, new boot id, sshd config, stand-in reboot."""
    d = host_dir(k)
    for sub in BIND_DIRS:
        (d / sub).mkdir(parents=True, exist_ok=True)
    for old in (d / "run").iterdir():
        shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    for mountpoint in ("/etc/letsencrypt", "/etc/cron.d", "/var/lib/docker", "/var/backups",
                       "/var/lib/letsencrypt", "/var/log/letsencrypt"):
        Path(mountpoint).mkdir(parents=True, exist_ok=True)
    address = host_address(k)
    (d / "hosts").write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                             f"{address}\t{host_domain(k)} trigger-host-{k}\n")
    (d / "boot_id").write_text(f"{uuid.uuid4()}\n")
    (d / "lock").touch()
    if not (d / "ssh_host_ed25519_key").exists():
        proc.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"trigger-host-{k}",
                  "-f", d / "ssh_host_ed25519_key"])
    (d / "sshd_config").write_text(SSHD_CONFIG.format(
        port=SSH_PORT, address=address, dir=d, authorized_keys=AUTHORIZED_KEYS))
    for name, guard in (("reboot", ""), ("shutdown", SHUTDOWN_GUARD)):
        script = d / "sbin" / "upper" / name
        script.write_text(STANDIN_REBOOT.format(name=name, guard=guard))
        script.chmod(0o755)


def start_host(k: int) -> None:
    """Start host k's supervisor in new mount+UTS namespaces unless it runs."""
    d = host_dir(k)
    if proc.read_pid(d / "hostd.pid"):
        return
    stop_leftovers(d)
    prepare_host(k)
    env = {"PATH": HOST_PATH, "LANG": "C.UTF-8", "HOME": "/root", "PYTHONPATH": str(REPO),
           "TRIGGER_RIG_DIR": str(STATE), "PYTHONDONTWRITEBYTECODE": "1"}
    argv = ["unshare", "--mount", "--uts", "--propagation", "private",
            PYTHON, "-m", "tests.rig.hostd", str(k)]
    pid = proc.spawn(argv, d / "hostd.log", cwd=REPO, env=env).pid
    (d / "hostd.pid").write_text(f"{pid}\n")


def wait_host(k: int) -> None:
    """Wait until host k's Docker engine and sshd answer."""
    host = RigHost(k)

    def ready():
        if not proc.read_pid(host.dir / "hostd.pid"):
            log = (host.dir / "hostd.log").read_text()[-3000:]
            raise RigError(f"host {k} supervisor exited:\n{log}")
        return host.is_up()

    proc.wait_for(ready, 180, f"host {k}", interval=0.1)


def stop_host(k: int) -> None:
    """Stop host k's supervisor (it stops sshd and dockerd), then any leftover dockerd."""
    d = host_dir(k)
    proc.stop(proc.read_pid(d / "hostd.pid"), timeout=120)
    stop_leftovers(d)
    (d / "hostd.pid").unlink(missing_ok=True)


def stop_leftovers(d: Path) -> None:
    """Stop a dockerd or sshd (the host's own, or the extra endpoints' of endpoints.py) that
    outlived its host supervisor (found by its pid file)."""
    extra = [(path.name, "sshd") for path in (d / "run").glob("sshd-extra-*.pid")]
    for pidfile, name in (("docker.pid", "dockerd"), ("sshd.pid", "sshd"), *extra):
        pid = proc.read_pid(d / "run" / pidfile)
        if pid and Path(f"/proc/{pid}/comm").read_text().strip() == name:
            proc.stop(pid, timeout=60)


def write_known_hosts() -> None:
    """known_hosts with every host's key as [127.0.0.1K]:2222 ssh-ed25519 ..."""
    lines = []
    for k in started_hosts():
        pub = host_dir(k) / "ssh_host_ed25519_key.pub"
        if pub.exists():
            kind, key = pub.read_text().split()[:2]
            lines.append(f"[{host_address(k)}]:{SSH_PORT} {kind} {key}\n")
    tmp = KNOWN_HOSTS.with_suffix(".tmp")
    tmp.write_text("".join(lines))
    os.replace(tmp, KNOWN_HOSTS)
