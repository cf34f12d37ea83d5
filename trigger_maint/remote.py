"""Run one rendered script on a host: one exec channel, streamed progress, one JSON result."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

import paramiko
from fabric import Connection
from invoke.exceptions import CommandTimedOut, ThreadException

from .config import Settings
from .errors import KINDS, ConnectError, OperationError
from .scripts.base import ALIVE, ResultError, Script, new_marker, parse_result

# accept-new saves each new host key by rewriting known_hosts from what the connection had
# loaded; connecting one host at a time (after re-reading the file) keeps every key.
KNOWN_HOSTS_LOCK = threading.Lock()


class LinkLost(ConnectError):
    """The host stopped answering in the middle of a script (the link is taken for dead)."""


class HostPrefixedStream:
    """A text stream that writes each complete line as `host | line` to `target`.

    Heartbeat lines are not shown; every write counts as a sign of life (`last_activity`)."""

    def __init__(self, host: str, target=None):
        self.host = host
        self.target = target or sys.stderr
        self.pending = ""
        self.lock = threading.Lock()
        self.lines: list[str] = []
        self.last_activity = time.monotonic()

    def write(self, text: str) -> int:
        with self.lock:
            self.last_activity = time.monotonic()
            self.pending += text
            *complete, self.pending = self.pending.split("\n")
            for line in complete:
                self._show(line)
            self.target.flush()
        return len(text)

    def _show(self, line: str) -> None:
        if line == ALIVE:
            return
        self.lines.append(line)
        self.target.write(f"{self.host} | {line}\n")

    def flush(self) -> None:
        with self.lock:
            if self.pending:
                self._show(self.pending)
                self.pending = ""
            self.target.flush()


def heredoc(script: str) -> str:
    """One command running `script` in its own process group, the channel's stdin on fd 3."""
    marker = "TM_SCRIPT_" + secrets.token_hex(8)
    return f"setsid -w bash -s 3<&0 <<'{marker}'\n{script.rstrip()}\n{marker}\n"


def host_label(connection: Connection) -> str:
    """How messages name a host: host, or host:port when the port is not 22."""
    port = getattr(connection, "port", 22)
    return connection.host if port == 22 else f"{connection.host}:{port}"


def hops(connection: Connection) -> list[Connection]:
    """The SSH connections that reaching `connection` opens, in the order they open: its
    ProxyJump gateways (each a Connection of its own), the outermost first, then itself. A
    gateway given as a ProxyCommand string is a local command, not a hop of ours."""
    chain = []
    hop = connection
    while isinstance(hop, Connection):
        chain.append(hop)
        hop = hop.gateway
    return chain[::-1]


def _check_host_keys(client: paramiko.SSHClient, s: Settings) -> None:
    if s.host_key_policy == "off":
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        return
    path = s.local_path("known_hosts")
    if s.host_key_policy == "accept-new" and not os.path.exists(path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, "a"):
            pass
    if os.path.exists(path):
        client.load_host_keys(path)
    policy = paramiko.RejectPolicy() if s.host_key_policy == "strict" else \
        paramiko.AutoAddPolicy()  # AutoAddPolicy saves new keys to the loaded file
    client.set_missing_host_key_policy(policy)


def apply_host_key_policy(connection: Connection, s: Settings) -> None:
    """Make Fabric check host keys on this connection and on every gateway hop before it:
    strict (known_hosts only), accept-new, or off."""
    for hop in hops(connection):
        _check_host_keys(hop.client, s)


def hop_label(connection: Connection, hop: Connection) -> str:
    """How messages name `hop` on the way to `connection`: the host itself, or the host
    followed by the ProxyJump gateway that failed."""
    label = host_label(connection)
    return label if hop is connection else f"{label}: ProxyJump gateway {host_label(hop)}"


def proxy_command(connection: Connection) -> str:
    """The ProxyCommand Fabric runs locally to reach `connection` (ssh_config's, or a
    string gateway), or "" when there is none."""
    gateway = connection.gateway
    return gateway if isinstance(gateway, str) else ""


