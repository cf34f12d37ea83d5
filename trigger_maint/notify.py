"""The optional webhook: a maintain run's result POSTed as generic JSON or Slack-style text.

A webhook that fails is reported as a warning; it never changes the run's exit code.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from . import checklist as cl
from .checklist import Checklist
from .config import Settings
from .maintaining import MaintainRun
from .web import one_line, origin, within

TIMEOUT = 10  # seconds; a slow receiver must not hold up the maintenance


def wanted(settings: Settings, run: MaintainRun) -> bool:
    """Whether this run is reported: configured, not a dry run, and matching `webhook_on`."""
    if not settings.webhook_url or run.policy.dry_run:
        return False
    if settings.webhook_on == "always" or run.exit_code != 0:
        return True
    return settings.webhook_on == "change" and bool(cl.changed(run))


def payload(run: MaintainRun, checklist: Checklist, files: dict, fmt: str) -> dict:
    """The request body: the history entry plus the checklist (json), or Slack's {"text"}."""
    if fmt == "slack":
        head = "OK" if run.exit_code == 0 else f"exit code {run.exit_code}"
        boxes = "\n".join(f"{':white_check_mark:' if i.ticked else ':x:'} {i.text}"
                          + (f" ({i.note})" if i.note else "") for i in checklist.items)
        return {"text": f"*trigger-maint maintain {run.host}: {head}*\n"
                        f"```\n{cl.summary_block(checklist)}\n```\n{boxes}"}
    return {
        "event": "trigger-maint.maintain",
        **cl.history_entry(run, checklist, files),
        "checklist": [{"key": i.key, "text": i.text, "ticked": i.ticked, "note": i.note}
                      for i in checklist.items],
        "summary": cl.summary_block(checklist),
    }


def where(url: str) -> str:
    """The receiver for messages: scheme, host and port only (paths and users hold secrets)."""
    return origin(url)


def scheme_of(url: str) -> str:
    """The URL's scheme; "" when it cannot be read."""
    try:
        return urlsplit(url).scheme
    except ValueError:
        return ""


def scrub(text: str, url: str) -> str:
    """`text` on one line without any part of `url` beyond scheme://host[:port]."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return one_line(text.replace(url, "[hidden]"))
    for secret in (url, parts.netloc.rpartition("@")[0], parts.query, parts.path):
        if secret and secret != "/":
            text = text.replace(secret, "[hidden]")
    return one_line(text)


def send(url: str, body: dict, timeout: float | None = None) -> None:
    """POST `body` as JSON; OSError with one line when the receiver does not take it.

    One deadline (TIMEOUT unless given) covers connecting, sending and the whole answer.
    """
    limit = TIMEOUT if timeout is None else timeout
    if scheme_of(url) not in ("https", "http"):
        raise OSError("not an http(s) URL")
    data = json.dumps(body, default=str).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "trigger-maint"})
    try:
        within(limit, lambda: _post(request, limit))
    except urllib.error.HTTPError as exc:
        raise OSError(f"HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise OSError(f"no answer within {limit:g} s") from None
        reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
        raise OSError(scrub(reason, url) or type(exc.reason).__name__) from None
    except TimeoutError:
        raise OSError(f"no answer within {limit:g} s") from None
    except http.client.HTTPException as exc:
        raise OSError(f"broken answer ({type(exc).__name__})") from None
    except OSError as exc:
        raise OSError(scrub(exc.strerror or str(exc), url) or type(exc).__name__) from None
    except ValueError:
        raise OSError("not a usable URL") from None


def _post(request: urllib.request.Request, timeout: float) -> None:
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        answer.read()


def notify(settings: Settings, run: MaintainRun, checklist: Checklist, files: dict) -> str:
    """Call the webhook when wanted; what happened, in a few words ("" when not wanted).

    Any failure is returned as text starting with "failed", never raised.
    """
    if not wanted(settings, run):
        return ""
    try:
        send(settings.webhook_url,
             payload(run, checklist, files, settings.webhook_format))
    except OSError as exc:
        return f"failed: webhook {where(settings.webhook_url)}: {exc}"
    return f"sent to {where(settings.webhook_url)}"
