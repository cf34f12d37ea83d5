"""Checks that a rendered script is valid bash and shellcheck-clean."""

from __future__ import annotations

import shutil
import subprocess


def assert_clean_bash(script: str) -> None:
    """`bash -n` accepts the script and shellcheck finds no warning."""
    syntax = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    assert shutil.which("shellcheck"), "shellcheck is installed by tests/rig install"
    # SC2034: the shared includes set variables that not every script reads.
    lint = subprocess.run(["shellcheck", "-s", "bash", "-S", "warning", "-e", "SC2034", "-"],
                          input=script,
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
