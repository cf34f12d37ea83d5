"""Run one rendered script on a host: one exec channel, streamed progress, one JSON result."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field

import paramiko
from fabric import Connection
from invoke.exceptions import CommandTimedOut

from .config import Settings
from .errors import KINDS, ConnectError, OperationError
from .layout import script_context
from .render import render

MARK = "@@trigger-maint-result@@"


class HostPrefixedStream:
    """A text stream that writes each complete line as `host | line` to `target`."""

    def __init__(self, host: str, target=None):
        self.host = host
        self.target = target or sys.stderr
        self.pending = ""
        self.lock = threading.Lock()
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        with self.lock:
            self.pending += text
            *complete, self.pending = self.pending.split("\n")
            for line in complete:
                self.lines.append(line)
                self.target.write(f"{self.host} | {line}\n")
            self.target.flush()
        return len(text)

    def flush(self) -> None:
        with self.lock:
            if self.pending:
                self.lines.append(self.pending)
                self.target.write(f"{self.host} | {self.pending}\n")
                self.pending = ""
            self.target.flush()


def heredoc(script: str) -> str:
    """One command running `script` in its own process group, the channel's stdin on fd 3."""
    marker = "TM_SCRIPT_" + secrets.token_hex(8)
    return f"setsid -w bash -s 3<&0 <<'{marker}'\n{script.rstrip()}\n{marker}\n"


def parse_result(stdout: str) -> dict | None:
    """The JSON object after the last result marker, or None when there is none."""
    start = stdout.rfind(MARK)
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(stdout[start + len(MARK):].lstrip())
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def host_label(connection: Connection) -> str:
    """How messages name a host: host, or host:port when the port is not 22."""
    port = getattr(connection, "port", 22)
    return connection.host if port == 22 else f"{connection.host}:{port}"


def apply_host_key_policy(connection: Connection, s: Settings) -> None:
    """Make Fabric check host keys: strict (known_hosts only), accept-new, or off."""
    client = connection.client
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
    if s.host_key_policy == "strict":
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    else:  # AutoAddPolicy saves new keys to the loaded file
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())


def connect_error(label: str, exc: BaseException, s: Settings) -> ConnectError:
    """One clear line for a failure to reach or trust a host."""
    if isinstance(exc, paramiko.BadHostKeyException):
        return ConnectError(
            f"{label}: host key does not match {s.known_hosts}; refusing to connect "
            "(a changed key can mean a man in the middle)")
    if isinstance(exc, paramiko.AuthenticationException):
        return ConnectError(f"{label}: authentication failed ({exc})")
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return ConnectError(
            f"{label}: unknown host key (not in {s.known_hosts}); add it with ssh-keyscan "
            "or use --host-key-policy accept-new")
    if isinstance(exc, socket.gaierror):
        return ConnectError(f"{label}: cannot resolve host name ({exc.strerror})")
    if isinstance(exc, TimeoutError | socket.timeout):
        return ConnectError(f"{label}: no answer within {s.connect_timeout} s")
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return ConnectError(f"{label}: cannot connect ({reason})")


@dataclass
class Session:
    """One host: its connection, settings, and what earlier phases of this run learned."""

    connection: Connection
    settings: Settings
    dry_run: bool = False
    json_output: bool = False
    results: dict = field(default_factory=dict)
    out: object = None

    def __post_init__(self):
        self.label = host_label(self.connection)
        self.connection.connect_timeout = self.settings.connect_timeout
        for key in ("banner_timeout", "auth_timeout"):
            self.connection.connect_kwargs.setdefault(key, self.settings.connect_timeout)
        apply_host_key_policy(self.connection, self.settings)

    def print(self, text: str = "") -> None:
        """Human output on stdout (kept off stdout under --json)."""
        stream = self.out or (sys.stderr if self.json_output else sys.stdout)
        stream.write(text + "\n")
        stream.flush()

    def script(self, template: str, **context) -> str:
        """The rendered script for `template`."""
        return render(template, self.settings.template_dir,
                      **script_context(self.settings), **context)

    def run(self, template: str, *, changes: bool = False, timeout: int | None = None,
            **context) -> dict | None:
        """Run `template` on the host and return its JSON result.

        Under dry-run every script is printed; scripts that change the host are not run
        (None is returned), read-only ones still run so the plan is real.
        """
        script = self.script(template, **context)
        if self.dry_run:
            kind = "would run, changes the host" if changes else "read-only, runs"
            sys.stdout.write(f"# ---- {self.label}: {template} ({kind}) ----\n{script}\n")
            sys.stdout.flush()
            if changes:
                return None
        return self.execute(template, script, timeout)

    def execute(self, template: str, script: str, timeout: int | None = None) -> dict:
        """Send `script` in one exec channel; raise the error it reports, if any."""
        progress = HostPrefixedStream(self.label)
        try:
            with self.interrupt_closes_connection():
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
                f"{self.label}: {template} did not finish within {exc.timeout} s") from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise connect_error(self.label, exc, self.settings) from exc
        finally:
            progress.flush()
        data = parse_result(result.stdout)
        if data is None:
            tail = next((line for line in reversed(progress.lines) if line.strip()), "")
            raise OperationError(
                f"{self.label}: {template} ended without a result (exit {result.exited})"
                + (f": {tail.strip()}" if tail else ""))
        if "error" in data:
            exc = KINDS.get(data.get("kind"), OperationError)(f"{self.label}: {data['error']}")
            exc.result = data
            raise exc
        return data

    @contextlib.contextmanager
    def interrupt_closes_connection(self):
        """Ctrl-C closes the connection at once, so the script sees its stdin end and stops.

        Without a pty Invoke would only re-raise after the remote command had finished."""
        if threading.current_thread() is not threading.main_thread():
            yield  # fleet threads: the fleet runner closes its group on Ctrl-C
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
        """Close the connection; a running script sees its stdin end and stops."""
        try:
            self.connection.close()
        except Exception:  # closing is best effort after a failure
            pass
