"""HTTP over urllib for GitHub and the image registry: any status back, one-line errors."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass

from .errors import ConnectError


class ServiceError(ConnectError):
    """GitHub or the image registry could not be reached, or gave an unusable answer."""


@dataclass(frozen=True)
class Response:
    """One HTTP answer, whatever its status."""

    url: str
    status: int
    headers: dict  # lower-case header name -> value
    body: bytes


def request(url: str, *, what: str, timeout: float, method: str = "GET",
            headers: dict | None = None, secret_headers: dict | None = None) -> Response:
    """Send one request; errors at the network level become a ServiceError naming `what`.

    `secret_headers` (credentials) are not repeated when the server redirects elsewhere.
    """
    req = urllib.request.Request(url, method=method, headers=headers or {})
    for name, value in (secret_headers or {}).items():
        req.add_unredirected_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return Response(answer.geturl(), answer.status, _headers(answer.headers),
                            answer.read())
    except urllib.error.HTTPError as answer:  # 3xx (304) / 4xx / 5xx still carry an answer
        with answer:
            body = _read(answer, what, timeout)
            return Response(url, answer.code, _headers(answer.headers), body)
    except TimeoutError:
        raise ServiceError(f"{what}: no answer within {timeout:g} s ({url})") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise ServiceError(f"{what}: no answer within {timeout:g} s ({url})") from None
        reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
        raise ServiceError(f"{what}: cannot connect to {url} ({reason})") from None
    except (http.client.HTTPException, ConnectionError) as exc:
        raise ServiceError(f"{what}: connection to {url} broke ({exc or type(exc).__name__})") \
            from None


def _read(answer, what: str, timeout: float) -> bytes:
    try:
        return answer.read()
    except TimeoutError:
        raise ServiceError(f"{what}: no answer within {timeout:g} s ({answer.url})") from None
    except (http.client.HTTPException, ConnectionError):
        return b""


def _headers(message) -> dict:
    return {name.lower(): value for name, value in (message or {}).items()}
