"""Base rootfs, stand-in images and their build in a private builder Docker engine."""

import functools
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from . import proc, registry
from .config import BASE_IMAGE, CACHE, REGISTRY, RIG_SRC, STATE, debian_mirror

STANDINS = RIG_SRC / "standins"
BUILDER = STATE / "builder"
BASE_PACKAGES = "postgresql-15,redis-server,python3,curl,procps,ca-certificates"
# Removed from the rootfs after debootstrap: caches, docs and the unused LLVM JIT.
TRIM = ["var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
        "usr/share/locale", "var/lib/postgresql/15", "etc/postgresql/15",
        "usr/lib/x86_64-linux-gnu/libLLVM-14.so.1", "usr/lib/x86_64-linux-gnu/libz3.so.4",
        "usr/lib/postgresql/15/lib/llvmjit.so", "usr/lib/postgresql/15/lib/bitcode"]

# version: (migration count, behaviour); behaviour is healthy, unhealthy or crash.
WEBAPP_VERSIONS = {
    "v4.5.10": (5, "healthy"), "v4.5.11": (5, "healthy"), "v4.5.12": (6, "healthy"),
    "v4.5.14": (6, "unhealthy"), "v4.5.15": (6, "crash"), "v4.5.16": (7, "unhealthy"),
    "v4.6.0-rc.1": (6, "healthy"), "v3.3.17": (5, "healthy"), "v3.3.18": (5, "healthy"),
}
V4 = [v for v in WEBAPP_VERSIONS if v.startswith("v4")]
V3 = [v for v in WEBAPP_VERSIONS if v.startswith("v3")]
FLOATING = {"v4": "v4.5.11", "latest": "v4.5.11", "v3": "v3.3.17"}
RELEASE_DATES = {"v4.5.10": "2026-08-04", "v4.5.11": "2026-08-12", "v4.5.12": "2026-08-20",
                 "v4.5.14": "2026-09-03", "v4.5.15": "2026-09-10", "v4.5.16": "2026-09-17",
                 "v4.6.0-rc.1": "2026-09-01", "v3.3.17": "2025-02-26", "v3.3.18": "2025-03-05"}
# worker images per major version: repo -> (port of its /health, stand-in kind)
WORKERS = {"v4": {"triggerdotdev/supervisor": (8020, "supervisor")},
           "v3": {"triggerdotdev/provider/docker": (9021, "docker-provider"),
                  "triggerdotdev/coordinator": (9020, "coordinator")}}
HEALTH_CMD = ["python3", "/rig/service.py"]
# Other services of upstream's v4 stack: repo, tag, port, health path, stand-in kind.
SERVICES = [("electricsql/electric", "1.2.4", 3000, "/v1/health", "electric"),
            ("clickhouse/clickhouse-server", "26.2", 8123, "/ping", "clickhouse"),
            ("registry", "2", 5000, "/", "registry"),
            ("bitnamilegacy/minio", "latest", 9000, "/minio/health/live", "minio"),
            ("tecnativa/docker-socket-proxy", "latest", 2375, "/_ping", "docker-proxy")]
# Shell tools upstream's health checks call, per stand-in kind (files in standins/bin).
TOOLS = {"clickhouse": ["clickhouse-client"], "registry": ["wget"], "docker-proxy": ["nc"],
         "supervisor": ["node", "dumb-init", "pnpm"]}
TOOL_DIRS = {"dumb-init": "/usr/bin/"}  # where upstream's commands call a tool by path
# Upstream's webapp and supervisor commands chown to this user.
NODE_USER = {"passwd": "node:x:1000:1000::/home/node:/bin/sh", "group": "node:x:1000:"}
RIG_FILES = {f"/rig/{name}": STANDINS / name for name in ("logfmt.py", "service.py",
                                                          "profiles.py")}


def base_recipe() -> list[str]:
    """The debootstrap command (minus target) the base image is made from."""
    return ["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm"]


