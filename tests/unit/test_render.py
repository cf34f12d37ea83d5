import subprocess

import jinja2
import pytest

from trigger_maint.config import settings
from trigger_maint.errors import ConfigError
from trigger_maint.render import environment, quote, render, tojson_quoted
from trigger_maint.scripts.base import install_inputs, new_marker
from trigger_maint.scripts.preflight import PREFLIGHT, PreflightInputs

from .shell import assert_clean_bash

HOSTILE = "/opt/t r$(touch /tmp/pwned)'`x`\"; rm -rf /"


def preflight(tree: dict) -> str:
    inputs = PreflightInputs(install_inputs(settings(tree)), "h", "")
    return PREFLIGHT.render(inputs, new_marker())


def test_quote_makes_one_word_and_lists_several():
    assert quote("a b") == "'a b'"
    assert quote(["a", "b c"]) == "a 'b c'"
    assert quote(("a", 3)) == "a 3"
    for refused in (None, True):
        with pytest.raises(jinja2.TemplateError):
            quote(refused)


def test_json_becomes_one_word():
    word = tojson_quoted({"b": "it's", "a": [1]})
    assert subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True,
                          text=True).stdout == '{"a": [1], "b": "it\'s"}'


def test_unquoted_text_is_refused():
    template = environment().from_string("echo {{ value }}")
    with pytest.raises(jinja2.TemplateError, match="use \\| quote"):
        template.render(value="x")
    assert template.render(value=3) == "echo 3"


def test_missing_variables_fail():
    with pytest.raises(jinja2.UndefinedError):
        environment().from_string("{{ nothing | quote }}").render()


def test_hostile_path_reaches_bash_as_data():
    script = preflight({"path": HOSTILE})  # clean bash: test_every_script_starts_strict
    line = next(x for x in script.splitlines() if x.startswith("TM_PATH="))
    shown = subprocess.run(["bash", "-c", line + '\nprintf %s "$TM_PATH"'],
                           capture_output=True, text=True)
    assert shown.stdout == HOSTILE


def test_user_template_folder_wins(tmp_path):
    (tmp_path / "preflight.sh.j2").write_text("#!/bin/bash\nset -euo pipefail\necho mine\n")
    mine = render("preflight", template_dir=str(tmp_path))
    assert mine.endswith("echo mine\n")
    assert_clean_bash(mine)
    inputs = PreflightInputs(install_inputs(settings({})), "h", "")
    assert PREFLIGHT.render(inputs, new_marker(), template_dir=str(tmp_path)).endswith(
        "echo mine\n")


def test_unknown_templates_and_folders_are_configuration_errors(tmp_path):
    with pytest.raises(ConfigError, match="no template nothing.sh.j2"):
        render("nothing")
    with pytest.raises(ConfigError, match="trigger.template_dir: no such folder"):
        render("preflight", template_dir=str(tmp_path / "missing"))


@pytest.mark.parametrize("tree", [{"layout": "auto"}, {"layout": "v4"}, {"layout": "v3"},
                                  {"layout": "runbook"}, {"path": HOSTILE}])
def test_every_script_starts_strict(tree):
    script = preflight(tree)
    assert script.splitlines()[1] == "set -euo pipefail"
    assert_clean_bash(script)
