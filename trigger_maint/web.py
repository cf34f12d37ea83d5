"""HTTP over urllib for GitHub, the image registry and the webhook: any status back, one
overall deadline per request, one-line errors."""

from __future__ import annotations

import http.client
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from .errors import ConnectError

T = TypeVar("T")


class ServiceError(ConnectError):
    """GitHub or the image registry could not be reached, or gave an unusable answer."""


@dataclass(frozen=True)
class Response:
    """One HTTP answer, whatever its status."""

    url: str
    status: int
    headers: dict  # lower-case header name -> value
    body: bytes


def origin(url: str) -> str:
    """scheme://host[:port] of `url`: what a message may show (a path, query or user part
    can hold a token)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(an invalid URL)"
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    scheme = parts.scheme if parts.scheme.isalnum() else "?"
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def one_line(text: str, limit: int = 160) -> str:
    """`text` on one line (whitespace runs collapsed), at most `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def within(seconds: float, work: Callable[[], T]) -> T:
    """The result of `work()`, or TimeoutError once `seconds` have passed, however slowly an
    answer trickles in (socket timeouts only bound each single read). `work` runs in a
    daemon thread that is left behind on a timeout; its exceptions are raised here."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="trigger-maint-http", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def request(url: str, *, what: str, timeout: float, method: str = "GET",
            headers: dict | None = None, secret_headers: dict | None = None) -> Response:
    """Send one request and read the whole answer within `timeout` seconds; errors at the
    network level become a ServiceError naming `what`.

    `secret_headers` (credentials) are not repeated when the server redirects elsewhere.
    """
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        raise ServiceError(f"{what}: unusable URL {one_line(url, 120)}") from None
    if scheme not in ("https", "http"):
        raise ServiceError(f"{what}: not an http(s) URL: {origin(url)}")
    req = urllib.request.Request(url, method=method, headers=headers or {})
    for name, value in (secret_headers or {}).items():
        req.add_unredirected_header(name, value)
    try:
        return within(timeout, lambda: _exchange(req, timeout))
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise ServiceError(f"{what}: no answer within {timeout:g} s ({url})") from None
        reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
        raise ServiceError(f"{what}: cannot connect to {url} ({one_line(reason)})") from None
    except TimeoutError:  # a read that timed out, or the deadline as a whole
        raise ServiceError(f"{what}: no answer within {timeout:g} s ({url})") from None
    except (http.client.HTTPException, OSError) as exc:
        raise ServiceError(f"{what}: connection to {url} broke "
                           f"({one_line(str(exc)) or type(exc).__name__})") from None
    except ValueError as exc:  # a URL urllib cannot use (bad port, odd host name)
        raise ServiceError(f"{what}: unusable URL {origin(url)} ({one_line(str(exc))})") \
            from None


def _exchange(req: urllib.request.Request, timeout: float) -> Response:
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return Response(answer.geturl(), answer.status, _headers(answer.headers),
                            answer.read())
    except urllib.error.HTTPError as answer:  # 3xx (304) / 4xx / 5xx still carry an answer
        with answer:
            return Response(req.full_url, answer.code, _headers(answer.headers),
                            _read(answer))


def _read(answer) -> bytes:
    try:
        return answer.read()
    except (http.client.HTTPException, ConnectionError):
        return b""


def _headers(message) -> dict:
    return {name.lower(): value for name, value in (message or {}).items()}
