"""Machine set-up: apt packages, the Compose v2 plugin, SSH keys and images."""

import os
import shutil
import tempfile
from pathlib import Path

from . import images, proc, registry
from .config import AUTHORIZED_KEYS, CACHE, COMPOSE_PLUGIN, KEY, SSH_DIR, RigError, debian_mirror

APT_PACKAGES = ["openssh-server", "docker.io", "docker-registry", "debootstrap", "certbot",
                "openssl", "curl", "shellcheck", "util-linux"]
POLICY_RC = Path("/usr/sbin/policy-rc.d")


def install() -> None:
    """Install everything the rig needs; a rerun changes nothing."""
    if os.geteuid() != 0:
        raise RigError("the rig must be installed as root")
    apt_packages()
    compose_plugin()
    client_key()
    registry.start()
    images.build_all()


def apt_packages() -> None:
    """apt-get install the missing packages, without starting their services."""
    query = proc.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n",
                      *APT_PACKAGES], check=False).stdout
    installed = {line.split()[0] for line in query.splitlines() if line.endswith(" installed")}
    missing = [p for p in APT_PACKAGES if p not in installed]
    if not missing:
        return
    made_policy = not POLICY_RC.exists()
    if made_policy:
        POLICY_RC.write_text("#!/bin/sh\nexit 101\n")
        POLICY_RC.chmod(0o755)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        proc.run(["apt-get", "update"], env=env, timeout=900)
        proc.run(["apt-get", "install", "-y", *missing], env=env,
                 timeout=1800)
    finally:
        if made_policy:
            POLICY_RC.unlink()


def compose_plugin() -> None:
    """Install Debian 13's Compose v2 as a system-wide CLI plugin (private apt state)."""
    if COMPOSE_PLUGIN.exists():
        return
    apt = CACHE / "apt-trixie"
    (apt / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text(f"deb {debian_mirror()} trixie main\n")
    opts = [f"-oDir::Etc::SourceList={apt}/sources.list", "-oDir::Etc::SourceParts=/dev/null",
            f"-oDir::State::Lists={apt}/lists", f"-oDir::Cache={apt}/cache",
            "-oAPT::Sandbox::User=root"]
    proc.run(["apt-get", *opts, "update"], timeout=900)
    proc.run(["apt-get", *opts, "download", "docker-compose"], cwd=apt, timeout=900)
    deb = sorted(apt.glob("docker-compose_*.deb"))[-1]
    with tempfile.TemporaryDirectory() as tmp:
        proc.run(["dpkg-deb", "-x", deb, tmp])
        COMPOSE_PLUGIN.parent.mkdir(parents=True, exist_ok=True)
        binary = Path(tmp) / "usr/libexec/docker/cli-plugins/docker-compose"
        shutil.copy2(binary, COMPOSE_PLUGIN.with_suffix(".tmp"))
        COMPOSE_PLUGIN.with_suffix(".tmp").rename(COMPOSE_PLUGIN)


def client_key() -> None:
    """The client key every host authorizes."""
    SSH_DIR.mkdir(parents=True, exist_ok=True)
    if not KEY.exists():
        proc.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "trigger-rig", "-f", KEY])
    AUTHORIZED_KEYS.write_text(KEY.with_suffix(".pub").read_text())
