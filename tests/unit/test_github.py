"""The GitHub client: pagination, ETag cache, token, one-line errors; and its transport."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from trigger_maint import github
from trigger_maint.config import settings
from trigger_maint.errors import ConnectError
from trigger_maint.github import GitHub, RateLimited, next_link
from trigger_maint.research import tag_version as github_tag_version
from trigger_maint.web import Response, ServiceError, request

DATA = Path(__file__).parent / "data"
RELEASES = json.loads((DATA / "github_releases.json").read_text())
ADVISORIES = json.loads((DATA / "github_advisories.json").read_text())
API = "https://api.github.com"
BASE = f"{API}/repos/triggerdotdev/trigger.dev"
PAGE2 = f"{API}/repositories/375372624/releases?per_page=100&page=2"
LINK = (f'<{PAGE2}>; rel="next", '
        f'<{API}/repositories/375372624/releases?per_page=100&page=3>; rel="last"')


class Transport:
    """Stands in for web.request: answers by URL and records every request."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, url, *, what, timeout, headers=None, secret_headers=None, method="GET"):
        self.calls.append((url, dict(headers or {}), dict(secret_headers or {})))
        status, head, body = self.answers[url]
        if callable(body):
            return body(url, headers)
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return Response(url, status, {k.lower(): v for k, v in head.items()}, raw)


@pytest.fixture
def clock():
    return [1_780_000_000.0]


@pytest.fixture
def client(tmp_path, clock, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)

    def make(answers, **overrides):
        transport = Transport(answers)
        monkeypatch.setattr(github, "request", transport)
        s = settings({"cache_dir": str(tmp_path / "cache"), **overrides})
        return GitHub(s, clock=lambda: clock[0]), transport

    return make


def test_next_link():
    assert next_link(LINK) == PAGE2
    assert next_link(f'<{API}/x?page=1>; rel="prev", <{API}/x?page=1>; rel="first"') is None
    assert next_link(None) is None


def test_pages_follow_link_and_stop_early(client):
    answers = {f"{BASE}/releases?per_page=100": (200, {"Link": LINK, "ETag": '"a1"'},
                                                 RELEASES[:6]),
               PAGE2: (200, {"ETag": '"a2"'}, RELEASES[6:])}
    gh, transport = client(answers)
    assert [r["id"] for r in gh.releases()] == [r["id"] for r in RELEASES]
    assert [call[0] for call in transport.calls] == [f"{BASE}/releases?per_page=100", PAGE2]
    headers = transport.calls[0][1]
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert transport.calls[0][2] == {}  # no token, no Authorization

    gh, transport = client(answers, cache_dir=str(Path(gh.cache.folder).parent / "other"))
    assert len(gh.releases(stop=lambda page: True)) == 6
    assert len(transport.calls) == 1


def test_cache_fresh_then_revalidated_with_etag(client, clock):
    url = f"{BASE}/security-advisories?state=published&per_page=100"
    gh, transport = client({url: (200, {"ETag": 'W/"e1"'}, ADVISORIES)})
    assert gh.advisories() == ADVISORIES
    clock[0] += github.CACHE_SECONDS - 1
    assert gh.advisories() == ADVISORIES
    assert len(transport.calls) == 1  # fresh: no request at all

    clock[0] += 2
    transport.answers[url] = (304, {"ETag": 'W/"e1"'}, b"")
    assert gh.advisories() == ADVISORIES
    assert transport.calls[-1][1]["If-None-Match"] == 'W/"e1"'
    assert len(transport.calls) == 2
    clock[0] += 1
    assert gh.advisories() == ADVISORIES  # the 304 renewed the cached copy
    assert len(transport.calls) == 2

    clock[0] += github.CACHE_SECONDS
    transport.answers[url] = (200, {"ETag": 'W/"e2"'}, ADVISORIES[:1])
    assert gh.advisories() == ADVISORIES[:1]
    cached = json.loads(gh.cache.path(url).read_text())
    assert cached["etag"] == 'W/"e2"' and cached["body"] == ADVISORIES[:1]
    assert oct(gh.cache.folder.stat().st_mode & 0o777) == "0o700"


def test_corrupt_cache_is_ignored(client):
    url = f"{BASE}/releases?per_page=100"
    gh, transport = client({url: (200, {}, RELEASES)})
    gh.cache.folder.mkdir(parents=True)
    gh.cache.path(url).write_text("{not json")
    assert len(gh.releases()) == len(RELEASES)
    assert len(transport.calls) == 1