def connect_error(label: str, exc: BaseException, s: Settings, via: str = "",
                  gateway: str = "") -> ConnectError:
    """One clear line for a failure to reach or trust a host (`via`: the ProxyCommand the
    connection went through, named when the failure is not about a host key; `gateway`: the
    ProxyJump gateway it went through)."""
    if isinstance(exc, paramiko.BadHostKeyException):
        return ConnectError(
            f"{label}: host key does not match {s.known_hosts}; refusing to connect "
            "(a changed key can mean a man in the middle)")
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return ConnectError(
            f"{label}: unknown host key (not in {s.known_hosts}); add it with "
            "`ssh-keyscan`, or set trigger.host_key_policy: accept-new "
            "(FABRIC_TRIGGER_HOST_KEY_POLICY=accept-new) to record it on first use")
    through = f" through ProxyCommand `{via}`" if via else ""
    if isinstance(exc, paramiko.AuthenticationException):
        return ConnectError(f"{label}: authentication failed{through} ({exc})")
    if isinstance(exc, paramiko.ChannelException):
        name = f" {gateway}" if gateway else ""
        return ConnectError(f"{label}: the ProxyJump gateway{name} would not forward the "
                            f"connection ({exc.text or exc.code}; its sshd needs "
                            "AllowTcpForwarding)")
    if isinstance(exc, socket.gaierror):
        return ConnectError(f"{label}: cannot resolve host name{through} ({exc.strerror})")
    if isinstance(exc, TimeoutError | socket.timeout):
        return ConnectError(f"{label}: no answer within {s.connect_timeout} s{through}")
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return ConnectError(f"{label}: cannot connect{through} ({reason})")


