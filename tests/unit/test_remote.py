import io
import json
import shlex
import socket
import subprocess
from dataclasses import dataclass

import paramiko
import pytest
from fabric import Connection

from trigger_maint.config import settings
from trigger_maint.errors import ConfigError, ConnectError, OperationError, UnsafeError
from trigger_maint.hostpaths import LOCK_FILE
from trigger_maint.remote import (
    HostPrefixedStream,
    Session,
    connect_error,
    heredoc,
    hops,
    host_label,
    proxy_command,
)
from trigger_maint.render import render
from trigger_maint.scripts.base import ALIVE, NoInputs, Script, new_marker, parse_result

from .shell import assert_clean_bash


def test_heredoc_runs_the_script_verbatim_with_stdin_on_fd3():
    script = "#!/bin/bash\nset -euo pipefail\necho \"$(( 6 * 7 ))\" '$HOME'\ncat <&3\n"
    done = subprocess.run(["bash", "-c", heredoc(script)], input="from-channel\n",
                          capture_output=True, text=True)
    assert done.stdout == "42 $HOME\nfrom-channel\n"


def test_progress_lines_are_prefixed_by_host_and_heartbeats_hidden():
    target = io.StringIO()
    stream = HostPrefixedStream("web-1", target)
    stream.write("one\ntw")
    stream.write(f"o\n{ALIVE}\nthree")
    stream.flush()
    assert target.getvalue() == "web-1 | one\nweb-1 | two\nweb-1 | three\n"
    assert stream.lines == ["one", "two", "three"]


def test_a_heartbeat_counts_as_a_sign_of_life():
    stream = HostPrefixedStream("web-1", io.StringIO())
    stream.last_activity = 0
    stream.write(f"{ALIVE}\n")
    assert stream.last_activity > 0 and stream.lines == []


@pytest.mark.parametrize("host, port, label", [("10.0.0.1", 22, "10.0.0.1"),
                                               ("10.0.0.1", 2222, "10.0.0.1:2222")])
def test_hosts_are_named_with_their_port_when_not_22(host, port, label):
    assert host_label(Connection(host, port=port)) == label


@pytest.mark.parametrize(
    "exc, expected",
    [
        (paramiko.SSHException("Server '[h]:22' not found in known_hosts"), "unknown host key"),
        (paramiko.BadHostKeyException("h", paramiko.RSAKey.generate(1024),
                                      paramiko.RSAKey.generate(1024)), "does not match"),
        (paramiko.AuthenticationException("Authentication failed."), "authentication failed"),
        (socket.gaierror(-2, "Name or service not known"), "cannot resolve host name"),
        (TimeoutError(), "no answer within 15 s"),
        (ConnectionRefusedError(111, "Connection refused"), "cannot connect (Connection refused)"),
    ],
)
def test_connection_failures_are_one_clear_line(exc, expected):
    error = connect_error("h", exc, settings({}))
    assert isinstance(error, ConnectError) and error.exit_code == 3
    assert expected in str(error) and str(error).startswith("h: ")


TEXT = 'quote " back \\ tab \t newline \n ctl \x01 end'
# Scripts on the shared helpers: name -> body.
BODIES = {
    "slow": "touch {partial}\ntm_cleanup rm -f {partial}\ntm_log started\nsleep 30\ntm_emit\n",
    "bad": "tm_put_str step one\nfalse\ntm_emit\n",
    "text": f"tm_put_str text {shlex.quote(TEXT)}\ntm_emit\n",
}


def lib_script(tmp_path, name: str, marker: str) -> str:
    """The script `name` of BODIES after the shared helpers, rendered as the tool renders."""
    body = BODIES[name].replace("{partial}", shlex.quote(str(tmp_path / "partial")))
    (tmp_path / f"{name}.sh.j2").write_text(
        '#!/bin/bash\nset -euo pipefail\n{% include "_lib.sh.j2" %}\n' + body)
    return render(name, template_dir=str(tmp_path), marker=marker, heartbeat=0,
                  lock_file=LOCK_FILE)


@pytest.mark.parametrize("name", sorted(BODIES))
def test_scripts_on_the_shared_helpers_are_clean_bash(tmp_path, name):
    assert_clean_bash(lib_script(tmp_path, name, new_marker()))


