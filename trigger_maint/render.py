"""Render the remote scripts: Jinja2 with StrictUndefined, every value shell-quoted."""

from __future__ import annotations

import json
import shlex
from functools import cache
from importlib import resources
from pathlib import Path

import jinja2

from .errors import ConfigError


class Quoted(str):
    """Text that passed through the `quote` filter and is safe to paste into bash."""


def quote(value) -> Quoted:
    """One shell word; lists and tuples become several words."""
    if isinstance(value, list | tuple):
        return Quoted(" ".join(quote(item) for item in value))
    if isinstance(value, bool) or value is None:
        raise jinja2.TemplateError(f"refusing to quote {value!r}")
    return Quoted(shlex.quote(str(value)))


def tojson_quoted(value) -> Quoted:
    """A JSON document as one shell word."""
    return Quoted(shlex.quote(json.dumps(value, sort_keys=True)))


def _finalize(value):
    """Refuse any text that was not quoted: a hostile path must never reach bash raw."""
    if isinstance(value, Quoted):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    raise jinja2.TemplateError(f"unquoted value in template: {value!r} (use | quote)")


def shipped_templates() -> str:
    """The folder of the shipped templates: the `trigger_maint.templates` package of an
    installed wheel, else (running from a clone, whether or not a copy is installed) the
    clone's own templates/ beside the package."""
    try:
        return str(resources.files("trigger_maint.templates"))
    except ModuleNotFoundError:
        return str(Path(__file__).resolve().parent.parent / "templates")


@cache
def environment(template_dir: str = "") -> jinja2.Environment:
    """The template environment; a user folder's templates win over the shipped ones."""
    loaders = []
    if template_dir:
        if not Path(template_dir).is_dir():
            raise ConfigError(f"trigger.template_dir: no such folder {template_dir!r}")
        loaders.append(jinja2.FileSystemLoader(template_dir))
    loaders.append(jinja2.FileSystemLoader(shipped_templates()))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["quote"] = quote
    env.filters["tojson_quoted"] = tojson_quoted
    return env


def render(name: str, template_dir: str = "", **context) -> str:
    """The script `name` (e.g. "status") rendered with `context`."""
    try:
        return environment(template_dir).get_template(f"{name}.sh.j2").render(**context)
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(f"no template {exc.name}") from exc