def test_token_from_settings_or_environment(client, monkeypatch):
    url = f"{BASE}/releases?per_page=100"
    gh, transport = client({url: (200, {}, [])}, github_token="ghp_fromconfig")
    gh.releases()
    assert transport.calls[0][2] == {"Authorization": "Bearer ghp_fromconfig"}
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_fromenv")
    assert github.token(settings({})) == "ghp_fromenv"
    assert github.token(settings({"github_token": "x"})) == "x"


@pytest.mark.parametrize(("status", "headers", "body", "expected"), [
    (403, {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0",
           "X-RateLimit-Reset": "1780003600", "X-RateLimit-Resource": "core"},
     {"message": "API rate limit exceeded for 203.0.113.7. (But here's the good news: "
                 "Authenticated requests get a higher rate limit.)",
      "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"},
     "GitHub: API rate limit exceeded (60 requests/hour); it resets at 2026-05-28 21:26:40 UTC;"
     " set GITHUB_TOKEN for a higher limit"),
    (429, {"Retry-After": "60"}, {"message": "You have exceeded a secondary rate limit."},
     "GitHub: secondary rate limit hit; retry after 60 s"),
    (401, {}, {"message": "Bad credentials", "status": "401"},
     "GitHub: the token was rejected (401 Bad credentials)"),
    (404, {}, {"message": "Not Found", "status": "404"},
     f"GitHub: HTTP 404 for {BASE}/releases?per_page=100 (Not Found)"),
    (200, {}, b"<html>Unicorn!</html>",
     f"GitHub: malformed answer for {BASE}/releases?per_page=100 (not JSON: Expecting value:"),
    (200, {}, {"message": "Moved Permanently"},
     f"GitHub: malformed answer for {BASE}/releases?per_page=100 (expected a list of objects)"),
])
def test_errors_are_one_clear_line(client, status, headers, body, expected):
    url = f"{BASE}/releases?per_page=100"
    gh, _ = client({url: (status, headers, body)})
    with pytest.raises(ServiceError) as info:
        gh.releases()
    message = str(info.value)
    assert message.startswith(expected) and "\n" not in message
    assert isinstance(info.value, ConnectError) and info.value.exit_code == 3
    assert isinstance(info.value, RateLimited) == ("rate limit" in expected)
    assert not gh.cache.path(url).exists()


# The transport itself, against real loopback sockets.

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path == "/slow":
            self.server.release.wait(5)
            return
        if self.path == "/etag" and self.headers.get("If-None-Match") == '"x"':
            self.send_response(304)
            self.end_headers()
            return
        body = json.dumps({"path": self.path, "auth": self.headers.get("Authorization")})
        self.send_response(200 if self.path != "/missing" else 404)
        self.send_header("ETag", '"x"')
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.release = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


def test_request_returns_every_status(server):
    ok = request(f"{server}/a", what="GitHub", timeout=5,
                 secret_headers={"Authorization": "Bearer t"})
    assert (ok.status, json.loads(ok.body)["auth"], ok.headers["etag"]) == (200, "Bearer t",
                                                                             '"x"')
    assert request(f"{server}/missing", what="GitHub", timeout=5).status == 404
    assert request(f"{server}/etag", what="GitHub", timeout=5,
                   headers={"If-None-Match": '"x"'}).status == 304


def test_request_timeout_and_refused(server):
    with pytest.raises(ServiceError, match=r"^GitHub: no answer within 0.3 s \(http://"):
        request(f"{server}/slow", what="GitHub", timeout=0.3)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ServiceError, match=r"^GitHub: cannot connect to http://127.0.0.1:\d+/x "
                                           r"\(Connection refused\)$"):
        request(f"http://127.0.0.1:{port}/x", what="GitHub", timeout=2)


# Answers of the wrong shape are one ServiceError line, never a crash.

def reached_running(page):
    """What the research task's stop function does with each page."""
    return any(github_tag_version(item.get("tag_name") or "") for item in page)


@pytest.mark.parametrize("body, detail", [
    ([{"tag_name": 4512, "draft": False}], "release 1: tag_name is a number, expected text"),
    ([{"name": "no tag"}], "release 1: no tag_name"),
    ([RELEASES[0], ["v4.5.12"]], "(expected a list of objects)"),
    ([{"tag_name": "v4.5.12", "body": {"x": 1}}], "body is an object, expected text"),
])
def test_releases_of_the_wrong_shape_stop_before_the_stop_function(client, body, detail):
    url = f"{BASE}/releases?per_page=100"
    gh, _ = client({url: (200, {}, body)})
    with pytest.raises(ServiceError) as info:
        gh.releases(stop=reached_running)
    assert str(info.value).startswith("GitHub: malformed answer") and detail in str(info.value)
    assert "\n" not in str(info.value) and info.value.exit_code == 3


