import io
import socket
import subprocess

import paramiko
import pytest

from trigger_maint.config import settings
from trigger_maint.errors import ConnectError
from trigger_maint.remote import MARK, HostPrefixedStream, connect_error, heredoc, parse_result


def test_result_is_the_last_marked_line():
    out = f"noise\n{MARK}{{\"a\": 1}}\nmore\n{MARK}{{\"b\": 2}}\n"
    assert parse_result(out) == {"b": 2}
    assert parse_result("no result here") is None
    assert parse_result(f"{MARK}{{broken") is None
    assert parse_result(f"{MARK}[1]") is None


def test_heredoc_runs_the_script_verbatim_with_stdin_on_fd3():
    script = "#!/bin/bash\nset -euo pipefail\necho \"$(( 6 * 7 ))\" '$HOME'\ncat <&3\n"
    done = subprocess.run(["bash", "-c", heredoc(script)], input="from-channel\n",
                          capture_output=True, text=True)
    assert done.stdout == "42 $HOME\nfrom-channel\n"


def test_progress_lines_are_prefixed_by_host():
    target = io.StringIO()
    stream = HostPrefixedStream("web-1", target)
    stream.write("one\ntw")
    stream.write("o\nthree")
    stream.flush()
    assert target.getvalue() == "web-1 | one\nweb-1 | two\nweb-1 | three\n"
    assert stream.lines == ["one", "two", "three"]


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


def test_script_stops_and_cleans_up_when_the_channel_closes(tmp_path):
    from trigger_maint.render import render

    marker = tmp_path / "partial"
    (tmp_path / "slow.sh.j2").write_text(
        '#!/bin/bash\nset -euo pipefail\n{% include "_lib.sh.j2" %}\n'
        'touch {{ marker | quote }}\ntm_cleanup rm -f {{ marker | quote }}\n'
        'tm_log started\nsleep 30\ntm_emit\n')
    script = render("slow", template_dir=str(tmp_path), marker=str(marker))
    proc = subprocess.Popen(["bash", "-c", heredoc(script)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr.readline() == "started\n"
    assert marker.exists()
    proc.stdin.close()  # what the remote end sees when the client is interrupted
    assert proc.wait(timeout=10) != 0
    assert not marker.exists()


def test_failed_command_reports_its_line(tmp_path):
    from trigger_maint.render import render

    (tmp_path / "bad.sh.j2").write_text(
        '#!/bin/bash\nset -euo pipefail\n{% include "_lib.sh.j2" %}\n'
        'tm_put_str step one\nfalse\ntm_emit\n')
    proc = subprocess.Popen(["bash", "-c", heredoc(render("bad", template_dir=str(tmp_path)))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    result = parse_result(proc.stdout.read())  # stdin stays open, as an SSH channel's does
    assert proc.wait(timeout=10) == 1
    assert result["step"] == "one" and result["kind"] == "failed"
    assert "command failed: false" in result["error"]
