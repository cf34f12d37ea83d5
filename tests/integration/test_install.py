"""trigger-maint as users install it: after a plain (not editable) `pip install .`, `fab` in
a clone and `trigger-maint` anywhere find every module and template; outside a clone a
one-line fabfile gives `fab` the tasks."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.rig.config import KNOWN_HOSTS, REGISTRY

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plain_install(tmp_path_factory) -> Path:
    """A new virtualenv with trigger-maint installed from the clone as a wheel would be; its
    dependencies come from the project's own environment (no download)."""
    venv = tmp_path_factory.mktemp("plain") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", str(REPO)],
                   check=True, cwd=venv.parent, capture_output=True)
    return venv


def run(argv, cwd, host):
    env = {**os.environ, "FABRIC_TRIGGER_KNOWN_HOSTS": str(KNOWN_HOSTS),
           "FABRIC_TRIGGER_REGISTRY": REGISTRY, "PYTHONPATH": ""}
    return subprocess.run([*argv, *host.fab_args(), "preflight"], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=120)


def test_fab_in_a_clone_and_trigger_maint_anywhere_after_a_plain_install(
        plain_install, rig_hosts, tmp_path):
    host = rig_hosts[0]
    python = str(plain_install / "bin" / "python")
    with host.lock():
        in_clone = run([python, "-m", "fabric"], REPO, host)
        assert in_clone.returncode == 0, in_clone.stderr
        assert "install     /opt/trigger" in in_clone.stdout
        elsewhere = run([str(plain_install / "bin" / "trigger-maint")], tmp_path, host)
        assert elsewhere.returncode == 0, elsewhere.stderr
        (tmp_path / "fabfile.py").write_text("from trigger_maint.tasks import ns  # noqa\n")
        fabfile = run([python, "-m", "fabric"], tmp_path, host)
        assert fabfile.returncode == 0, fabfile.stderr
    assert "site-packages" in subprocess.run(
        [python, "-c", "import trigger_maint.render as r; print(r.shipped_templates())"],
        cwd=tmp_path, capture_output=True, text=True).stdout
