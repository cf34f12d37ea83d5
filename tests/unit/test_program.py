"""The command line itself: flags, config files and env vars, without any host."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).with_name("trigger-maint")
# Nothing listens here: a run that got past validation would fail with exit 3, not 2.
HOST = ["-H", "root@127.0.0.1:9"]


def run(*args, cwd=None, env=None):
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_version_and_task_list():
    assert run("--version").stdout.startswith("trigger-maint 0.1.0")
    listing = run("-l").stdout
    assert "preflight" in listing


def test_unknown_flag_is_usage_error():
    done = run(*HOST, "preflight", "--bogus")
    assert done.returncode == 2
    assert "--bogus" in done.stderr


def test_project_fabric_yaml_is_read_and_validated(tmp_path):
    (tmp_path / "fabric.yaml").write_text("trigger:\n  bakups_keep: 3\n")
    done = run(*HOST, "preflight", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"trigger-maint: {tmp_path}/fabric.yaml: "
                                   "trigger.bakups_keep: unknown setting (see "
                                   "docs/configuration.md)")


def test_environment_overrides_file_and_flag_overrides_environment(tmp_path):
    (tmp_path / "fabric.yaml").write_text("trigger:\n  layout: v4\n")
    env = {"FABRIC_TRIGGER_LAYOUT": "v9"}
    done = run(*HOST, "preflight", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert done.stderr == ("trigger-maint: trigger.layout (FABRIC_TRIGGER_LAYOUT): must be one "
                           "of auto, v4, v3, runbook, got 'v9'\n")
    done = run(*HOST, "preflight", "--layout", "v3", cwd=tmp_path, env=env)
    assert done.returncode == 3, done.stderr  # valid now: it tried to connect
    assert "cannot connect" in done.stderr


def test_connection_refused_is_one_line_exit_3():
    done = run(*HOST, "preflight", "--json")
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and "127.0.0.1:9: cannot connect" in done.stderr
    assert '"exit_code": 3' in done.stdout


def test_a_chain_frames_each_task_with_a_header_and_its_exit():
    done = run("-H", "root@127.0.0.1:9,root@127.0.0.1:10", "preflight", "--json")
    lines = done.stderr.splitlines()
    assert done.returncode == 3
    assert lines[0] == "127.0.0.1:9 | == preflight"
    assert "cannot connect" in lines[1]
    assert lines[2].startswith("127.0.0.1:9 | == preflight: exit 3 in ")
    assert len(lines) == 3  # Invoke stops at the first failure


def test_fabfile_shim_serves_fab(tmp_path):
    fab = Path(sys.executable).with_name("fab")
    done = subprocess.run([str(fab), "-l"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "preflight" in done.stdout


# Configuration problems: one line, exit 2, the file or variable named, no secret shown.

TOKEN = "ghp_SECRETTOKEN0123456789"
HOOK = "https://hooks.slack.com/services/T0AAA/B0BBB/SECRETHOOKPATH?k=SECRETQUERY"
SECRETS = f"  github_token: {TOKEN}\n  webhook_url: {HOOK}\n"
QUIET = {"FABRIC_TRIGGER_KNOWN_HOSTS": "/dev/null"}


def assert_one_line_without_secrets(done, code=2):
    assert done.returncode == code, done.stderr
    assert done.stderr.startswith("trigger-maint: ") and done.stderr.count("\n") == 1, \
        done.stderr
    for secret in ("SECRET", TOKEN):
        assert secret not in done.stdout + done.stderr


@pytest.mark.parametrize("text, message", [
    (f"trigger:\n{SECRETS}  backups_keep: [\n",
     "fabric.yaml: YAML syntax error at line 5, column 1: expected the node content"),
    (f'trigger:\n  github_token: "{TOKEN}\n', "fabric.yaml: YAML syntax error at line 3"),
    (f"trigger:\n  webhook_url: {HOOK}\n\tbackups_keep: 3\n", "fabric.yaml: YAML syntax error"),
    ("trigger:\n  - a\n", "fabric.yaml: trigger: expected a mapping of settings, got a list"),
    ("trigger: yes please\n",
     "fabric.yaml: trigger: expected a mapping of settings, got text"),
    ("trigger:\n", "fabric.yaml: trigger: is empty; give settings under it or remove it"),
    (f"trigger:\n{SECRETS}  hosts: [a, b]\n",
     "fabric.yaml: trigger.hosts: expected a mapping, got a list"),
    (f"trigger:\n{SECRETS}  groups: eu\n",
     "fabric.yaml: trigger.groups: expected a mapping, got 'eu'"),
    (f"- {TOKEN}\n", "fabric.yaml: expected a mapping of settings at the top level"),
    (f"trigger:\n  github_token: [{TOKEN}]\n",
     "fabric.yaml: trigger.github_token: expected text, got a list"),
    (f"trigger:\n  webhook_url:\n    url: '{HOOK}'\n",
     "fabric.yaml: trigger.webhook_url: expected text, got a mapping"),
    ("trigger:\n  webhook_url: hooks.slack.com/services/SECRETHOOKPATH\n",
     "trigger.webhook_url: must start with https:// or http:// (the value has no scheme)"),
    ("trigger:\n  webhook_url: ftp://u:SECRETPASS@hooks.slack.com/SECRETHOOKPATH\n",
     "trigger.webhook_url: must start with https:// or http://, got ftp://hooks.slack.com"),
    (f"trigger:\n{SECRETS}  command_timeout: 0\n",
     "trigger.command_timeout: must be between 60 and 86400 seconds, got 0"),
    (f"trigger:\n{SECRETS}  backup_dir: /var/backups/\n",
     "trigger.backup_dir: must not be a system folder, got '/var/backups'"),
    (f"connect_kwargs: [{TOKEN}]\ntrigger:\n{SECRETS}",
     "fabric.yaml: cannot be merged with the other config files"),
])
def test_a_broken_project_file_is_one_line_without_secrets(tmp_path, text, message):
    (tmp_path / "fabric.yaml").write_text(text)
    done = run(*HOST, "preflight", cwd=tmp_path, env=QUIET)
    assert_one_line_without_secrets(done)
    assert message in done.stderr
    if message.startswith("fabric.yaml"):
        assert done.stderr.startswith(f"trigger-maint: {tmp_path}/fabric.yaml: ")


@pytest.mark.parametrize("env, message", [
    ({"FABRIC_TRIGGER_BACKUPS_KEEP": "abc"},
     "trigger.backups_keep (FABRIC_TRIGGER_BACKUPS_KEEP): expected a number, got 'abc'"),
    ({"FABRIC_TRIGGER_BAKUPS_KEEP": "3"}, "FABRIC_TRIGGER_BAKUPS_KEEP: no such setting"),
    ({"FABRIC_TRIGGER_GROUPS_EU": "a,b"}, "FABRIC_TRIGGER_GROUPS_EU: trigger.groups can only"),
    ({"FABRIC_TRIGGER_COMMAND_TIMEOUT": "-1"},
     "trigger.command_timeout (FABRIC_TRIGGER_COMMAND_TIMEOUT): must be between 60 and "),
    ({"FABRIC_TRIGGER_WEBHOOK_URL": "ftp://hooks.slack.com/SECRETHOOKPATH"},
     "(FABRIC_TRIGGER_WEBHOOK_URL): must start with https:// or http://, got "
     "ftp://hooks.slack.com"),
])
def test_a_bad_environment_variable_is_one_line_naming_it(tmp_path, env, message):
    (tmp_path / "fabric.yaml").write_text(f"trigger:\n{SECRETS}")
    done = run(*HOST, "status", cwd=tmp_path, env={**QUIET, **env})
    assert_one_line_without_secrets(done)
    assert message in done.stderr


def test_env_secrets_are_not_shown_either(tmp_path):
    env = {**QUIET, "FABRIC_TRIGGER_GITHUB_TOKEN": TOKEN, "FABRIC_TRIGGER_WEBHOOK_URL": HOOK,
           "FABRIC_TRIGGER_BACKUPS_KEEP": "many"}
    assert_one_line_without_secrets(run(*HOST, "preflight", cwd=tmp_path, env=env))


def test_a_list_from_the_environment_is_accepted(tmp_path):
    env = {**QUIET, "FABRIC_TRIGGER_COMPOSE_FILES": "a.yml,b.yml"}
    done = run(*HOST, "preflight", cwd=tmp_path, env=env)
    assert done.returncode == 3 and "cannot connect" in done.stderr  # valid: it tried


def test_user_file_and_f_file_are_named(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".fabric.yaml").write_text("trigger: [a]\n")
    done = run(*HOST, "preflight", cwd=tmp_path, env={**QUIET, "HOME": str(home)})
    assert_one_line_without_secrets(done)
    assert done.stderr == (f"trigger-maint: {home}/.fabric.yaml: trigger: expected a mapping "
                           "of settings, got a list\n")
    extra = tmp_path / "extra.yaml"
    extra.write_text("trigger:\n  hosts: [a]\n")
    done = run("-f", str(extra), *HOST, "preflight", cwd=tmp_path, env=QUIET)
    assert done.stderr == f"trigger-maint: {extra}: trigger.hosts: expected a mapping, got a " \
                          "list\n"
    done = run("-f", str(tmp_path / "missing.yaml"), *HOST, "preflight", cwd=tmp_path, env=QUIET)
    assert done.returncode == 2
    assert done.stderr == f"trigger-maint: -f/--config {tmp_path}/missing.yaml: no such file\n"


def test_precedence_files_then_f_file_then_environment_then_flags(tmp_path):
    (tmp_path / "fabric.yaml").write_text("trigger:\n  layout: v9\n")
    assert run(*HOST, "preflight", cwd=tmp_path, env=QUIET).returncode == 2
    extra = tmp_path / "extra.yaml"
    extra.write_text("trigger:\n  layout: v3\n")
    done = run("-f", str(extra), *HOST, "preflight", cwd=tmp_path, env=QUIET)
    assert done.returncode == 3, done.stderr  # the -f file wins over ./fabric.yaml
    extra.write_text("trigger:\n  layout: v8\n")
    done = run("-f", str(extra), *HOST, "preflight", cwd=tmp_path,
               env={**QUIET, "FABRIC_TRIGGER_LAYOUT": "v4"})
    assert done.returncode == 3, done.stderr  # the environment wins over the -f file


def test_invoke_files_and_variables_are_not_read(tmp_path):
    (tmp_path / "invoke.yaml").write_text("trigger:\n  layout: v9\n")
    done = run(*HOST, "preflight", cwd=tmp_path,
               env={**QUIET, "INVOKE_TRIGGER_LAYOUT": "v9"})
    assert done.returncode == 3, done.stderr


@pytest.mark.parametrize("name, text, message", [
    ("extra.py", f"token = '{TOKEN}'\nx = 1 / 0\n", "cannot be loaded (ZeroDivisionError)"),
    ("extra.toml", f"token = '{TOKEN}'\n", "unsupported file type (use .yaml, .yml, .json, .py)"),
    ("extra.json", '{"trigger": [1,\n', "JSON syntax error at line 2, column 1: Expecting value"),
])
def test_other_kinds_of_f_file(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    done = run("-f", name, *HOST, "preflight", cwd=tmp_path, env=QUIET)
    assert_one_line_without_secrets(done)
    assert done.stderr == f"trigger-maint: {name}: {message}\n"


def test_inventory_names_that_share_a_variable_name(tmp_path):
    (tmp_path / "fabric.yaml").write_text(
        "trigger:\n  hosts:\n    a_b: {host: x}\n    a: {b_host: y}\n")
    done = run(*HOST, "preflight", cwd=tmp_path, env=QUIET)
    assert_one_line_without_secrets(done)
    assert "two settings share one environment variable name" in done.stderr


def test_no_host_for_a_task_that_needs_one_is_a_usage_error(tmp_path):
    done = run("preflight", cwd=tmp_path, env=QUIET)
    assert_one_line_without_secrets(done)
    assert "no host given: use -H" in done.stderr
