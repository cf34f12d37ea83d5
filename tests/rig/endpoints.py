"""More SSH endpoints per rig host, to measure a client against many hosts (bench/).

`start(host, n)` runs more sshds inside host k's namespaces that listen on n more ports
(2300, 2301, ... on the host's own address; 16 ports per sshd, its limit), with the host's
key and the rig's authorized key: each port is an endpoint that reaches the same host, its
Docker engine and its installation. Their known_hosts lines go to a file of their own
(KNOWN_HOSTS_FILE: the rig's known_hosts plus every extra endpoint), so that the rig's file
is never edited under the feet of another test process. `stop(host)` ends those sshds and
their sessions; the rig's own sshd on :2222 is never touched. `python -m tests.rig endpoints
K N` does the same (N = 0 stops them).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from . import proc
from .config import AUTHORIZED_KEYS, KNOWN_HOSTS, SSH_DIR, RigError
from .host import RigHost

FIRST_PORT = 2300
MAX_PER_HOST = 200
KNOWN_HOSTS_FILE = SSH_DIR / "known_hosts.endpoints"
PORTS_PER_SSHD = 16  # sshd's MAX_LISTEN_SOCKS
PIDFILES = "sshd-extra-*.pid"  # in the host's private /run, one per extra sshd
CONFIG = """{ports}
ListenAddress {address}
HostKey {dir}/ssh_host_ed25519_key
PidFile /run/sshd-extra-{index}.pid
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
MaxStartups 400:30:800
MaxSessions 20
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
"""


def _state(host: RigHost) -> Path:
    return host.dir / "endpoints.json"


def _pids(host: RigHost) -> list[int]:
    """The extra sshds of host that run."""
    return [pid for path in sorted((host.dir / "run").glob(PIDFILES))
            if (pid := proc.read_pid(path))]


def endpoints(host: RigHost) -> list[str]:
    """The extra endpoints of host as root@address:port (empty when none run)."""
    if not _pids(host):
        return []
    try:
        ports = json.loads(_state(host).read_text())["ports"]
    except (OSError, ValueError, KeyError):
        return []
    return [f"root@{host.address}:{port}" for port in ports]


def start(host: RigHost, count: int) -> list[str]:
    """Run `count` extra endpoints on host (replacing any it had); their addresses."""
    if not 1 <= count <= MAX_PER_HOST:
        raise RigError(f"endpoints: 1 to {MAX_PER_HOST} per host, not {count}")
    stop(host)
    ports = list(range(FIRST_PORT, FIRST_PORT + count))
    _state(host).write_text(json.dumps({"ports": ports}) + "\n")
    for index in range(0, count, PORTS_PER_SSHD):
        group = ports[index:index + PORTS_PER_SSHD]
        config = host.dir / f"sshd_extra_config-{index // PORTS_PER_SSHD}"
        config.write_text(CONFIG.format(ports="\n".join(f"Port {p}" for p in group),
                                        address=host.address, dir=host.dir,
                                        index=index // PORTS_PER_SSHD,
                                        authorized_keys=AUTHORIZED_KEYS))
        # sshd detaches by itself and stays in the host's namespaces (/run, /var/lib/docker)
        host.run(f"mkdir -p /run/sshd && /usr/sbin/sshd -f {config} "
                 f"-E {host.dir}/sshd-extra.log")
    for port in ports:
        proc.wait_for(lambda p=port: proc.ssh_banner(host.address, p), 30, f"sshd :{port}")
    write_known_hosts()
    return endpoints(host)


def stop(host: RigHost) -> None:
    """End host's extra sshds and every session they started."""
    for pid in _pids(host):
        if Path(f"/proc/{pid}/comm").read_text().strip() != "sshd":
            continue
        sessions = proc.descendants(pid)
        proc.stop(pid, timeout=5)
        for session in sessions:
            proc.stop(session, timeout=0, sig=signal.SIGKILL)
    _state(host).unlink(missing_ok=True)
    write_known_hosts()


def write_known_hosts() -> Path:
    """KNOWN_HOSTS_FILE: the rig's known_hosts, then a line per extra endpoint."""
    from .rig import started_hosts  # rig imports host; keep this module importable alone

    lines = [KNOWN_HOSTS.read_text()] if KNOWN_HOSTS.exists() else []
    for k in started_hosts():
        host = RigHost(k)
        pub = host.dir / "ssh_host_ed25519_key.pub"
        if not pub.exists():
            continue
        kind, key = pub.read_text().split()[:2]
        lines += [f"[{host.address}]:{e.rpartition(':')[2]} {kind} {key}\n"
                  for e in endpoints(host)]
    tmp = KNOWN_HOSTS_FILE.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text("".join(lines))
    os.replace(tmp, KNOWN_HOSTS_FILE)
    return KNOWN_HOSTS_FILE