@dataclass
class Session:
    """One host: its connection, settings, what it has measured and what this run did.

    `facts` holds what read-only scripts measured; any script that changes the host empties
    it, so no later phase reads a stale fact. `outcomes` holds what the phases of this run
    did (research, the backup made, the update), which later phases build on."""

    connection: Connection
    settings: Settings
    dry_run: bool = False
    json_output: bool = False
    show_scripts: bool = False
    facts: dict = field(default_factory=dict)
    outcomes: dict = field(default_factory=dict)
    out: object = None

    def __post_init__(self):
        self.label = host_label(self.connection)
        # trigger.connect_timeout is the limit; Fabric's -t arrives as connect_kwargs.timeout
        # (every hop: a ProxyJump gateway is a Connection of its own, made from the config)
        for hop in hops(self.connection):
            hop.connect_kwargs.pop("timeout", None)
            hop.connect_timeout = self.settings.connect_timeout
            for key in ("banner_timeout", "auth_timeout"):
                hop.connect_kwargs.setdefault(key, self.settings.connect_timeout)
        apply_host_key_policy(self.connection, self.settings)

    def print(self, text: str = "") -> None:
        """Human output on stdout (on stderr under --json: stdout then holds JSON only)."""
        stream = self.out or (sys.stderr if self.json_output else sys.stdout)
        stream.write(text + "\n")
        stream.flush()

    def note(self, text: str) -> None:
        """A progress line on stderr, named by host."""
        sys.stderr.write(f"{self.label} | {text}\n")
        sys.stderr.flush()

    def render(self, script: Script, inputs, marker: str = "@@dry-run@@") -> str:
        """The text of `script` for `inputs`."""
        return script.render(inputs, marker, heartbeat=self.heartbeat,
                             template_dir=self.settings.template_dir)

    @property
    def heartbeat(self) -> int:
        """Seconds between a script's heartbeats: several within the link timeout."""
        return max(1, self.settings.link_timeout // 4)

    def run(self, script: Script, inputs, timeout: int | None = None):
        """Run `script` with `inputs`; its parsed result (None for a change under --dry-run).

        Under --dry-run read-only scripts still run (the plan is made from real facts) and
        changing ones are not; with --scripts every script is printed to stderr."""
        if self.dry_run and self.show_scripts:
            kind = "would run, changes the host" if script.changes else "read-only, runs"
            sys.stderr.write(f"# ---- {self.label}: {script.template} ({kind}) ----\n"
                             f"{self.render(script, inputs)}\n")
            sys.stderr.flush()
        if self.dry_run and script.changes:
            return None
        marker = new_marker()
        text = self.render(script, inputs, marker)
        try:
            raw = self.execute(script.template, text, marker, script.requires, timeout)
        finally:
            if script.changes:
                self.facts.clear()
        return script.parse(raw, inputs)

    def open(self) -> None:
        """Connect (when not connected yet) and start SSH keepalives.

        Hop by hop, each ProxyJump gateway first, so that a failure names the hop that failed
        (and nothing reaches the target through a gateway that was not trusted)."""
        if self.connection.is_connected:
            return
        accept_new = self.settings.host_key_policy == "accept-new"
        with KNOWN_HOSTS_LOCK if accept_new else contextlib.nullcontext():
            for hop in hops(self.connection):
                if hop.is_connected:
                    continue
                if accept_new:  # another thread (or hop) may have recorded a key since
                    _check_host_keys(hop.client, self.settings)
                try:
                    hop.open()
                except (paramiko.SSHException, OSError, EOFError) as exc:
                    gateway = host_label(hop.gateway) if isinstance(hop.gateway, Connection) \
                        else ""
                    raise connect_error(hop_label(self.connection, hop), exc, self.settings,
                                        proxy_command(hop), gateway) from exc
                hop.transport.set_keepalive(self.settings.keepalive_interval)

    def execute(self, name: str, script: str, marker: str, requires: tuple[str, ...] = (),
                timeout: int | None = None) -> dict:
        """Send `script` in one exec channel; raise the error it reports, if any."""
        self.open()
        progress = HostPrefixedStream(self.label, self.out if self.out else None)
        lost = threading.Event()
        try:
            with self.interrupt_closes_connection(), self.watch_link(progress, lost):
                result = self.connection.run(
                    heredoc(script), hide="out", warn=True, in_stream=False, pty=False,
                    err_stream=progress, timeout=timeout or self.settings.command_timeout,
                    encoding="utf-8")
        except KeyboardInterrupt:
            self.close()
            raise
        except CommandTimedOut as exc:
            self.close()
            raise OperationError(
                f"{self.label}: {name} did not finish within {exc.timeout} s") from exc
        except Exception as exc:
            if lost.is_set():
                raise self.link_lost(name) from exc
            if isinstance(exc, paramiko.SSHException | OSError | EOFError | ThreadException):
                raise connect_error(self.label, exc, self.settings) from exc
            raise
        finally:
            progress.flush()
        if lost.is_set():
            raise self.link_lost(name)
        try:
            data = parse_result(result.stdout, marker, requires)
        except ResultError as exc:
            tail = next((line for line in reversed(progress.lines) if line.strip()), "")
            raise OperationError(
                f"{self.label}: {name} ended without a valid result ({exc}; exit "
                f"{result.exited})" + (f": {tail.strip()}" if tail else "")) from None
        if "error" in data:
            error = KINDS.get(data.get("kind"), OperationError)(f"{self.label}: {data['error']}")
            error.result = data
            raise error
        return data

    def link_lost(self, name: str) -> LinkLost:
        return LinkLost(f"{self.label}: no sign of life from the host for "
                        f"{self.settings.link_timeout} s during {name}; the link is taken "
                        "for dead")

    @contextlib.contextmanager
    def watch_link(self, progress: HostPrefixedStream, lost: threading.Event):
        """Close the connection when the script's heartbeat stops for link_timeout: a link
        that went silent (not closed) must not hold the run until the command's limit."""
        done = threading.Event()

        def watch():
            while not done.wait(1):
                if time.monotonic() - progress.last_activity > self.settings.link_timeout:
                    lost.set()
                    self.close()
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()

    @contextlib.contextmanager
    def interrupt_closes_connection(self):
        """Ctrl-C closes the connection at once, so the script sees its stdin end and stops.

        Without a pty Invoke would only re-raise after the remote command had finished."""
        if threading.current_thread() is not threading.main_thread():
            yield  # fleet threads: the fleet runner closes its connections on Ctrl-C
            return

        def interrupted(signum, frame):
            self.close()
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, interrupted)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def close(self) -> None:
        """Close the connection and its gateways; a running script sees its stdin end and
        stops (a gateway whose link went silent is not reused either)."""
        for hop in reversed(hops(self.connection)):
            try:
                hop.close()
            except Exception:  # closing is best effort after a failure
                pass
