"""Host supervisor: one simulated server with its own mounts, hostname, Docker engine, sshd,
TLS endpoint and stand-in reboot. Run by the rig as
`unshare --mount --uts --propagation private python3 -m tests.rig.hostd K`."""

import http.server
import os
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import uuid
from pathlib import Path

from . import proc
from .config import SSH_PORT, host_address, host_dir, host_domain

CONTROL = Path("/run/rig/control.sock")
DOCKER_SOCK = Path("/run/docker.sock")
# host-dir entry -> path it is bind-mounted over inside the host
BINDS = {"run": "/run", "opt": "/opt", "root": "/root", "backups": "/var/backups",
         "letsencrypt": "/etc/letsencrypt", "cron.d": "/etc/cron.d", "docker": "/var/lib/docker",
         "hosts": "/etc/hosts", "boot_id": "/proc/sys/kernel/random/boot_id",
         # certbot's lock files: one host's `certbot certificates` must not block another's
         "letsencrypt-lib": "/var/lib/letsencrypt", "letsencrypt-log": "/var/log/letsencrypt"}
DOCKERD = ["dockerd", "-H", f"unix://{DOCKER_SOCK}", "--pidfile", "/run/docker.pid",
           "--bridge=none", "--iptables=false", "--ip-masq=false", "--ip6tables=false",
           "--insecure-registry", "127.0.0.1:5000"]


class Host:
    """The daemons of host k; methods that start or stop them hold self.lock."""

    def __init__(self, k: int):
        self.k, self.dir, self.address = k, host_dir(k), host_address(k)
        self.lock = threading.RLock()
        self.dockerd = self.sshd = None

    def mount(self) -> None:
        """Hostname and private views of /run, /opt, /root, ... (inside the new namespaces)."""
        proc.run(["hostname", f"trigger-host-{self.k}"])
        for src, dst in BINDS.items():
            proc.run(["mount", "--bind", self.dir / src, dst])
        sbin = self.dir / "sbin"
        proc.run(["mount", "-t", "overlay", "overlay", "-o",
                  f"lowerdir=/usr/sbin,upperdir={sbin}/upper,workdir={sbin}/work", "/usr/sbin"])

    def start_dockerd(self) -> None:
        with self.lock:
            if self.dockerd and self.dockerd.poll() is None:
                return
            self.dockerd = proc.spawn(DOCKERD, self.dir / "dockerd.log")
            proc.wait_for(lambda: proc.docker_ping(DOCKER_SOCK), 120, "dockerd")

    def stop_dockerd(self) -> None:
        """Stop the engine; it stops the containers as a shutdown would."""
        with self.lock:
            if self.dockerd:
                proc.stop(self.dockerd.pid, timeout=60)
                self.dockerd.wait()
                self.dockerd = None

    def start_sshd(self) -> None:
        with self.lock:
            if self.sshd and self.sshd.poll() is None:
                return
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
            self.sshd = proc.spawn(["/usr/sbin/sshd", "-D", "-f", self.dir / "sshd_config",
                                    "-E", self.dir / "sshd.log"], self.dir / "sshd.out")
            proc.wait_for(lambda: proc.ssh_banner(self.address, SSH_PORT), 30, "sshd")

    def stop_sshd(self) -> None:
        """Stop sshd and kill every session it started, as a shutdown would."""
        with self.lock:
            if not self.sshd:
                return
            sessions = proc.descendants(self.sshd.pid)
            proc.stop(self.sshd.pid, timeout=5)
            self.sshd.wait()
            self.sshd = None
            for pid in sessions:
                proc.stop(pid, timeout=0, sig=signal.SIGKILL)

    def reboot(self) -> None:
        """Stand-in reboot: sshd and dockerd down, /run/reboot-required gone, new boot id, up."""
        with self.lock:
            time.sleep(0.5)  # lets the `reboot` command itself return first
            self.stop_sshd()
            self.stop_dockerd()
            for name in ("reboot-required", "reboot-required.pkgs"):
                Path("/run", name).unlink(missing_ok=True)
            (self.dir / "boot_id").write_text(f"{uuid.uuid4()}\n")
            self.start_dockerd()
            self.start_sshd()

    def serve_tls(self) -> None:
        """HTTPS on address:443 with the certificate currently in /etc/letsencrypt/live."""
        server = socket.create_server((self.address, 443), backlog=64)
        while True:
            conn, _ = server.accept()
            threading.Thread(target=self.tls_connection, args=(conn,), daemon=True).start()

    def tls_connection(self, conn: socket.socket) -> None:
        live = Path("/etc/letsencrypt/live") / host_domain(self.k)
        try:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(live / "fullchain.pem", live / "privkey.pem")
            conn.settimeout(5)
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(4096)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                            b"Connection: close\r\n\r\nOK\n")
        except (OSError, ssl.SSLError):
            conn.close()


class ControlHandler(http.server.BaseHTTPRequestHandler):
    """POST /reboot (asynchronous), /stop-sshd, /start-sshd, /ensure-up."""

    def do_POST(self):
        host: Host = self.server.host
        action = self.path.strip("/")
        if action == "reboot":
            threading.Thread(target=host.reboot, daemon=True).start()
            return self.reply(202, "rebooting\n")
        actions = {"stop-sshd": [host.stop_sshd], "start-sshd": [host.start_sshd],
                   "ensure-up": [host.start_dockerd, host.start_sshd]}
        if action not in actions:
            return self.reply(404, "unknown action\n")
        try:
            for step in actions[action]:
                step()
        except Exception as exc:  # reported to the caller
            return self.reply(500, f"{exc}\n")
        self.reply(200, "ok\n")

    def reply(self, status: int, body: str):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, fmt, *args):
        print(f"control: {fmt % args}", flush=True)


class ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main() -> None:
    host = Host(int(sys.argv[1]))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    host.mount()
    host.start_dockerd()
    host.start_sshd()
    CONTROL.parent.mkdir(exist_ok=True)
    CONTROL.unlink(missing_ok=True)
    control = ControlServer(str(CONTROL), ControlHandler)
    control.host = host
    threading.Thread(target=control.serve_forever, daemon=True).start()
    threading.Thread(target=host.serve_tls, daemon=True).start()
    print(f"host {host.k} up (pid {os.getpid()})", flush=True)
    while not stop.wait(1):
        pass
    with host.lock:
        host.stop_sshd()
        host.stop_dockerd()
    print(f"host {host.k} down", flush=True)


if __name__ == "__main__":
    main()
