"""Image existence over the OCI distribution API, with the anonymous bearer-token dance."""

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from trigger_maint.oci import (
    MANIFEST_TYPES,
    Registry,
    base_url,
    manifest_problem,
    parse_challenge,
    token_from,
)
from trigger_maint.web import ServiceError

INDEX = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:0f1e5c0b9d6a0d3c8c5e4c1b8f3d2a1e0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e",
        "size": 1609,
        "platform": {"architecture": "amd64", "os": "linux"},
    }],
}
INDEX_BYTES = json.dumps(INDEX).encode()
DIGEST = "sha256:" + hashlib.sha256(INDEX_BYTES).hexdigest()
TAGS = {"v4.5.10", "v4.5.12", "v4"}


class FakeRegistry(BaseHTTPRequestHandler):
    """ghcr.io's behaviour: 401 with a Bearer challenge, tokens from /token, 404 for
    unknown tags; `mode` switches to Basic auth, HEAD-less or digest-less answers."""

    def handle_one(self, with_body):
        server = self.server
        server.log.append((self.command, self.path, self.headers.get("Authorization")))
        url = urlsplit(self.path)
        if url.path == "/token":
            query = parse_qs(url.query)
            server.token_queries.append(query)
            token = {"odd-token": {"token": 12345}, "html-token": None}.get(
                server.mode, {"token": "djE6dHJpZ2dlcg=="})
            body = b"<html>login</html>" if token is None else json.dumps(token).encode()
            return self.answer(200, {"Content-Type": "application/json"}, body, with_body)
        if server.mode == "no-head" and self.command == "HEAD":
            return self.answer(405, {}, b"", with_body)
        if self.headers.get("Authorization") != "Bearer djE6dHJpZ2dlcg==":
            realm = ("file:///etc/passwd" if server.mode == "file-realm" else
                     f"http://127.0.0.1:{server.server_address[1]}/token")
            challenge = ('Basic realm="Registry"' if server.mode == "basic" else
                         f'Bearer realm="{realm}",'
                         'service="ghcr.io",scope="repository:triggerdotdev/trigger.dev:pull"')
            body = json.dumps({"errors": [{"code": "UNAUTHORIZED",
                                           "message": "authentication required"}]}).encode()
            return self.answer(401, {"WWW-Authenticate": challenge}, body, with_body)
        server.accepts.append(self.headers.get("Accept"))
        tag = url.path.rsplit("/", 1)[-1]
        if tag not in TAGS or not url.path.startswith("/v2/triggerdotdev/trigger.dev/"):
            body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN",
                                           "message": "manifest unknown"}]}).encode()
            return self.answer(404, {"Content-Type": "application/json"}, body, with_body)
        headers = {"Content-Type": INDEX["mediaType"]}
        if server.mode == "html":  # a portal or proxy answering every path with a page
            return self.answer(200, {"Content-Type": "text/html"}, b"<html>hello</html>",
                               with_body)
        if server.mode == "bad-digest":
            headers["Docker-Content-Digest"] = "<html>"
        elif server.mode not in ("no-digest", "json-not-manifest"):
            headers["Docker-Content-Digest"] = DIGEST
        body = b'{"errors": []}' if server.mode == "json-not-manifest" else INDEX_BYTES
        return self.answer(200, headers, body, with_body)

    def answer(self, status, headers, body, with_body):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.handle_one(True)

    def do_HEAD(self):  # noqa: N802
        self.handle_one(False)

    def log_message(self, *args):
        pass


@pytest.fixture
def registry():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
    httpd.log, httpd.token_queries, httpd.accepts, httpd.mode = [], [], [], ""
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def address(httpd):
    return f"127.0.0.1:{httpd.server_address[1]}"


def test_base_url_schemes():
    assert base_url("ghcr.io") == "https://ghcr.io"
    assert base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert base_url("localhost:5000") == "http://localhost:5000"
    assert base_url("registry.example.com:5000") == "https://registry.example.com:5000"
    assert base_url("docker.io") == "https://registry-1.docker.io"
    assert base_url("http://mirror.lan:5000/") == "http://mirror.lan:5000"
    assert base_url("[::1") == "https://[::1"


def test_a_registry_name_urllib_cannot_use_is_a_service_error():
    with pytest.raises(ServiceError, match=r"^registry \[::1: "):
        Registry("[::1", timeout=1).digest("triggerdotdev/trigger.dev", "v4")


