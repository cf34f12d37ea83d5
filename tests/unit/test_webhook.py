"""The webhook's transport: one deadline for the whole call, and no secret in any message."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from trigger_maint import notify

# One deadline for the whole call: a receiver that trickles cannot hold the run.

@pytest.fixture
def trickler():
    """A loopback HTTP server that answers one byte every 0.1 s, in its headers
    (`trickler.part = "headers"`) or in its body."""
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nX-Slow: " + b"x" * 1000
            if server.part == "body":
                self.wfile.write(head + b"\r\n\r\n")
                head = b"y" * 1000
            try:
                for byte in head:
                    if stop.wait(0.1):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.part = "body"
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/secret-token"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    stop.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_trickling_receiver_is_cut_off_at_the_deadline(trickler, part):
    trickler.part = part
    started = time.monotonic()
    with pytest.raises(OSError) as err:
        notify.send(trickler.url, {"x": 1}, timeout=1)
    assert 1 <= time.monotonic() - started < 2
    assert str(err.value) == "no answer within 1 s"


def test_send_uses_the_module_deadline(trickler, monkeypatch):
    monkeypatch.setattr(notify, "TIMEOUT", 0.8)
    started = time.monotonic()
    with pytest.raises(OSError, match=r"^no answer within 0.8 s$"):
        notify.send(trickler.url, {"x": 1})
    assert time.monotonic() - started < 1.8


def test_an_unreachable_receiver_names_no_secret():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OSError) as err:
        notify.send(f"http://127.0.0.1:{port}/hooks/T0/secret-token?k=secret", {"x": 1},
                    timeout=2)
    assert str(err.value) == "Connection refused"


def test_where_shows_scheme_host_and_port_only():
    assert notify.where("https://u:pw@hooks.example:8443/T/secret?k=v#f") == \
        "https://hooks.example:8443"
    assert notify.where("http://[::1]:9000/secret") == "http://[::1]:9000"
    assert notify.where("https://hooks.example/secret") == "https://hooks.example"
    assert notify.where("https://hooks.example:port/secret") == "(an invalid URL)"


def test_scrub_takes_the_secret_parts_out_of_a_reason():
    url = "https://u:pw@hooks.example/T0/secret-token?k=secret-query"
    text = f"bad things at {url} and /T0/secret-token\nwith k=secret-query for u:pw"
    cleaned = notify.scrub(text, url)
    assert "secret" not in cleaned and "u:pw" not in cleaned and "\n" not in cleaned
