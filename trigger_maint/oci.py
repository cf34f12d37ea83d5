"""Does an image tag exist? The OCI distribution API, with anonymous bearer tokens."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse

from .web import Response, ServiceError, one_line, request

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
ALIASES = {"docker.io": "registry-1.docker.io"}
CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')
DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")  # OCI digest grammar


def manifest_problem(body: bytes) -> str | None:
    """Why `body` is not an image manifest or index (JSON object with a schemaVersion);
    None when it is one."""
    try:
        data = json.loads(body)
    except ValueError:
        return "not JSON"
    if not isinstance(data, dict):
        return "not a JSON object"
    if not isinstance(data.get("schemaVersion"), int) or isinstance(data["schemaVersion"], bool):
        return "no schemaVersion"
    return None


def token_from(body: bytes) -> str | None:
    """The bearer token of a token endpoint's JSON answer (`token` or `access_token`)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    value = data.get("token") or data.get("access_token")
    return value if isinstance(value, str) and value.strip() else None


def base_url(registry: str) -> str:
    """The registry's API root: http for loopback registries, https otherwise."""
    if "://" in registry:
        return registry.rstrip("/")
    host = ALIASES.get(registry, registry).rstrip("/")
    try:
        name = urllib.parse.urlsplit(f"//{host}").hostname or host
    except ValueError:  # "[::1" and the like: the request will say what is wrong
        name = host
    scheme = "http" if name in LOCAL_HOSTS or name.startswith("127.") else "https"
    return f"{scheme}://{host}"


def parse_challenge(header: str) -> tuple[str, dict]:
    """`Bearer realm="…",service="…",scope="…"` -> ("bearer", {realm, service, scope})."""
    scheme, _, params = header.strip().partition(" ")
    return scheme.lower(), dict(CHALLENGE_RE.findall(params))


class Registry:
    """One image registry; anonymous pull tokens are fetched once per repository."""

    def __init__(self, registry: str, timeout: float):
        self.name = registry
        self.base = base_url(registry)
        self.timeout = timeout
        self.tokens: dict[str, str] = {}

    def digest(self, repo: str, tag: str) -> str | None:
        """The manifest digest of `repo:tag`; None when the registry has no such tag."""
        url = f"{self.base}/v2/{repo}/manifests/{urllib.parse.quote(tag)}"
        method = "HEAD"
        resp = self.send(url, repo, method)
        if resp.status == 405:  # some registries only answer GET
            method = "GET"
            resp = self.send(url, repo, method)
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise ServiceError(f"registry {self.name}: HTTP {resp.status} for {repo}:{tag}"
                               + _detail(resp))
        digest = resp.headers.get("docker-content-digest", "").strip()
        if digest:
            if not DIGEST_RE.fullmatch(digest):
                raise ServiceError(f"registry {self.name}: malformed digest for {repo}:{tag} "
                                   f"({one_line(digest, 80)!r})")
            return digest
        if method == "HEAD":
            resp = self.send(url, repo, "GET")
            if resp.status != 200:
                raise ServiceError(f"registry {self.name}: HTTP {resp.status} for "
                                   f"{repo}:{tag}" + _detail(resp))
        problem = manifest_problem(resp.body)
        if problem:
            raise ServiceError(f"registry {self.name}: malformed manifest for {repo}:{tag} "
                               f"({problem})")
        return "sha256:" + hashlib.sha256(resp.body).hexdigest()

    def send(self, url: str, repo: str, method: str) -> Response:
        """One manifest request; on a 401 challenge, get an anonymous token and retry once."""
        headers = {"Accept": ", ".join(MANIFEST_TYPES), "User-Agent": "trigger-maint"}
        resp = request(url, what=f"registry {self.name}", timeout=self.timeout, method=method,
                       headers=headers, secret_headers=self.auth(repo))
        if resp.status == 401 and repo not in self.tokens:
            self.tokens[repo] = self.token(resp.headers.get("www-authenticate", ""), repo)
            resp = request(url, what=f"registry {self.name}", timeout=self.timeout,
                           method=method, headers=headers, secret_headers=self.auth(repo))
        return resp

    def auth(self, repo: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[repo]}"} if repo in self.tokens else {}

    def token(self, challenge: str, repo: str) -> str:
        """An anonymous pull token from the challenge's realm."""
        scheme, params = parse_challenge(challenge)
        if scheme != "bearer" or not params.get("realm"):
            raise ServiceError(f"registry {self.name}: wants a login for {repo} "
                               f"({one_line(challenge, 120) or 'no challenge'}); "
                               "anonymous pulls are refused")
        if not params["realm"].startswith(("https://", "http://")):
            raise ServiceError(f"registry {self.name}: token service "
                               f"{one_line(params['realm'], 80)!r} is not an http(s) URL")
        query = {"scope": params.get("scope") or f"repository:{repo}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        url = params["realm"] + "?" + urllib.parse.urlencode(query)
        resp = request(url, what=f"registry {self.name}", timeout=self.timeout,
                       headers={"User-Agent": "trigger-maint"})
        value = token_from(resp.body) if resp.status == 200 else None
        if not value:
            raise ServiceError(f"registry {self.name}: no anonymous token for {repo} "
                               f"(HTTP {resp.status} from {params['realm']})")
        return value


def _detail(resp: Response) -> str:
    try:
        errors = json.loads(resp.body).get("errors") or []
        text = "; ".join(str(e.get("message") or e.get("code")) for e in errors)
    except (ValueError, AttributeError, TypeError):
        text = ""
    return f" ({one_line(text, 160)})" if text else ""