def test_parse_challenge_of_ghcr():
    header = ('Bearer realm="https://ghcr.io/token",service="ghcr.io",'
              'scope="repository:triggerdotdev/trigger.dev:pull"')
    assert parse_challenge(header) == ("bearer", {
        "realm": "https://ghcr.io/token", "service": "ghcr.io",
        "scope": "repository:triggerdotdev/trigger.dev:pull"})


def test_token_dance_then_head(registry):
    reg = Registry(address(registry), timeout=5)
    assert reg.digest("triggerdotdev/trigger.dev", "v4.5.12") == DIGEST
    assert reg.digest("triggerdotdev/trigger.dev", "v4.5.13") is None
    methods = [(m, p.split("?")[0], a) for m, p, a in registry.log]
    assert methods == [
        ("HEAD", "/v2/triggerdotdev/trigger.dev/manifests/v4.5.12", None),
        ("GET", "/token", None),
        ("HEAD", "/v2/triggerdotdev/trigger.dev/manifests/v4.5.12", "Bearer djE6dHJpZ2dlcg=="),
        ("HEAD", "/v2/triggerdotdev/trigger.dev/manifests/v4.5.13", "Bearer djE6dHJpZ2dlcg=="),
    ]
    assert registry.token_queries == [{"scope": ["repository:triggerdotdev/trigger.dev:pull"],
                                       "service": ["ghcr.io"]}]
    assert registry.accepts[0].split(", ") == list(MANIFEST_TYPES)


def test_get_when_head_is_refused_and_digest_from_body(registry):
    registry.mode = "no-head"
    assert Registry(address(registry), timeout=5).digest(
        "triggerdotdev/trigger.dev", "v4") == DIGEST
    registry.mode = "no-digest"
    assert Registry(address(registry), timeout=5).digest(
        "triggerdotdev/trigger.dev", "v4.5.10") == DIGEST
    assert [m for m, _, _ in registry.log[-2:]] == ["HEAD", "GET"]


def test_login_required_is_a_clear_error(registry):
    registry.mode = "basic"
    with pytest.raises(ServiceError, match=r"^registry 127.0.0.1:\d+: wants a login for "
                                           r"triggerdotdev/trigger.dev \(Basic realm="):
        Registry(address(registry), timeout=5).digest("triggerdotdev/trigger.dev", "v4")


def test_unreachable_registry():
    with pytest.raises(ServiceError, match=r"^registry 127.0.0.1:9: cannot connect to "
                                           r"http://127.0.0.1:9/v2/"):
        Registry("127.0.0.1:9", timeout=2).digest("triggerdotdev/trigger.dev", "v4")


@pytest.mark.parametrize("mode, message", [
    ("html", "malformed manifest for triggerdotdev/trigger.dev:v4 (not JSON)"),
    ("json-not-manifest", "malformed manifest for triggerdotdev/trigger.dev:v4 "
                          "(no schemaVersion)"),
    ("bad-digest", "malformed digest for triggerdotdev/trigger.dev:v4 ('<html>')"),
    ("odd-token", "no anonymous token for triggerdotdev/trigger.dev (HTTP 200 from "),
    ("html-token", "no anonymous token for triggerdotdev/trigger.dev (HTTP 200 from "),
    ("file-realm", "token service 'file:///etc/passwd' is not an http(s) URL"),
])
def test_answers_of_the_wrong_shape_are_a_service_error(registry, mode, message):
    registry.mode = mode
    with pytest.raises(ServiceError) as err:
        Registry(address(registry), timeout=5).digest("triggerdotdev/trigger.dev", "v4")
    assert str(err.value).startswith(f"registry {address(registry)}: {message}")
    assert "\n" not in str(err.value) and err.value.exit_code == 3


def test_manifest_and_token_shapes():
    assert manifest_problem(INDEX_BYTES) is None
    assert manifest_problem(b"[]") == "not a JSON object"
    assert manifest_problem(b'{"schemaVersion": true}') == "no schemaVersion"
    assert token_from(b'{"access_token": "t"}') == "t"
    assert token_from(b'{"token": ["t"]}') is None
    assert token_from(b'{"token": " "}') is None
    assert token_from(b"[]") is None
