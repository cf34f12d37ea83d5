"""Rig constants: state folder, addresses, ports and names."""

import os
from pathlib import Path

STATE = Path(os.environ.get("TRIGGER_RIG_DIR", "/var/tmp/trigger-maint-rig"))
RIG_SRC = Path(__file__).resolve().parent
REPO = RIG_SRC.parents[1]
REGISTRY = "127.0.0.1:5000"
SSH_PORT = 2222
SSH_DIR = STATE / "ssh"
KEY = SSH_DIR / "id_ed25519"
KNOWN_HOSTS = SSH_DIR / "known_hosts"
AUTHORIZED_KEYS = SSH_DIR / "authorized_keys"
CACHE = STATE / "cache"
BASE_IMAGE = f"{REGISTRY}/rig/base:latest"
COMPOSE_PLUGIN = Path("/usr/local/lib/docker/cli-plugins/docker-compose")
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class RigError(RuntimeError):
    """A rig operation failed."""


def host_address(k: int) -> str:
    """Loopback address of host k."""
    return f"127.0.0.{10 + k}"


def host_dir(k: int) -> Path:
    """State folder of host k."""
    return STATE / "hosts" / str(k)


def host_domain(k: int) -> str:
    """DNS name of host k (mapped in its /etc/hosts)."""
    return f"trigger-{k}.rig.test"


def debian_mirror() -> str:
    """The Debian mirror the machine's own apt sources use."""
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = line.replace("URIs:", " ").split()
            for word in words:
                if word.startswith("http") and word.rstrip("/").endswith("/debian"):
                    return word.rstrip("/")
    return "http://deb.debian.org/debian"
