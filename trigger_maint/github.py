"""GitHub releases and repository security advisories, cached on disk with ETags."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from .config import Settings
from .research import check_releases
from .web import Response, ServiceError, one_line, origin, request

API_VERSION = "2022-11-28"
CACHE_SECONDS = 600  # answers younger than this are used without asking GitHub again
MAX_PAGES = 10  # 1000 releases: far more than any upgrade needs to look back
LINK_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?([^";]+)"?')


class RateLimited(ServiceError):
    """GitHub's rate limit is used up."""


def token(s: Settings) -> str:
    """The API token: trigger.github_token, else the GITHUB_TOKEN environment variable."""
    return s.github_token or os.environ.get("GITHUB_TOKEN", "")


def next_link(header: str | None) -> str | None:
    """The rel="next" URL of a Link header, if any."""
    for url, rels in LINK_RE.findall(header or ""):
        if "next" in rels.split():
            return url
    return None


def _message(body: bytes) -> str:
    try:
        return one_line(str(json.loads(body).get("message", "")), 120)
    except (ValueError, AttributeError):
        return one_line(body[:120].decode("utf-8", "replace"), 120)


def _reset_time(value: str | None) -> str:
    """"; it resets at <UTC time>" for an X-RateLimit-Reset header, "" when unreadable."""
    try:
        at = datetime.fromtimestamp(int(value or ""), UTC)
    except (ValueError, OverflowError, OSError):
        return ""
    return f"; it resets at {at:%Y-%m-%d %H:%M:%S} UTC"


def error_for(resp: Response, has_token: bool) -> ServiceError:
    """One clear line for a GitHub answer other than 200/304."""
    h = resp.headers
    if resp.status in (403, 429) and h.get("x-ratelimit-remaining") == "0":
        reset = _reset_time(h.get("x-ratelimit-reset"))
        hint = "" if has_token else "; set GITHUB_TOKEN for a higher limit"
        limit = h.get("x-ratelimit-limit") or ""
        limit = f" ({limit} requests/hour)" if limit.isdigit() else ""
        return RateLimited(f"GitHub: API rate limit exceeded{limit}{reset}{hint}")
    if resp.status in (403, 429) and h.get("retry-after"):
        return RateLimited(
            f"GitHub: secondary rate limit hit; retry after {one_line(h['retry-after'], 40)} s")
    if resp.status == 401:
        return ServiceError(f"GitHub: the token was rejected (401 {_message(resp.body)})")
    detail = _message(resp.body)
    return ServiceError(f"GitHub: HTTP {resp.status} for {resp.url}"
                        + (f" ({detail})" if detail else ""))


class Cache:
    """One JSON file per URL under `folder`: etag, when fetched, body and next page."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, url: str) -> Path:
        return self.folder / (hashlib.sha256(url.encode()).hexdigest()[:32] + ".json")

    def load(self, url: str) -> dict | None:
        """The cached entry for `url`; None when missing, unreadable or of another shape."""
        try:
            entry = json.loads(self.path(url).read_text())
        except (OSError, ValueError):
            return None
        return entry if usable_entry(entry, url) else None

    def save(self, entry: dict) -> None:
        """Write atomically (temporary name, then rename), private to the user; a cache
        that cannot be written is only a cache: the failure is ignored."""
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".json")
        except OSError:
            return
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(entry, out)
            os.replace(tmp, self.path(entry["url"]))
        except OSError:
            Path(tmp).unlink(missing_ok=True)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def usable_entry(entry, url: str) -> bool:
    """Whether a cache entry read from disk has the shape `Cache.save` wrote for `url`."""
    return (isinstance(entry, dict) and entry.get("url") == url
            and isinstance(entry.get("body"), list)
            and all(isinstance(item, dict) for item in entry["body"])
            and isinstance(entry.get("fetched_at", 0), int | float)
            and not isinstance(entry.get("fetched_at", 0), bool)
            and isinstance(entry.get("etag", ""), str)
            and isinstance(entry.get("next"), str | None))


class GitHub:
    """The releases and advisories of `settings.github_repo`, from `settings.github_api`."""

    def __init__(self, s: Settings, clock=time.time):
        self.base = s.github_api.rstrip("/")
        self.repo = s.github_repo
        self.token = token(s)
        self.timeout = s.http_timeout
        self.cache = Cache(Path(s.local_path("cache_dir")) / "github")
        self.clock = clock

    def releases(self, stop=None) -> list[dict]:
        """Releases, newest first; paging ends early once `stop(page)` is true. Each page is
        checked to be a list of releases (ServiceError otherwise) before `stop` sees it."""

        def checked(page: list[dict]) -> bool:
            check_releases(page)
            return bool(stop and stop(page))

        return self.pages(f"/repos/{self.repo}/releases?per_page=100", checked)

    def advisories(self) -> list[dict]:
        """The repository's published security advisories."""
        return self.pages(f"/repos/{self.repo}/security-advisories?state=published&per_page=100")

    def pages(self, path: str, stop=None) -> list[dict]:
        """Every item of a paginated list (following Link: rel="next")."""
        url, items = self.base + path, []
        for _ in range(MAX_PAGES):
            page, url = self.page(url)
            items.extend(page)
            if stop and stop(page) or not url:
                break
            if origin(url) != origin(self.base):
                raise ServiceError(f"GitHub: the next page is on {origin(url)}, not on "
                                   f"{origin(self.base)}; refusing to follow it")
        return items

    def page(self, url: str) -> tuple[list[dict], str | None]:
        """One page of a list and the next page's URL: from the cache while fresh, else
        asked for with If-None-Match (a 304 renews the cached copy)."""
        entry = self.cache.load(url)
        now = self.clock()
        if entry and 0 <= now - entry.get("fetched_at", 0) < CACHE_SECONDS:
            return entry["body"], entry.get("next")
        headers = {"Accept": "application/vnd.github+json", "User-Agent": "trigger-maint",
                   "X-GitHub-Api-Version": API_VERSION}
        if entry and entry.get("etag"):
            headers["If-None-Match"] = entry["etag"]
        secret = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        resp = request(url, what="GitHub", timeout=self.timeout, headers=headers,
                       secret_headers=secret)
        if resp.status == 304 and entry:
            entry["fetched_at"] = now
            self.cache.save(entry)
            return entry["body"], entry.get("next")
        if resp.status != 200:
            raise error_for(resp, bool(self.token))
        try:
            body = json.loads(resp.body)
        except ValueError as exc:
            raise ServiceError(f"GitHub: malformed answer for {url} (not JSON: {exc})") from None
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise ServiceError(f"GitHub: malformed answer for {url} (expected a list of "
                               "objects)")
        entry = {"url": url, "etag": resp.headers.get("etag", ""), "fetched_at": now,
                 "body": body, "next": next_link(resp.headers.get("link"))}
        self.cache.save(entry)
        return body, entry["next"]