def digest(*parts) -> str:
    """Short stable hash of JSON-able parts and of files' contents."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            for f in sorted(p for p in part.rglob("*")
                            if p.is_file() and "__pycache__" not in p.parts):
                h.update(f"{f.relative_to(part)}:{os.access(f, os.X_OK)}".encode())
                h.update(f.read_bytes())
        else:
            h.update(json.dumps(part, sort_keys=True).encode())
    return h.hexdigest()[:16]


def base_key() -> str:
    """Cache key of the base rootfs."""
    return digest(base_recipe(), TRIM)


def base_tarball() -> Path:
    """The base rootfs tarball, made with debootstrap unless cached."""
    tarball = CACHE / f"base-{base_key()}.tar"
    if tarball.exists():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        rootfs = Path(tmp) / "rootfs"
        try:
            proc.run([*base_recipe(), rootfs, debian_mirror()], timeout=1800)
        finally:  # a failed debootstrap can leave /proc etc. mounted in the rootfs
            for line in reversed(Path("/proc/mounts").read_text().splitlines()):
                if line.split()[1].startswith(f"{rootfs}/"):
                    proc.run(["umount", "-l", line.split()[1]], check=False)
        for rel in TRIM:
            path = rootfs / rel
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        proc.run(["tar", "-C", rootfs, "-cf", Path(tmp) / "base.tar", "."])
        (Path(tmp) / "base.tar").rename(tarball)
    return tarball


def image_specs() -> list[dict]:
    """Every stand-in image: repo, tags, Dockerfile lines and files to copy."""
    specs = []
    for version, (count, behaviour) in WEBAPP_VERSIONS.items():
        specs.append(webapp_spec(version, count, behaviour))
        for repo, (port, kind) in WORKERS[version[:2]].items():
            specs.append(service_spec(repo, version, port, "/health", f"/app/.build-{version}",
                                      kind))
    for repo, tag, port, path, kind in SERVICES:
        specs.append(service_spec(repo, tag, port, path, "/app/.build", kind))
    specs.append(s2_spec())
    specs.append({"repo": "busybox", "tags": ["1.37"], "files": {}, "lines": ['CMD ["sh"]']})
    specs.append({"repo": "postgres", "tags": ["14"], "files": {
        "/usr/local/bin/docker-entrypoint.sh": STANDINS / "postgres-entrypoint.sh"},
        "lines": ["ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data",
                  "STOPSIGNAL SIGINT", 'ENTRYPOINT ["docker-entrypoint.sh"]', 'CMD ["postgres"]']})
    specs.append({"repo": "redis", "tags": ["7"], "files": {
        "/usr/local/bin/docker-entrypoint.sh": STANDINS / "redis-entrypoint.sh",
        "/usr/local/bin/redis-cli": STANDINS / "redis-cli"},
        "lines": ["WORKDIR /data", 'ENTRYPOINT ["docker-entrypoint.sh"]', 'CMD ["redis-server"]']})
    return specs


def floating_tags(version: str) -> list[str]:
    """Floating tags that point at version's image."""
    return [tag for tag, target in FLOATING.items() if target == version]


def webapp_spec(version: str, count: int, behaviour: str) -> dict:
    """A stand-in webapp image for one version."""
    plain = version.lstrip("v")
    core = "3.3.17" if version == "v3.3.18" else plain  # docker-only 3.3.18 kept 3.3.17
    migrations = sorted(p for p in (STANDINS / "migrations").iterdir())[:count]
    files = {f"/triggerdotdev/internal-packages/database/prisma/migrations/{m.name}/migration.sql":
             m / "migration.sql" for m in migrations}
    files["/triggerdotdev/rig/webapp.py"] = STANDINS / "webapp.py"
    files["/rig/logfmt.py"] = STANDINS / "logfmt.py"
    texts = {"/triggerdotdev/rig/behaviour": behaviour + "\n",
             "/triggerdotdev/packages/core/package.json":
                 json.dumps({"name": "@trigger.dev/core", "version": core}, indent=2) + "\n",
             "/triggerdotdev/apps/webapp/package.json":
                 json.dumps({"name": "webapp", "version": "1.0.0"}, indent=2) + "\n"}
    lines = ["WORKDIR /triggerdotdev", 'CMD ["python3", "/triggerdotdev/rig/webapp.py"]']
    spec = {"repo": "triggerdotdev/trigger.dev", "tags": [version, *floating_tags(version)],
            "files": files, "texts": texts, "lines": lines}
    if version.startswith("v4"):
        files["/triggerdotdev/scripts/entrypoint.sh"] = STANDINS / "bin/webapp-entrypoint.sh"
        files["/usr/local/bin/node"] = STANDINS / "bin/node"
        spec["users"] = NODE_USER
        sha = hashlib.sha1(version.encode()).hexdigest()
        created = f"{RELEASE_DATES[version]}T12:00:00Z"
        lines += [f"ENV BUILD_APP_VERSION={version} BUILD_GIT_SHA={sha} "
                  f"BUILD_GIT_REF_NAME=v.docker.{plain}",
                  f'LABEL org.opencontainers.image.version="{version}" '
                  f'org.opencontainers.image.revision="{sha}" '
                  f'org.opencontainers.image.created="{created}"']
    return spec


def service_spec(repo: str, version: str, port: int, path: str, marker: str,
                 kind: str = "") -> dict:
    """A stand-in answering GET path with 200 on port, logging like the service `kind`."""
    files = {**RIG_FILES, **{TOOL_DIRS.get(tool, "/usr/local/bin/") + tool: STANDINS / "bin" / tool
                             for tool in TOOLS.get(kind, [])}}
    spec = {"repo": repo, "tags": [version, *floating_tags(version)], "files": files,
            "texts": {marker: version + "\n"},
            "lines": ["WORKDIR /app", f'CMD {json.dumps([*HEALTH_CMD, str(port), path, kind])}']}
    if kind == "supervisor":
        spec["users"] = NODE_USER
    return spec


