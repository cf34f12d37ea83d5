"""The webhook: what is sent, when, and that a failing receiver is only a warning."""

from __future__ import annotations

import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from trigger_maint import checklist as cl
from trigger_maint import notify
from trigger_maint.config import settings
from trigger_maint.errors import OperationError
from trigger_maint.maintaining import Outcome, Policy, Step

from .test_maintaining import failed, make_run, research

FILES = {"markdown": "/r/a.md", "json": "/r/a.json"}


@pytest.fixture
def receiver():
    """A local HTTP server that records each POST and answers with `receiver.status`."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            server.posts.append((self.path, self.headers["Content-Type"], json.loads(body)))
            self.send_response(server.status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.posts, server.status = [], 200
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/secret-token"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def finished(**replace):
    run = make_run(**replace)
    run.checklist = cl.build(run, 80)
    return run


def test_json_payload_reaches_the_receiver(receiver):
    s = settings({"webhook_url": receiver.url})
    run = finished()
    assert notify.notify(s, run, run.checklist, FILES) == \
        f"sent to http://127.0.0.1:{receiver.server_address[1]}"
    path, kind, body = receiver.posts[0]
    assert path == "/hooks/T0/secret-token" and kind == "application/json"
    assert body["event"] == "trigger-maint.maintain" and body["host"] == "127.0.0.29:2222"
    assert body["exit_code"] == 0 and body["changed"] == ["update"]
    assert body["version_before"] == "v4.5.10" and body["version_after"] == "v4.5.12"
    assert [i["ticked"] for i in body["checklist"]] == [True] * 8
    assert "Version:" in body["summary"]


def test_slack_payload_is_text_with_the_summary_and_boxes(receiver):
    s = settings({"webhook_url": receiver.url, "webhook_format": "slack", "lang": "nl"})
    run = finished(policy=Policy(no_update=True, lang="nl"),
                   update=Step("update", Outcome.SKIPPED, reason="--no-update"))
    notify.notify(s, run, run.checklist, FILES)
    body = receiver.posts[0][2]
    assert list(body) == ["text"]
    assert body["text"].startswith("*trigger-maint maintain 127.0.0.29:2222: exit code 1*\n```\n")
    assert ":x: Update uitgevoerd (indien beschikbaar) (v4.5.12 beschikbaar" in body["text"]
    assert ":white_check_mark: Backup gemaakt en geverifieerd" in body["text"]


def test_a_failing_receiver_is_a_warning_without_the_secret_path(receiver):
    receiver.status = 500
    s = settings({"webhook_url": receiver.url})
    run = finished()
    outcome = notify.notify(s, run, run.checklist, FILES)
    port = receiver.server_address[1]
    assert outcome == f"failed: webhook http://127.0.0.1:{port}: HTTP 500"
    assert "secret-token" not in outcome
    assert run.exit_code == 0  # unchanged


def test_an_unreachable_receiver_is_a_warning(receiver):
    port = receiver.server_address[1]
    receiver.shutdown()
    receiver.server_close()
    s = settings({"webhook_url": f"http://127.0.0.1:{port}/x"})
    run = finished()
    outcome = notify.notify(s, run, run.checklist, FILES)
    assert outcome.startswith(f"failed: webhook http://127.0.0.1:{port}: ")


def test_a_malformed_url_that_got_past_the_configuration_is_a_warning():
    s = dataclasses.replace(settings({}), webhook_url="ftp://hooks.example/T0/secret-token")
    run = finished()
    outcome = notify.notify(s, run, run.checklist, FILES)
    assert outcome == "failed: webhook ftp://hooks.example: not an http(s) URL"


def test_when_the_webhook_is_called(receiver):
    quiet = finished(research=research(target=None),
                     update=Step("update", Outcome.SKIPPED, reason="up to date"))
    assert quiet.exit_code == 0 and cl.changed(quiet) == []
    updated = finished()
    broken = finished(update=failed("update", OperationError("rolled back")))
    cases = {"always": (True, True, True), "change": (False, True, True),
             "failure": (False, False, True)}
    for when, expected in cases.items():
        s = settings({"webhook_url": receiver.url, "webhook_on": when})
        assert tuple(notify.wanted(s, run) for run in (quiet, updated, broken)) == expected
    assert not notify.wanted(settings({}), broken)  # no URL configured
    dry = finished(policy=Policy(dry_run=True))
    assert not notify.wanted(settings({"webhook_url": receiver.url}), dry)
    assert notify.notify(settings({}), broken, broken.checklist, FILES) == ""
    assert receiver.posts == []
