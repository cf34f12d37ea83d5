"""Every remote script: it renders from its declared inputs to clean bash; no template sees
the settings; each host name is spelled in one place; the one private Fabric name we use is
pinned; a script's result is the last line after this run's own marker."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import io
import pkgutil
import re
import subprocess
import tokenize
import typing
from pathlib import Path

import fabric
import pytest
from fabric import ThreadingGroup

from trigger_maint import fabric_compat, hostpaths, scripts
from trigger_maint.hostpaths import HostPaths
from trigger_maint.scripts.base import (
    MARK_PREFIX,
    ResultError,
    Script,
    new_marker,
    parse_result,
)

from .builders import HOSTILE, runner, script_inputs
from .builders import plans as change_plans
from .shell import assert_clean_bash

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
PACKAGE = ROOT / "trigger_maint"


def all_scripts() -> dict[str, Script]:
    """Every module-level Script of trigger_maint.scripts, by module and name."""
    found = {}
    for module in pkgutil.iter_modules(scripts.__path__):
        loaded = importlib.import_module(f"{scripts.__name__}.{module.name}")
        for name, value in vars(loaded).items():
            if isinstance(value, Script):
                found[f"{module.name}.{name}"] = value
    return found


SCRIPTS = all_scripts()


def test_every_template_but_the_includes_has_its_script_object():
    templates = {p.name.removesuffix(".sh.j2") for p in TEMPLATES.glob("*.sh.j2")
                 if not p.name.startswith("_")}
    runner_only = {"runner"}  # rendered by scripts.changes.runner_text, run by transaction
    assert {s.template for s in SCRIPTS.values()} | runner_only == templates


# ---- (1) every script renders to clean bash ----------------------------------------------

@pytest.mark.parametrize("name", sorted(SCRIPTS))
@pytest.mark.parametrize("where", [
    {}, {"layout": "runbook", "path": HOSTILE, "backup_dir": "/srv/back ups of 'trigger'"}])
def test_every_script_renders_clean_bash_from_plausible_inputs(name, where):
    script = SCRIPTS[name]
    for inputs in script_inputs(script.template, **where):
        text = script.render(inputs, new_marker(), heartbeat=15)
        assert text.startswith("#!/bin/bash\nset -euo pipefail\n"), name
        assert_clean_bash(text)


def test_a_script_takes_only_its_own_inputs():
    backup = SCRIPTS["backups.BACKUP"]
    with pytest.raises(TypeError, match="inputs must be BackupInputs"):
        backup.render(script_inputs("verify")[0], new_marker())


@pytest.mark.parametrize("kind", ["update", "update-current", "rollback", "restore"])
def test_the_runner_of_every_plan_renders_clean_bash(kind):
    plan = change_plans()[kind]
    text = runner(plan)
    assert_clean_bash(text)
    assert [line.split()[1:3] for line in text.splitlines()
            if line.startswith("  tm_do ")] == [[str(n), s.name] for n, s in
                                                 enumerate(plan.forward, 1)]


def test_hostile_values_reach_bash_as_data():
    inputs = script_inputs("preflight", path=HOSTILE)[0]
    # clean bash: test_every_script_renders_clean_bash_from_plausible_inputs
    text = SCRIPTS["preflight.PREFLIGHT"].render(inputs, new_marker())
    line = next(x for x in text.splitlines() if x.startswith("TM_PATH="))
    shown = subprocess.run(["bash", "-c", line + '\nprintf %s "$TM_PATH"'],
                           capture_output=True, text=True)
    assert shown.stdout == HOSTILE


# ---- (2) no template sees the settings ---------------------------------------------------

def test_no_template_references_the_settings():
    found = [f"{path.name}:{n}: {line.strip()}"
             for path in sorted(TEMPLATES.glob("*.j2"))
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"\bsettings\b", line)]
    assert found == []


def test_no_script_inputs_carry_the_settings():
    from trigger_maint.config import Settings

    def types_of(kind, seen=()):
        """Every field type of the dataclass `kind` and of the dataclasses it holds."""
        for name, hint in typing.get_type_hints(kind).items():
            yield name, hint
            if dataclasses.is_dataclass(hint) and hint not in seen:
                yield from types_of(hint, (*seen, kind))

    for name, script in SCRIPTS.items():
        found = list(types_of(script.inputs))
        assert ("install", scripts.base.InstallInputs) in found or script.template in (
            "backups", "tx-ack", "transaction", "reboot"), name
        assert all(hint is not Settings and "settings" not in field for field, hint in found), \
            name


# ---- (3) every host name is spelled in one place ----------------------------------------

def code_without_docs(path: Path) -> str:
    """A Python file's code: comments and docstrings left out (other strings kept)."""
    source = path.read_text()
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            docstrings.add(body[0].lineno)
    kept = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            continue
        if tok.type == tokenize.STRING and tok.start[0] in docstrings:
            continue
        kept.append(tok.string)
    return " ".join(kept)


