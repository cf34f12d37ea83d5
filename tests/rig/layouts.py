"""The installation layouts and how a stack is rendered onto a host."""

import os
import re
import secrets
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from . import registry
from .config import REGISTRY, RIG_SRC, host_address, host_domain


@dataclass(frozen=True)
class Layout:
    """Where an installation lives and how to drive it."""

    name: str
    base_version: str
    compose_args: tuple[str, ...]  # after `docker compose`, run in /opt/trigger
    db_user: str
    db_name: str
    web_port: int
    env_links: tuple[str, ...] = ()  # symlinks to ../.env, as upstream v4 ships them


LAYOUTS = {
    "v4": Layout("v4", "v4.5.10", ("-f", "webapp/docker-compose.yml", "-f",
                                   "worker/docker-compose.yml"), "postgres", "main", 8030,
                 ("webapp/.env", "worker/.env")),
    "v3": Layout("v3", "v3.3.17", ("-p", "trigger"), "postgres", "postgres", 3040),
    "runbook": Layout("runbook", "v4.5.10", (), "trigger", "trigger", 3030),
    "upstream": Layout("upstream", "v4.5.10", ("-f", "webapp/docker-compose.yml", "-f",
                                               "worker/docker-compose.yml"), "postgres", "main",
                       8030, ("webapp/.env", "worker/.env")),
}


def render(layout: Layout, k: int, version: str, dest: Path) -> None:
    """Write layout's stack for host k into dest (the host's /opt/trigger)."""
    values = {"ADDR": host_address(k), "DOMAIN": host_domain(k), "VERSION": version, "K": str(k),
              "REGISTRY": REGISTRY, "PASSWORD": secrets.token_hex(16),
              "KEY32": secrets.token_hex(16), "REGISTRYPASSWORD": secrets.token_hex(16),
              **{f"SECRET{i}": secrets.token_hex(32) for i in range(1, 6)}}
    lazy = {"S2DIGEST": lambda: registry.manifest("s2-streamstore/s2", "latest")[2],
            "HTPASSWD": lambda: f"registry-user:{bcrypt(values['REGISTRYPASSWORD'])}"}

    def value(name: str) -> str:
        if name not in values:
            values[name] = lazy[name]()
        return values[name]

    src = RIG_SRC / "stacks" / layout.name
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        target = dest / (rel.parent / ".env" if rel.name == "env" else rel)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        text = re.sub(r"@([A-Z0-9]+)@", lambda m: value(m.group(1)), path.read_text())
        target.write_text(text)
        if rel.name == "env":
            target.chmod(0o600)
    for link in layout.env_links:
        os.symlink("../.env", dest / link)


def bcrypt(password: str) -> str:
    """An htpasswd -B line's hash (cost 5, htpasswd's default)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32))


def wipe(dest: Path) -> None:
    """Remove an installation folder."""
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.exists():
        shutil.rmtree(dest)
