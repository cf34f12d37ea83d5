"""Fixtures for integration tests on the rig's loopback Docker hosts (see tests/rig/README.md).

TRIGGER_RIG_HOSTS (default "1,2,3") picks the hosts this pytest process may use."""

import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.rig import Rig
from tests.rig.config import KNOWN_HOSTS, REGISTRY
from tests.rig.fake_github import make_server

UNREACHABLE_GITHUB = "http://127.0.0.1:9"


def assigned_hosts() -> list[int]:
    """Host numbers this pytest process may use."""
    return [int(n) for n in os.environ.get("TRIGGER_RIG_HOSTS", "1,2,3").split(",") if n.strip()]


@pytest.fixture(scope="session")
def rig() -> Rig:
    """The rig, installed and up (fast when it already is)."""
    rig = Rig()
    rig.install()
    rig.up(max(assigned_hosts()))
    return rig


@pytest.fixture(scope="session")
def rig_hosts(rig) -> list:
    """RigHost objects of the hosts assigned to this pytest process (not locked, not reset)."""
    return [rig.host(k) for k in assigned_hosts()]


def _fresh_host(rig: Rig, index: int, layout: str):
    numbers = assigned_hosts()
    if index >= len(numbers):
        pytest.skip(f"needs {index + 1} rig hosts, TRIGGER_RIG_HOSTS has {len(numbers)}")
    host = rig.host(numbers[index])
    with host.lock():
        host.reset(layout)
        yield host


@pytest.fixture
def v4_host(rig):
    """1st assigned host, locked, fresh v4 installation at v4.5.10."""
    yield from _fresh_host(rig, 0, "v4")


@pytest.fixture
def v3_host(rig):
    """2nd assigned host, locked, fresh v3 installation at v3.3.17."""
    yield from _fresh_host(rig, 1, "v3")


@pytest.fixture
def runbook_host(rig):
    """3rd assigned host, locked, fresh hand-made (runbook) installation at v4.5.10."""
    yield from _fresh_host(rig, 2, "runbook")


@pytest.fixture
def host(v4_host):
    """Same as v4_host."""
    return v4_host


class FakeGithub:
    """The fake GitHub API on a free port; call it to restart with extra advisories."""

    def __init__(self):
        self.server = None
        self.port = 0

    def __call__(self, advisories=()) -> "FakeGithub":
        self.stop()
        self.server = make_server(self.port, list(advisories))
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request_log(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.url}/_requests", timeout=10) as resp:
            return json.load(resp)["requests"]

    def requests(self) -> int:
        """Number of API requests served so far."""
        return len(self.request_log())

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def github():
    """Fake GitHub API (releases, advisories); github(advisories=[...]) restarts it with more."""
    fake = FakeGithub()
    fake()
    yield fake
    fake.stop()


@pytest.fixture
def cli(request, tmp_path):
    """cli(host, *args, env=None, input=None, timeout=600): run the real trigger-maint."""
    exe = Path(sys.executable).parent / "trigger-maint"
    work = tmp_path / "cwd"
    work.mkdir()

    def run(host, *args, env=None, input=None, timeout=600) -> subprocess.CompletedProcess:
        github = (request.getfixturevalue("github").url if "github" in request.fixturenames
                  else UNREACHABLE_GITHUB)
        full_env = {**os.environ,
                    "FABRIC_TRIGGER_KNOWN_HOSTS": str(KNOWN_HOSTS),
                    "FABRIC_TRIGGER_REGISTRY": REGISTRY,
                    "FABRIC_TRIGGER_GITHUB_API": github,
                    "FABRIC_TRIGGER_CACHE_DIR": str(tmp_path / "cache"),
                    "FABRIC_TRIGGER_REPORT_DIR": str(tmp_path / "reports"),
                    **(env or {})}
        return subprocess.run([str(exe), *host.fab_args(), *map(str, args)], cwd=work,
                              env=full_env, input=input, text=True, capture_output=True,
                              timeout=timeout,
                              stdin=subprocess.DEVNULL if input is None else None)

    return run