def template_without_docs(path: Path) -> str:
    """A template's script: Jinja comments and shell comment lines left out."""
    text = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.S)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def sources() -> dict[str, str]:
    found = {str(p.relative_to(ROOT)): code_without_docs(p)
             for p in sorted(PACKAGE.rglob("*.py"))}
    found.update({str(p.relative_to(ROOT)): template_without_docs(p)
                  for p in sorted(TEMPLATES.glob("*.j2"))})
    return found


SOURCES = sources()


STAMP = "20261201-050759"
PATHS = HostPaths("/var/backups/trigger")
# Each name of a backup file or folder, and how hostpaths makes it.
SPELLINGS = {
    "trigger-db-": hostpaths.dump_name(STAMP),
    "trigger-files-": hostpaths.name("files", STAMP),
    "trigger-volume-": hostpaths.name("volume", STAMP, volume="shared"),
    ".sql.gz": hostpaths.dump_name(STAMP, "gzip"),
    ".sql.zst": hostpaths.dump_name(STAMP, "zstd"),
    "/rollback": PATHS.rollback,
    "/transactions": PATHS.transactions,
}


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_each_host_name_is_spelled_in_one_place(spelling):
    """hostpaths.py names every backup file and folder; the rest receive its names."""
    assert spelling in SPELLINGS[spelling]
    pattern = re.escape(spelling) + (r"\b" if spelling.startswith("/") else "")
    # A regex spells "\\.sql\\.gz": compared without its backslashes.
    elsewhere = sorted(name for name, text in SOURCES.items()
                       if name != "trigger_maint/hostpaths.py"
                       and re.search(pattern, text.replace("\\", "")))
    assert elsewhere == []


def test_the_spelling_check_sees_code_but_not_docs(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""A dump is trigger-db-<stamp>.sql.gz."""\n'
                      "# trigger-files- in a comment\n"
                      'NAME = f"trigger-volume-{x}.tar.gz"\n')
    code = code_without_docs(sample)
    assert "trigger-volume-" in code and "trigger-db-" not in code
    assert "trigger-files-" not in code


# ---- (4) the one private Fabric name ------------------------------------------------------

def test_fabric_still_has_the_private_group_method_we_call():
    version = ".".join(fabric.__version__.split(".")[:2])
    assert version in fabric_compat.CHECKED, (
        f"Fabric {fabric.__version__}: re-read Group._do and add {version} to "
        "fabric_compat.CHECKED")
    do = getattr(ThreadingGroup, "_do", None)
    assert callable(do)
    params = list(inspect.signature(do).parameters.values())
    assert [p.name for p in params[:2]] == ["self", "method"]
    assert [p.kind for p in params[2:]] == [inspect.Parameter.VAR_POSITIONAL,
                                            inspect.Parameter.VAR_KEYWORD]


def test_on_every_host_hands_the_method_to_group_do():
    calls = []

    class Recorder(ThreadingGroup):
        def _do(self, method, *args, **kwargs):
            calls.append((method, args, kwargs))
            return "result"

    assert fabric_compat.on_every_host(Recorder(), "run_job", 1, x=2) == "result"
    assert calls == [("run_job", (1,), {"x": 2})]


# ---- (5) the result is the last line after this run's marker ------------------------------

MARK = new_marker()
OTHER = new_marker()


def test_each_run_has_its_own_marker():
    assert MARK.startswith(MARK_PREFIX) and MARK.endswith("@@") and MARK != OTHER


@pytest.mark.parametrize("stdout, expected", [
    (f'{MARK}{{"a": 1}}\n', {"a": 1}),
    (f'noise\n{MARK}{{"a": 1}}\n\n', {"a": 1}),
    # a log line holding another run's marker, or this one earlier, is not the result
    (f'{OTHER}{{"b": 2}}\n{MARK}{{"a": 1}}\n', {"a": 1}),
    (f'{MARK}{{"b": 2}}\nlog\n{MARK}{{"a": 1}}\n', {"a": 1}),
    (f'{MARK}{{"error": "no installation", "kind": "config"}}\n',
     {"error": "no installation", "kind": "config"}),
])
def test_the_result_is_the_last_line_after_this_runs_marker(stdout, expected):
    assert parse_result(stdout, MARK, ("a",)) == expected


@pytest.mark.parametrize("stdout, problem", [
    ("", "no result line"),
    ("no result here\n", "no result line"),
    (f'{MARK}{{"a": 1}}\nlogged after the result\n', "no result line"),
    (f'{MARK}{{"a": 1}}\n{OTHER}{{"a": 2}}\n', "no result line"),
    (f'{OTHER}{{"a": 1}}\n', "no result line"),
    (f"log: {MARK}{{\"a\": 1}}\n", "no result line"),
    (f"{MARK}{{broken\n", "unreadable result"),
    (f"{MARK}[1]\n", "not a JSON object"),
    (f'{MARK}"text"\n', "not a JSON object"),
    (f"{MARK}null\n", "not a JSON object"),
    (f'{MARK}{{"b": 2}}\n', "lacks a"),
])
def test_anything_else_is_an_error(stdout, problem):
    with pytest.raises(ResultError, match=problem):
        parse_result(stdout, MARK, ("a",))
