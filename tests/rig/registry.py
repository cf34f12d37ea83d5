"""The local registry (Debian's docker-registry on 127.0.0.1:5000) and tag moves."""

import json
import urllib.error
import urllib.request

from . import proc
from .config import REGISTRY, STATE, RigError

DIR = STATE / "registry"
MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json"])


def request(method: str, path: str, data: bytes | None = None, headers=None):
    """A registry API call; returns (status, headers, body)."""
    req = urllib.request.Request(f"http://{REGISTRY}{path}", data=data, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()
    except OSError:
        return 0, {}, b""


def running() -> bool:
    """True if the registry answers."""
    return request("GET", "/v2/")[0] == 200


def start() -> None:
    """Start the registry unless it runs."""
    if running():
        return
    (DIR / "storage").mkdir(parents=True, exist_ok=True)
    config = DIR / "config.yml"
    config.write_text(f"version: 0.1\nlog: {{level: warn}}\nstorage:\n"
                      f"  filesystem: {{rootdirectory: {DIR / 'storage'}}}\n"
                      f"  delete: {{enabled: true}}\nhttp: {{addr: {REGISTRY}}}\n")
    pid = proc.spawn(["docker-registry", "serve", config], DIR / "registry.log").pid
    (DIR / "registry.pid").write_text(f"{pid}\n")
    proc.wait_for(running, 30, "the registry")


def stop() -> None:
    """Stop the registry this rig started."""
    proc.stop(proc.read_pid(DIR / "registry.pid"))


def _repo(repo: str) -> str:
    return repo.removeprefix(f"{REGISTRY}/")


def manifest(repo: str, tag: str) -> tuple[bytes, str, str]:
    """(body, content type, digest) of repo:tag."""
    status, headers, body = request("GET", f"/v2/{_repo(repo)}/manifests/{tag}",
                                    headers={"Accept": MANIFEST_TYPES})
    if status != 200:
        raise RigError(f"registry has no {repo}:{tag} ({status})")
    return body, headers["Content-Type"], headers["Docker-Content-Digest"]


def has_tag(repo: str, tag: str) -> bool:
    """True if the registry holds repo:tag."""
    status = request("HEAD", f"/v2/{_repo(repo)}/manifests/{tag}",
                     headers={"Accept": MANIFEST_TYPES})[0]
    return status == 200


def tags(repo: str) -> list[str]:
    """Tags of repo in the registry."""
    status, _, body = request("GET", f"/v2/{_repo(repo)}/tags/list")
    return json.loads(body).get("tags") or [] if status == 200 else []


def move_tag(repo: str, tag: str, to_version: str) -> str:
    """Point repo:tag at repo:to_version's image, as upstream moves v4/latest; returns the
    digest the tag had before (or "" if it was new)."""
    before = manifest(repo, tag)[2] if has_tag(repo, tag) else ""
    body, ctype, _ = manifest(repo, to_version)
    status, _, answer = request("PUT", f"/v2/{_repo(repo)}/manifests/{tag}", body,
                                {"Content-Type": ctype})
    if status != 201:
        raise RigError(f"moving {repo}:{tag} failed: {status} {answer[:200]!r}")
    return before


def reset_floating_tags() -> None:
    """Put every floating tag back where install left it."""
    from .images import FLOATING, V3

    for tag, version in FLOATING.items():
        repos = ["triggerdotdev/trigger.dev"]
        repos += (["triggerdotdev/provider/docker", "triggerdotdev/coordinator"] if version in V3
                  else ["triggerdotdev/supervisor"])
        for repo in repos:
            if manifest(repo, tag)[2] != manifest(repo, version)[2]:
                move_tag(repo, tag, version)
