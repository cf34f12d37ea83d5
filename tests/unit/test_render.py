import subprocess

import jinja2
import pytest

from trigger_maint.config import settings
from trigger_maint.layout import script_context
from trigger_maint.render import environment, quote, render

from .shell import assert_clean_bash

HOSTILE = "/opt/t r$(touch /tmp/pwned)'`x`\"; rm -rf /"


def test_quote_makes_one_word_and_lists_several():
    assert quote("a b") == "'a b'"
    assert quote(["a", "b c"]) == "a 'b c'"
    with pytest.raises(jinja2.TemplateError):
        quote(None)


def test_unquoted_text_is_refused():
    template = environment().from_string("echo {{ value }}")
    with pytest.raises(jinja2.TemplateError, match="use \\| quote"):
        template.render(value="x")
    assert template.render(value=3) == "echo 3"


def test_missing_variables_fail():
    with pytest.raises(jinja2.UndefinedError):
        environment().from_string("{{ nothing | quote }}").render()


def test_hostile_path_reaches_bash_as_data(tmp_path):
    s = settings({"path": HOSTILE})
    script = render("preflight", **script_context(s))
    assert_clean_bash(script)
    line = next(x for x in script.splitlines() if x.startswith("TM_PATH="))
    shown = subprocess.run(["bash", "-c", line + '\nprintf %s "$TM_PATH"'],
                           capture_output=True, text=True)
    assert shown.stdout == HOSTILE


def test_user_template_folder_wins(tmp_path):
    (tmp_path / "preflight.sh.j2").write_text("#!/bin/bash\nset -euo pipefail\necho mine\n")
    assert render("preflight", template_dir=str(tmp_path)).endswith("echo mine\n")


def test_every_script_starts_strict():
    for layout in ("auto", "v4", "v3", "runbook"):
        script = render("preflight", **script_context(settings({"layout": layout})))
        assert script.splitlines()[1] == "set -euo pipefail"
        assert_clean_bash(script)