def test_script_stops_and_cleans_up_when_the_channel_closes(tmp_path):
    partial = tmp_path / "partial"
    script = lib_script(tmp_path, "slow", new_marker())
    proc = subprocess.Popen(["bash", "-c", heredoc(script)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr.readline() == "started\n"
    assert partial.exists()
    proc.stdin.close()  # what the remote end sees when the client is interrupted
    assert proc.wait(timeout=10) != 0
    assert not partial.exists()


def test_failed_command_reports_its_line(tmp_path):
    mark = new_marker()
    script = lib_script(tmp_path, "bad", mark)
    proc = subprocess.Popen(["bash", "-c", heredoc(script)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    result = parse_result(proc.stdout.read(), mark)  # stdin stays open, as an SSH channel's
    assert proc.wait(timeout=10) == 1
    assert result["step"] == "one" and result["kind"] == "failed"
    assert "command failed: false" in result["error"]


def test_the_result_line_holds_any_text_as_json(tmp_path):
    mark = new_marker()
    script = lib_script(tmp_path, "text", mark)
    proc = subprocess.Popen(["bash", "-c", heredoc(script)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert parse_result(proc.stdout.read(), mark)["text"] == TEXT.replace("\x01", "")
    assert proc.wait(timeout=10) == 0


# ---- Session: one script at a time, facts kept until a change -----------------------------

@dataclass(frozen=True)
class Inputs:
    value: str = "x"


READ = Script("read", Inputs, lambda raw, inputs: raw["n"], requires=("n",))
CHANGE = Script("change", Inputs, lambda raw, inputs: raw["n"], requires=("n",), changes=True)


@dataclass
class Ran:
    stdout: str
    exited: int = 0


def session(monkeypatch, answers: list, dry_run=False):
    """A Session whose connection answers each script with the next of `answers`
    (a dict as the script's result, or raw stdout); `.ran` lists the scripts run."""
    s = Session(Connection("10.0.0.1"), settings({"host_key_policy": "off"}), dry_run=dry_run,
                out=io.StringIO())
    s.ran = []
    monkeypatch.setattr(s, "open", lambda: None)
    monkeypatch.setattr(s, "render", lambda script, inputs, marker="@@dry-run@@":
                        f"#!/bin/bash\n# {script.template}\n{marker}")

    def run(command, **kwargs):
        mark = command.rsplit("\n", 3)[-3]
        s.ran.append(command.split("\n")[2].removeprefix("# "))
        answer = answers.pop(0)
        if isinstance(answer, dict):
            answer = f"{mark}{json.dumps(answer)}\n"
        return Ran(answer)

    monkeypatch.setattr(s.connection, "run", run)
    return s


def test_a_change_empties_the_facts_and_a_read_keeps_them(monkeypatch):
    s = session(monkeypatch, [{"n": 1}, {"n": 2}])
    s.facts["status"] = "measured"
    assert s.run(READ, Inputs()) == 1 and s.facts == {"status": "measured"}
    assert s.run(CHANGE, Inputs()) == 2 and s.facts == {}
    assert s.ran == ["read", "change"]


def test_a_failed_change_empties_the_facts_too(monkeypatch):
    s = session(monkeypatch, [{"error": "the host lock is held", "kind": "refused"}])
    s.facts["status"] = "measured"
    with pytest.raises(UnsafeError, match="10.0.0.1: the host lock is held") as caught:
        s.run(CHANGE, Inputs())
    assert caught.value.result == {"error": "the host lock is held", "kind": "refused"}
    assert s.facts == {}


def test_a_dry_run_runs_reads_and_skips_changes(monkeypatch):
    s = session(monkeypatch, [{"n": 1}], dry_run=True)
    assert s.run(READ, Inputs()) == 1
    assert s.run(CHANGE, Inputs()) is None
    assert s.ran == ["read"]


@pytest.mark.parametrize("answer, error, message", [
    ({"error": "no installation", "kind": "config"}, ConfigError, "10.0.0.1: no installation"),
    ({"error": "docker is gone"}, OperationError, "10.0.0.1: docker is gone"),
    ({"m": 1}, OperationError, "10.0.0.1: read ended without a valid result (the result lacks n"),
    ("some output\nno result\n", OperationError, "10.0.0.1: read ended without a valid result (no "
                                                 "result line; exit 0)"),
])
def test_what_a_script_reports_becomes_one_error(monkeypatch, answer, error, message):
    s = session(monkeypatch, [answer])
    with pytest.raises(error) as caught:
        s.run(READ, Inputs())
    assert str(caught.value).startswith(message)


def test_the_heartbeat_comes_several_times_within_the_link_timeout():
    s = Session(Connection("h"), settings({"host_key_policy": "off", "link_timeout": 60}))
    assert s.heartbeat == 15
    assert Script("x", NoInputs, lambda raw, inputs: raw).changes is False


# ---- host keys on every hop: ProxyJump gateways and ProxyCommand --------------------------

def known_hosts_file(tmp_path, *hosts: str) -> str:
    key = paramiko.RSAKey.generate(1024)
    path = tmp_path / "known_hosts"
    path.write_text("".join(f"{host} ssh-rsa {key.get_base64()}\n" for host in hosts))
    return str(path)


def record_policies(monkeypatch) -> dict:
    """The missing-host-key policy each SSHClient is given from now on, by id(client)."""
    policies = {}
    original = paramiko.SSHClient.set_missing_host_key_policy

    def record(client, policy):
        policies[id(client)] = policy
        original(client, policy)

    monkeypatch.setattr(paramiko.SSHClient, "set_missing_host_key_policy", record)
    return policies


def jump_chain() -> Connection:
    """target:2222 reached through ProxyJump bastion-2 -> bastion-1 (bastion-1 outermost)."""
    outer = Connection("bastion-1")
    return Connection("target", port=2222,
                      gateway=Connection("bastion-2", port=2200, gateway=outer))


@pytest.mark.parametrize("policy, expected", [("strict", paramiko.RejectPolicy),
                                              ("accept-new", paramiko.AutoAddPolicy)])
def test_every_proxyjump_hop_checks_host_keys_like_the_target(tmp_path, monkeypatch, policy,
                                                              expected):
    policies = record_policies(monkeypatch)
    path = known_hosts_file(tmp_path, "bastion-1", "[bastion-2]:2200", "[target]:2222")
    target = jump_chain()
    s = Session(target, settings({"host_key_policy": policy, "known_hosts": path,
                                  "connect_timeout": 9}))
    assert [host_label(hop) for hop in hops(target)] == ["bastion-1", "bastion-2:2200",
                                                         "target:2222"]
    for hop in hops(target):
        assert isinstance(policies[id(hop.client)], expected)
        assert len(hop.client.get_host_keys()) == 3
        assert hop.connect_timeout == 9 and hop.connect_kwargs["banner_timeout"] == 9
    assert s.label == "target:2222"


def test_a_gateway_is_opened_first_and_named_when_it_is_refused(tmp_path, monkeypatch):
    target = jump_chain()
    s = Session(target, settings({"known_hosts": known_hosts_file(tmp_path, "[target]:2222")}))
    opened = []

    def refuse(hop):
        def open_():
            opened.append(host_label(hop))
            raise paramiko.SSHException(f"Server '{hop.host}' not found in known_hosts")
        return open_

    for hop in hops(target):
        monkeypatch.setattr(hop, "open", refuse(hop))
    with pytest.raises(ConnectError) as caught:
        s.open()
    assert opened == ["bastion-1"]  # nothing went on towards the target
    assert str(caught.value).startswith("target:2222: ProxyJump gateway bastion-1: unknown "
                                        "host key (not in ")
    assert caught.value.exit_code == 3 and "\n" not in str(caught.value)


def test_a_gateway_that_will_not_forward_is_one_line_naming_it():
    exc = paramiko.ChannelException(1, "Administratively prohibited")
    error = connect_error("target:2222", exc, settings({}), gateway="bastion-2:2200")
    assert str(error) == ("target:2222: the ProxyJump gateway bastion-2:2200 would not forward "
                          "the connection (Administratively prohibited; its sshd needs "
                          "AllowTcpForwarding)")


def test_a_proxycommand_gateway_is_run_and_the_target_key_is_still_checked(tmp_path,
                                                                          monkeypatch):
    """A ProxyCommand is a local command, not an SSH hop of ours: the command checks what
    it connects to (`ssh -W` with OpenSSH's own known_hosts), trigger-maint checks the
    target's key (docs/configuration.md, "Gateways")."""
    policies = record_policies(monkeypatch)
    command = "ssh -W %h:%p bastion"
    target = Connection("target", gateway=command)
    s = Session(target, settings({"known_hosts": known_hosts_file(tmp_path, "other")}))
    assert hops(target) == [target] and proxy_command(target) == command
    assert isinstance(policies[id(target.client)], paramiko.RejectPolicy)
    failures = iter([paramiko.SSHException("No existing session"),
                     paramiko.SSHException("Server 'target' not found in known_hosts")])

    def fail():
        raise next(failures)

    monkeypatch.setattr(target, "open", fail)
    with pytest.raises(ConnectError, match=r"^target: cannot connect through ProxyCommand "
                                           r"`ssh -W %h:%p bastion` \(No existing session\)$"):
        s.open()
    with pytest.raises(ConnectError, match=r"^target: unknown host key \(not in "):
        s.open()
