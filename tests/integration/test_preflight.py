"""preflight through the real CLI against rig hosts: layouts, host keys, bad input."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import paramiko
import pytest


class Endpoint:
    """Something `cli` can target with SSH arguments of the test's choosing."""

    def __init__(self, *args):
        self.args = list(args)

    def fab_args(self):
        return self.args


EXPECTED = {
    "v4": ("v4", ["electric", "postgres", "redis", "supervisor", "webapp"], "4.5.10"),
    "v3": ("v3", ["coordinator", "docker-provider", "postgres", "redis", "webapp"], "3.3.17"),
    "runbook": ("runbook", ["postgres", "redis", "webapp"], "4.5.10"),
}
# The backup folder preflight finds on a fresh host of each layout.
BACKUP_DIRS = {"v4": "/var/backups/trigger", "v3": "/var/backups/trigger",
               "runbook": "/opt/trigger/backups"}


def preflight_doc(done) -> dict:
    """The one JSON document of `preflight --json`."""
    assert done.returncode == 0, done.stderr
    (found,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert (found["schema"], found["task"], found["ok"], found["exit_code"]) == (
        "trigger-maint/1", "preflight", True, 0)
    return found


@pytest.mark.parametrize("fixture", ["v4_host", "v3_host", "runbook_host"])
def test_each_layout_is_found_with_its_services_and_version(request, cli, fixture):
    host = request.getfixturevalue(fixture)
    found = preflight_doc(cli(host, "preflight", "--json"))
    layout, services, version = EXPECTED[host.layout]
    inst = found["installation"]
    assert inst["layout"]["name"] == layout
    assert inst["services"] == services
    assert inst["version"]["version"] == version
    assert inst["version"]["image_id"].startswith("sha256:")
    assert found["hostname"] == f"trigger-host-{host.number}"
    assert all(c["state"] == "running" for c in inst["containers"])
    assert found["host"] == f"{host.address}:{host.port}"
    assert found["backup_dir"] == BACKUP_DIRS[host.layout]
    text = cli(host, "preflight")
    assert f"layout {layout}" in text.stdout and f"v{version}" in text.stdout
    assert f"backups     {BACKUP_DIRS[host.layout]} (" in text.stdout


def test_the_backup_folder_is_found_unless_configured(host, cli):
    """v4 keeps its backups in /var/backups/trigger, unless /opt/trigger/backups already
    holds trigger-db dumps (a host kept by the runbook's cron); trigger.backup_dir wins."""
    assert preflight_doc(cli(host, "preflight", "--json"))["backup_dir"] == "/var/backups/trigger"
    host.run("mkdir -p /opt/trigger/backups && echo notes > /opt/trigger/backups/README.txt")
    assert preflight_doc(cli(host, "preflight", "--json"))["backup_dir"] == "/var/backups/trigger"
    host.runbook_backups(nights=2, gap_after=2, foreign=None)
    found = preflight_doc(cli(host, "preflight", "--json"))
    assert found["backup_dir"] == "/opt/trigger/backups"
    assert "trigger-db dump" in found["backup_dir_reason"]
    found = preflight_doc(cli(host, "preflight", "--json",
                              env={"FABRIC_TRIGGER_BACKUP_DIR": "/srv/dumps"}))
    assert (found["backup_dir"], found["backup_dir_reason"]) == (
        "/srv/dumps", "configured (trigger.backup_dir)")


def test_unknown_host_key_is_refused_then_accept_new_saves_it(host, cli, tmp_path):
    known = tmp_path / "known_hosts"
    env = {"FABRIC_TRIGGER_KNOWN_HOSTS": str(known)}
    refused = cli(host, "preflight", env=env)
    assert refused.returncode == 3
    assert "unknown host key" in refused.stderr and refused.stderr.count("\n") == 1
    accepted = cli(host, "preflight", env={**env, "FABRIC_TRIGGER_HOST_KEY_POLICY": "accept-new"})
    assert accepted.returncode == 0, accepted.stderr
    assert f"[{host.address}]:{host.port}" in known.read_text()
    assert cli(host, "preflight", env=env).returncode == 0


def test_changed_host_key_is_refused(host, cli, tmp_path):
    known = tmp_path / "known_hosts"
    other = paramiko.Ed25519Key.from_private_key_file(host.key)  # the client key, not the host's
    known.write_text(f"[{host.address}]:{host.port} ssh-ed25519 {other.get_base64()}\n")
    for policy in ("strict", "accept-new"):
        done = cli(host, "preflight", env={"FABRIC_TRIGGER_KNOWN_HOSTS": str(known),
                                           "FABRIC_TRIGGER_HOST_KEY_POLICY": policy})
        assert done.returncode == 3
        assert "host key does not match" in done.stderr


def test_wrong_client_key_fails_authentication(host, cli, tmp_path):
    path = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    done = cli(Endpoint(*[str(path) if a == str(host.key) else a for a in host.fab_args()]),
               "preflight")
    assert done.returncode == 3
    assert "authentication failed" in done.stderr


def test_silent_server_times_out(host, cli):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    port = listener.getsockname()[1]
    done = cli(Endpoint("-H", f"root@127.0.0.1:{port}", "-i", str(host.key)), "preflight",
               env={"FABRIC_TRIGGER_CONNECT_TIMEOUT": "2",
                    "FABRIC_TRIGGER_HOST_KEY_POLICY": "off"})
    listener.close()
    assert done.returncode == 3
    assert f"127.0.0.1:{port}:" in done.stderr


def test_wrong_path_and_missing_docker_are_clear(host, cli):
    missing = cli(host, "preflight", "--path", "/srv/nothing-here")
    assert missing.returncode == 2
    assert "no installation folder /srv/nothing-here" in missing.stderr
    host.run("mv /run/docker.sock /run/docker.sock.away")
    try:
        dead = cli(host, "preflight")
    finally:
        host.run("mv /run/docker.sock.away /run/docker.sock")
    assert dead.returncode == 5
    assert "the Docker engine does not answer" in dead.stderr


def test_ctrl_c_stops_the_remote_script_and_its_cleanup_runs(host, tmp_path):
    """A script cut off by Ctrl-C stops on the host at once and removes what it made."""
    (tmp_path / "preflight.sh.j2").write_text(
        '#!/bin/bash\nset -euo pipefail\n{% include "_lib.sh.j2" %}\n'
        "touch /run/tm-partial\ntm_cleanup rm -f /run/tm-partial\n"
        "tm_log working\nsleep 60\ntm_emit\n")
    env = {**os.environ, "FABRIC_TRIGGER_KNOWN_HOSTS": str(host.known_hosts),
           "FABRIC_TRIGGER_TEMPLATE_DIR": str(tmp_path)}
    exe = os.path.join(os.path.dirname(sys.executable), "trigger-maint")
    running = subprocess.Popen([exe, *host.fab_args(), "preflight"], env=env, text=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert "working" in running.stderr.readline()
    assert host.run("ls /run/tm-partial").returncode == 0
    running.send_signal(signal.SIGINT)
    _, stderr = running.communicate(timeout=20)  # not the script's 60 s
    assert running.returncode == 130
    assert "interrupted" in stderr
    for _ in range(50):  # the host's cleanup trap removes it within moments
        if host.run("test -e /run/tm-partial", check=False).returncode:
            break
        time.sleep(0.2)
    assert host.run("test -e /run/tm-partial", check=False).returncode == 1
