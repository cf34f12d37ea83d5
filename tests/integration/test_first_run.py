"""The README's "First run on your server" block, run as written by a new user: a mount
namespace whose /root is an empty home folder (ssh reads ~ from the password database, not
$HOME), a short PATH, a fresh virtualenv with a plain `pip install` of this repository,
the host key trusted with ssh, ~/.fabric.yaml, then preflight, status, maintain --dry-run
and maintain. The server is a rig host reached by its ssh_config alias trigger.example.com
(as DNS would name a real one)."""

import os
import re
import subprocess
from pathlib import Path

from tests.integration.test_maintain import webapp_image
from tests.rig.config import KNOWN_HOSTS, REGISTRY

REPO = Path(__file__).resolve().parents[2]
MARKER = "<!-- first-run:"


def first_run_block() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("```bash\n", text.index(MARKER)) + len("```bash\n")
    return text[start:text.index("```", start)]


def as_run_here(block: str, domain: str) -> str:
    """The block with the two things a person does by hand made explicit: answering yes to
    ssh's fingerprint question, and naming the rig host's certificate domain (no traffic may
    leave loopback). Each trigger-maint line also reports its exit code."""
    block = block.replace("ssh root@trigger.example.com true",
                          "ssh -o StrictHostKeyChecking=accept-new root@trigger.example.com true")
    block = block.replace("  domain: trigger.example.com", f"  domain: {domain}")
    lines = [f"{line.split('#')[0].rstrip()}; echo \"== rc $?\""
             if line.startswith("trigger-maint ") else line for line in block.splitlines()]
    return "\n".join(lines) + "\n"


def test_the_readme_first_run_works_from_an_empty_home(v4_host, github, tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / "src").mkdir()
    (home / "src" / "trigger-maint").symlink_to(REPO)
    (home / ".ssh" / "id_ed25519").write_bytes(Path(v4_host.key).read_bytes())
    (home / ".ssh" / "id_ed25519").chmod(0o600)
    (home / ".ssh" / "config").write_text(
        f"Host trigger.example.com\n  HostName {v4_host.address}\n  Port {v4_host.port}\n")
    pip_settings = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    env = {"HOME": "/root", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **pip_settings,
           # the rig's registry and fake GitHub stand in for ghcr.io and api.github.com
           "FABRIC_TRIGGER_REGISTRY": REGISTRY, "FABRIC_TRIGGER_GITHUB_API": github.url}
    script = as_run_here(first_run_block(), v4_host.domain)
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "/bin/bash", "-c",
         f"mount --bind {home} /root && cd /root && exec /bin/bash -c \"$0\"", script],
        env=env, text=True, capture_output=True, timeout=900, stdin=subprocess.DEVNULL)
    out = done.stdout
    codes = [int(c) for c in re.findall(r"^== rc (\d+)$", out, re.M)]
    # preflight ok; status 1 (no backup yet on a fresh host); the dry run ok; maintain 1:
    # with no terminal to ask, the update it found is not confirmed and its box stays open
    assert codes == [0, 1, 0, 1], done.stderr[-3000:]
    assert (home / ".local" / "share" / "trigger-maint" / "bin" / "trigger-maint").exists()
    # Debian's ssh hashes the names it records (HashKnownHosts yes): the key is there
    host_key = next(line.split()[-1] for line in KNOWN_HOSTS.read_text().splitlines()
                    if line.startswith(f"[{v4_host.address}]:{v4_host.port} "))
    assert host_key in (home / ".ssh" / "known_hosts").read_text()
    assert "install     /opt/trigger (layout v4" in out
    assert "backup" in out and "would update" in out
    assert "[x] Backup made and verified" in out
    assert "not confirmed: no terminal to ask (add --yes)" in out + done.stderr
    assert webapp_image(v4_host).endswith(":v4.5.10")  # nothing was updated unasked
