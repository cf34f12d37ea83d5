"""trigger.host_key_policy on a ProxyJump gateway, for real: the last assigned rig host
reached through the one before it, as ssh_config (Fabric's -S) describes it
(docs/configuration.md, "Gateways").

The gateway's sshd forwards with its defaults (AllowTcpForwarding yes); the rig's
known_hosts is never edited: every case writes its own file."""

import json
from dataclasses import dataclass

import pytest

ALIAS = "behind-gateway"


@dataclass
class Jump:
    """Runs trigger-maint against ALIAS: `target` reached through ProxyJump `gateway`."""

    gateway: object
    target: object
    ssh_config: str

    def fab_args(self) -> list[str]:
        return ["-S", self.ssh_config, "-H", ALIAS, "-i", str(self.target.key)]

    def logins(self, host) -> int:
        return (host.dir / "sshd.log").read_text(errors="replace").count("Accepted publickey")


def key_line(host, as_host=None) -> str:
    """A known_hosts line giving `host`'s key (under `as_host`'s name and port)."""
    name = as_host or host
    key_type, key = (host.dir / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    return f"[{name.address}]:{name.port} {key_type} {key}\n"


@pytest.fixture
def jump(rig_hosts, tmp_path):
    if len(rig_hosts) < 2:
        pytest.skip("needs 2 rig hosts (a gateway and a target) in TRIGGER_RIG_HOSTS")
    gateway, target = rig_hosts[-2:]
    config = tmp_path / "ssh_config"
    config.write_text(f"Host {ALIAS}\n  HostName {target.address}\n  Port {target.port}\n"
                      f"  User root\n  ProxyJump root@{gateway.address}:{gateway.port}\n")
    with gateway.lock(), target.lock():
        yield Jump(gateway, target, str(config))


def test_strict_refuses_an_unknown_gateway_before_anything_reaches_the_target(jump, cli,
                                                                            tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(key_line(jump.target))  # the target is known, its gateway is not
    before = jump.logins(jump.gateway), jump.logins(jump.target)
    result = cli(jump, "status", env={"FABRIC_TRIGGER_KNOWN_HOSTS": str(known),
                                      "FABRIC_TRIGGER_HOST_KEY_POLICY": "strict"})
    assert result.returncode == 3, result.stderr  # README, "Exit codes": not trusted
    gateway = f"{jump.gateway.address}:{jump.gateway.port}"
    assert result.stderr.splitlines() == [
        f"trigger-maint: {jump.target.address}:{jump.target.port}: ProxyJump gateway "
        f"{gateway}: unknown host key (not in {known}); add it with `ssh-keyscan`, or set "
        "trigger.host_key_policy: accept-new (FABRIC_TRIGGER_HOST_KEY_POLICY=accept-new) to "
        "record it on first use"]
    assert result.stdout == ""
    assert (jump.logins(jump.gateway), jump.logins(jump.target)) == before  # no login anywhere
    assert known.read_text() == key_line(jump.target)


def test_accept_new_records_the_gateway_key_and_status_runs_through_it(jump, cli, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(key_line(jump.target))
    before = jump.logins(jump.gateway), jump.logins(jump.target)
    result = cli(jump, "status", "--json", "--report-only",
                 env={"FABRIC_TRIGGER_KNOWN_HOSTS": str(known),
                      "FABRIC_TRIGGER_HOST_KEY_POLICY": "accept-new"})
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert "error" not in doc and doc["task"] == "status" and doc["checks"], doc
    assert doc["host"] == f"{jump.target.address}:{jump.target.port}"
    assert any(c["name"] == "containers" for c in doc["checks"])
    assert sorted(known.read_text().splitlines(keepends=True)) == sorted(
        [key_line(jump.target), key_line(jump.gateway)])
    after = jump.logins(jump.gateway), jump.logins(jump.target)
    assert after[0] > before[0] and after[1] > before[1]  # through the gateway to the target


@pytest.mark.parametrize("policy", ["strict", "accept-new"])
def test_a_changed_gateway_key_is_refused(jump, cli, tmp_path, policy):
    known = tmp_path / "known_hosts"
    # the gateway's entry holds another host's key: what a man in the middle would show
    lines = key_line(jump.target) + key_line(jump.target, as_host=jump.gateway)
    known.write_text(lines)
    before = jump.logins(jump.target)
    result = cli(jump, "status", "--json", env={"FABRIC_TRIGGER_KNOWN_HOSTS": str(known),
                                                "FABRIC_TRIGGER_HOST_KEY_POLICY": policy})
    assert result.returncode == 3, result.stderr
    message = (f"{jump.target.address}:{jump.target.port}: ProxyJump gateway "
               f"{jump.gateway.address}:{jump.gateway.port}: host key does not match {known}; "
               "refusing to connect (a changed key can mean a man in the middle)")
    assert json.loads(result.stdout) == {
        "schema": "trigger-maint/1", "task": "status", "host":
        f"{jump.target.address}:{jump.target.port}", "ok": False, "exit_code": 3,
        "error": message}
    assert result.stderr.splitlines() == [f"trigger-maint: {message}"]
    assert jump.logins(jump.target) == before
    assert known.read_text() == lines
