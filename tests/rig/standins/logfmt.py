"""Log lines in each real service's own format, and the retry loop that logs while a stand-in
waits for a dependency. Copied into every stand-in image; the rig imports it too."""

import datetime
import http.client
import json
import os
import socket
import time
import urllib.parse

ELIXIR = {"error": "error", "warn": "warning", "info": "info", "debug": "debug"}
CLICKHOUSE = {"error": "Error", "warn": "Warning", "info": "Information", "debug": "Debug"}
REDIS = {"error": "#", "warn": "#", "info": "*", "debug": "."}
POSTGRES = {"error": "ERROR", "warn": "WARNING", "info": "LOG", "debug": "DEBUG1"}
LOGRUS = {"error": "error", "warn": "warning", "info": "info", "debug": "debug"}
JSON_SERVICES = {"webapp", "supervisor", "coordinator", "docker-provider"}


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def iso(t: datetime.datetime) -> str:
    """2026-12-03T09:00:00.123Z, as JavaScript's Date.toISOString()."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def json_line(name: str, level: str, message: str, **fields) -> str:
    """Trigger.dev's structured logger: one JSON object per line."""
    return json.dumps({"timestamp": iso(now()), "name": name, "message": message,
                       "level": level, **fields}, separators=(",", ":"))


def elixir_line(level: str, message: str) -> str:
    """Elixir Logger's default console format (ElectricSQL)."""
    t = now()
    return f"{t:%H:%M:%S}.{t.microsecond // 1000:03d} [{ELIXIR[level]}] {message}"


def clickhouse_line(level: str, message: str, source: str = "Application") -> str:
    t = now()
    return f"{t:%Y.%m.%d %H:%M:%S}.{t.microsecond:06d} [ 1 ] {{}} <{CLICKHOUSE[level]}> " \
           f"{source}: {message}"


def postgres_line(level: str, message: str) -> str:
    t = now()
    return f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond // 1000:03d} UTC [1] {POSTGRES[level]}:  " \
           f"{message}"


def redis_line(level: str, message: str) -> str:
    t = now()
    return f"1:M {t:%d %b %Y %H:%M:%S}.{t.microsecond // 1000:03d} {REDIS[level]} {message}"


def logrus_line(level: str, message: str) -> str:
    """Go logrus text format (the registry)."""
    return f'time="{now():%Y-%m-%dT%H:%M:%S.%f}Z" level={LOGRUS[level]} msg="{message}" ' \
           f"go.version=go1.20.8"


def tracing_line(level: str, message: str, target: str = "s2_lite") -> str:
    """Rust tracing's default format (s2)."""
    return f"{now():%Y-%m-%dT%H:%M:%S.%f}Z {level.upper():>5} {target}: {message}"


def haproxy_line(level: str, message: str) -> str:
    tag = {"error": "ALERT", "warn": "WARNING", "info": "NOTICE", "debug": "NOTICE"}[level]
    return f"[{tag}]{' ' * (9 - len(tag))}({os.getpid()}) : {message}"


def bitnami_line(level: str, message: str, app: str = "minio") -> str:
    t = now()
    return f"{app} {t:%H:%M:%S}.{t.microsecond // 10000:02d} {level.upper():<5} ==> {message}"


def line_for(service: str, level: str, message: str) -> str:
    """One line as the named compose service's real program would log it."""
    if service in JSON_SERVICES:
        return json_line(service, level, message)
    formats = {"electric": elixir_line, "clickhouse": clickhouse_line,
               "postgres": postgres_line, "redis": redis_line, "registry": logrus_line,
               "s2": tracing_line, "docker-proxy": haproxy_line, "minio": bitnami_line}
    if service in formats:
        return formats[service](level, message)
    return f"{iso(now())} {level.upper()} {message}"


def emit(*lines: str) -> None:
    for line in lines:
        print(line, flush=True)


def etc_hosts(name: str) -> str | None:
    """The loopback address /etc/hosts gives name (never asks DNS)."""
    try:
        entries = open("/etc/hosts").read().splitlines()
    except OSError:
        return None
    for entry in entries:
        words = entry.split("#")[0].split()
        if len(words) > 1 and name in words[1:] and words[0].startswith("127."):
            return words[0]
    return None


def own_address(service: str) -> str:
    """Where this stand-in listens: RIG_ADDR, else its service name's address, else 127.0.0.1."""
    return os.environ.get("RIG_ADDR") or etc_hosts(service) or "127.0.0.1"


def loopback(host: str) -> str | None:
    """host as a loopback address (literal or from /etc/hosts); None if not on loopback."""
    if host.startswith("127."):
        return host
    return etc_hosts(host)


def tcp_error(host: str, port: int) -> str | None:
    """None if host:port accepts a connection, else the error as Node.js words it."""
    address = loopback(host)
    if not address:
        return f"getaddrinfo ENOTFOUND {host}"
    try:
        socket.create_connection((address, port), timeout=2).close()
        return None
    except OSError as exc:
        code = "ECONNREFUSED" if isinstance(exc, ConnectionRefusedError) else "ETIMEDOUT"
        return f"connect {code} {address}:{port}"


def redis_error(host: str, port: int) -> str | None:
    """None if Redis at host:port is ready, else the error a client sees. A Redis up for less
    than a second counts as still loading its dataset, as a real one with real data does."""
    error = tcp_error(host, port)
    if error:
        return error
    try:
        with socket.create_connection((loopback(host), port), timeout=2) as sock:
            sock.sendall(b"INFO server\r\n")
            info = sock.recv(65536).decode(errors="replace")
    except OSError as exc:
        return f"read {exc.__class__.__name__.upper()}"
    if "\r\nuptime_in_seconds:0\r\n" in info:
        return "LOADING Redis is loading the dataset in memory"
    return None


def http_error(url: str) -> str | None:
    """None if url answers 2xx, else why not (Node.js words)."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    error = tcp_error(parts.hostname or "", port)
    if error:
        return error
    conn = http.client.HTTPConnection(loopback(parts.hostname), port, timeout=5)
    try:
        conn.request("GET", parts.path or "/")
        status = conn.getresponse().status
        return None if 200 <= status < 300 else f"Request failed with status code {status}"
    except OSError as exc:
        return f"socket hang up ({exc})"
    finally:
        conn.close()


def retry(check, on_error, interval: float = 1.0, limit: float = 600) -> bool:
    """Call check() until it returns None, on_error(result) after each failure; True if it
    succeeded within limit seconds."""
    deadline = time.monotonic() + limit
    while True:
        error = check()
        if error is None:
            return True
        on_error(error)
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)