@pytest.mark.parametrize("body, expected", [
    ({"message": "API rate limit exceeded for 203.0.113.7.",
      "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"},
     "(expected a list of objects)"),
    (b"<!DOCTYPE html>\n<html>\n<body>Sign in</body></html>", "(not JSON: Expecting value"),
    (b"", "(not JSON: Expecting value"),
    (b"null", "(expected a list of objects)"),
])
def test_a_rate_limit_object_or_html_with_200_is_malformed(client, body, expected):
    url = f"{BASE}/security-advisories?state=published&per_page=100"
    gh, _ = client({url: (200, {}, body)})
    with pytest.raises(ServiceError) as info:
        gh.advisories()
    assert str(info.value).startswith(f"GitHub: malformed answer for {url} {expected}")
    assert "\n" not in str(info.value)


def test_an_html_error_page_is_one_line(client):
    url = f"{BASE}/releases?per_page=100"
    gh, _ = client({url: (502, {}, b"<html>\n<head><title>502 Bad Gateway</title></head>\n"
                                   b"<body>\n</body></html>")})
    with pytest.raises(ServiceError) as info:
        gh.releases()
    assert str(info.value).startswith(f"GitHub: HTTP 502 for {url} (<html> <head>")
    assert "\n" not in str(info.value)


def test_an_absurd_rate_limit_reset_is_left_out(client):
    url = f"{BASE}/releases?per_page=100"
    gh, _ = client({url: (403, {"X-RateLimit-Remaining": "0",
                                "X-RateLimit-Reset": "9" * 30}, {"message": "x"})})
    with pytest.raises(RateLimited) as info:
        gh.releases()
    assert str(info.value) == "GitHub: API rate limit exceeded; set GITHUB_TOKEN for a " \
                              "higher limit"


def test_a_next_page_elsewhere_is_not_followed(client):
    url = f"{BASE}/releases?per_page=100"
    gh, transport = client({url: (200, {"Link": '<https://evil.example/p2>; rel="next"'},
                                  RELEASES[:2])}, github_token="ghp_secret")
    with pytest.raises(ServiceError, match=r"^GitHub: the next page is on https://evil.example, "
                                           r"not on https://api.github.com; refusing"):
        gh.releases()
    assert len(transport.calls) == 1


@pytest.mark.parametrize("entry", [
    {"fetched_at": "yesterday"}, {"fetched_at": None}, {"next": 5}, {"etag": ["x"]},
    {"body": [1, 2]}, {"body": {"a": 1}},
])
def test_cache_entries_of_another_shape_are_ignored(client, clock, entry):
    url = f"{BASE}/releases?per_page=100"
    gh, transport = client({url: (200, {}, RELEASES)})
    gh.cache.folder.mkdir(parents=True)
    stored = {"url": url, "etag": "", "fetched_at": clock[0], "body": RELEASES[:1],
              "next": None, **entry}
    gh.cache.path(url).write_text(json.dumps(stored))
    assert len(gh.releases()) == len(RELEASES)
    assert len(transport.calls) == 1


def test_a_cache_that_cannot_be_written_is_only_a_cache(client, tmp_path):
    url = f"{BASE}/releases?per_page=100"
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    gh, transport = client({url: (200, {}, RELEASES)}, cache_dir=str(blocker))
    assert len(gh.releases()) == len(RELEASES)
    assert len(gh.releases()) == len(RELEASES)
    assert len(transport.calls) == 2


# The transport's one deadline, and what it refuses.

class Trickle(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n")
        try:
            for _ in range(500):
                if self.server.release.wait(0.05):
                    return
                self.wfile.write(b"[")
                self.wfile.flush()
        except OSError:
            pass

    def log_message(self, *args):
        pass


def test_request_has_one_deadline_for_the_whole_answer():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    httpd.daemon_threads = True
    httpd.release = threading.Event()
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/releases"
    try:
        started = time.monotonic()
        with pytest.raises(ServiceError, match=r"^GitHub: no answer within 0.5 s \(http://"):
            request(url, what="GitHub", timeout=0.5)
        assert time.monotonic() - started < 1.5
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "api.github.com"])
def test_request_refuses_anything_but_http(url):
    with pytest.raises(ServiceError, match="^GitHub: not an http"):
        request(url, what="GitHub", timeout=1)


def test_request_with_an_unusable_url_is_a_service_error():
    with pytest.raises(ServiceError, match=r"^GitHub: "):
        request("http://127.0.0.1:99999/x", what="GitHub", timeout=1)