def s2_spec() -> dict:
    """s2-lite: upstream passes `lite --init-file ... --local-root ...` as the command."""
    return {"repo": "s2-streamstore/s2", "tags": ["latest"], "files": dict(RIG_FILES),
            "lines": ["WORKDIR /", f'ENTRYPOINT {json.dumps([*HEALTH_CMD, "80", "/health", "s2"])}',
                      'CMD ["lite", "--local-root", "/data"]']}


def images_key() -> str:
    """Cache key of all stand-in images."""
    return digest(base_key(), [
        {**s, "files": {k: str(v) for k, v in s["files"].items()}} for s in image_specs()
    ], STANDINS)


def built_key() -> str:
    """Key of the images the registry got last (its newest built-* marker), "" if none."""
    markers = sorted((STATE / "registry").glob("built-*"), key=lambda p: p.stat().st_mtime)
    return markers[-1].name.removeprefix("built-") if markers else ""


def builder_env() -> dict:
    """Environment for docker CLI calls against the builder engine."""
    return {**os.environ, "DOCKER_HOST": f"unix://{BUILDER}/docker.sock", "DOCKER_BUILDKIT": "0"}


def start_builder() -> int:
    """Start the builder Docker engine; returns its pid."""
    BUILDER.mkdir(parents=True, exist_ok=True)
    sock = BUILDER / "docker.sock"
    pid = proc.read_pid(BUILDER / "dockerd.pid")
    if not pid:
        pid = proc.spawn(["dockerd", "--data-root", BUILDER / "data", "--exec-root",
                          BUILDER / "exec", "-H", f"unix://{sock}", "--pidfile",
                          BUILDER / "dockerd.pid", "--bridge=none", "--iptables=false",
                          "--ip-masq=false", "--ip6tables=false"], BUILDER / "dockerd.log").pid
    proc.wait_for(lambda: proc.docker_ping(sock), 60, "the builder Docker engine")
    return pid


def stop_builder() -> None:
    """Stop the builder engine if it runs."""
    proc.stop(proc.read_pid(BUILDER / "dockerd.pid"))


def build_all() -> bool:
    """Build and push base + stand-ins unless the registry has this recipe; True if built."""
    key = images_key()
    marker = STATE / "registry" / f"built-{key}"
    if marker.exists() and registry.has_tag("triggerdotdev/trigger.dev", "v4.5.10"):
        return False
    tarball = base_tarball()
    start_builder()
    env = builder_env()
    try:
        local_base = f"rig/base:{base_key()}"
        if proc.run(["docker", "image", "inspect", local_base], check=False, env=env).returncode:
            proc.run(["docker", "import", tarball, local_base], env=env, timeout=600)
        proc.run(["docker", "tag", local_base, BASE_IMAGE], env=env)
        proc.run(["docker", "push", BASE_IMAGE], env=env, timeout=600)
        for spec in image_specs():
            build(spec, local_base, env)
    finally:
        stop_builder()
    marker.write_text(key + "\n")
    return True


def build(spec: dict, base: str, env: dict) -> None:
    """Build one stand-in from base (COPY only), tag it and push every tag."""
    with tempfile.TemporaryDirectory() as ctx:
        lines = [f"FROM {base}"]
        for i, (dest, src) in enumerate(spec["files"].items()):
            shutil.copy2(src, Path(ctx) / f"f{i}")
            lines.append(f"COPY f{i} {dest}")
        texts = {**spec.get("texts", {}), **user_texts(spec.get("users", {}))}
        for i, (dest, text) in enumerate(texts.items()):
            (Path(ctx) / f"t{i}").write_text(text)
            lines.append(f"COPY t{i} {dest}")
        (Path(ctx) / "Dockerfile").write_text("\n".join(lines + spec["lines"]) + "\n")
        names = [f"{REGISTRY}/{spec['repo']}:{tag}" for tag in spec["tags"]]
        proc.run(["docker", "build", "-q", *(a for n in names for a in ("-t", n)), ctx], env=env,
                 timeout=600)
    for name in names:
        proc.run(["docker", "push", name], env=env, timeout=600)


@functools.cache
def base_file(rel: str) -> str:
    """A text file of the base rootfs."""
    with tarfile.open(base_tarball()) as tar:
        return tar.extractfile(f"./{rel}").read().decode()


def user_texts(users: dict) -> dict:
    """/etc/passwd and /etc/group of the base with users' lines added ({"passwd": line, ...})."""
    return {f"/etc/{name}": base_file(f"etc/{name}") + line + "\n"
            for name, line in users.items()}
