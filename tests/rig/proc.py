"""Process helpers: spawn daemons, wait for readiness, stop them by pid."""

import http.client
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from .config import RigError


def run(argv, check=True, **kw) -> subprocess.CompletedProcess:
    """Run a command, capture text output, raise RigError with its output on failure."""
    kw.setdefault("stdin", subprocess.DEVNULL if "input" not in kw else None)
    proc = subprocess.run([str(a) for a in argv], text=True, capture_output=True, **kw)
    if check and proc.returncode:
        raise RigError(f"{' '.join(map(str, argv))[:300]} -> {proc.returncode}\n"
                       f"{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return proc


def spawn(argv, log: Path, **kw) -> subprocess.Popen:
    """Start a detached daemon, stdin /dev/null, stdout+stderr appended to log."""
    with open(log, "ab") as out:
        return subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, **kw)


def read_pid(path: Path) -> int | None:
    """The pid stored in path, if that process is alive."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if alive(pid) else None


def alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def descendants(pid: int) -> list[int]:
    """All live descendants of pid."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop(pid: int | None, timeout: float = 30, sig=signal.SIGTERM) -> None:
    """Send sig to pid, wait for it to go, SIGKILL after timeout."""
    if not pid or not alive(pid):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline += 5
        time.sleep(0.05)


def wait_for(check, timeout: float, what: str, interval: float = 0.05):
    """Poll check() until it returns a truthy value; RigError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RigError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def ssh_banner(address: str, port: int) -> bool:
    """True if an SSH server answers with its banner."""
    try:
        with socket.create_connection((address, port), timeout=1) as sock:
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (Docker API, host supervisor control)."""

    def __init__(self, path: Path, timeout: float = 60):
        super().__init__("localhost", timeout=timeout)
        self.path = str(path)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def unix_request(path: Path, method: str, url: str, timeout: float = 60) -> tuple[int, str]:
    """One HTTP request over a unix socket; (status, body), or (0, error) if unreachable."""
    conn = UnixHTTPConnection(path, timeout)
    try:
        conn.request(method, url)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    except OSError as exc:
        return 0, str(exc)
    finally:
        conn.close()


def docker_api(sock: Path, method: str, url: str):
    """One Docker Engine API call; the decoded JSON answer (None if empty or gone: 404)."""
    status, body = unix_request(sock, method, url)
    if status == 404 and method == "DELETE":
        return None
    if not 200 <= status < 300:
        raise RigError(f"docker API {method} {url}: {status} {body[:300]}")
    return json.loads(body) if body.strip() else None


def docker_ping(sock: Path) -> bool:
    """True if a Docker engine answers on sock."""
    return unix_request(sock, "GET", "/_ping", timeout=2)[0] == 200


def http_status(url: str, timeout: float = 10) -> int:
    """Status of a GET on a plain-HTTP url, 0 if nothing answers."""
    host, _, rest = url.removeprefix("http://").partition("/")
    conn = http.client.HTTPConnection(host, timeout=timeout)
    try:
        conn.request("GET", "/" + rest)
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()
