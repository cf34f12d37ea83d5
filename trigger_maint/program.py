"""`trigger-maint`: Fabric's own program with the trigger-maint tasks built in.

Its configuration is checked as it is read: a config file that cannot be parsed or has a
`trigger:` tree of the wrong shape, or a bad FABRIC_TRIGGER_* variable, ends the program
with one line naming the file or variable and exit code 2, before any task runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fabric import Config
from fabric.main import Fab
from invoke import Exit
from invoke.config import AmbiguousMergeError
from invoke.exceptions import AmbiguousEnvVar, UncastableEnvVar, UnknownFileType
from invoke.parser import ParseError

from . import __version__
from .config import env_prefix, environment, hidden, tree_problem
from .errors import ConfigError
from .web import one_line

SUFFIXES = ("yaml", "yml", "json", "py")  # Invoke's order: the first file found is read
FILE_PLACES = {"system": "/etc/", "user": "~/."}  # Invoke's defaults for these levels


def file_error(exc: BaseException) -> str:
    """What went wrong reading a config file, on one line and without its contents (a
    YAML error's usual text quotes the file, and with it maybe a token)."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        problem = getattr(exc, "problem", None) or "not valid YAML"
        return f"YAML syntax error at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    if isinstance(exc, json.JSONDecodeError):
        return f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    if isinstance(exc, UnknownFileType):
        return f"unsupported file type (use .{', .'.join(SUFFIXES)})"
    if isinstance(exc, AmbiguousMergeError):
        return ("cannot be merged with the other config files: a mapping in one and a plain "
                "value in the other at the same key")
    if isinstance(exc, AttributeError) and "'items'" in str(exc):
        return "expected a mapping of settings at the top level"
    if isinstance(exc, OSError):
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    if isinstance(exc, SyntaxError):
        return f"cannot be loaded (SyntaxError at line {exc.lineno})"
    return f"cannot be loaded ({type(exc).__name__})"


def trigger_problem(data) -> str | None:
    """Why the merged config's `trigger:` entry is unusable; None when it is fine."""
    if not hasattr(data, "keys") or "trigger" not in data.keys():
        return None
    tree = data.get("trigger")
    if tree is None:
        return "trigger: is empty; give settings under it or remove it"
    return tree_problem(tree)


def first_file(prefix: str) -> str:
    """The config file Invoke reads for a level (`prefix` + fabric.<suffix>, first found)."""
    candidates = [os.path.expanduser(f"{prefix}fabric.{suffix}") for suffix in SUFFIXES]
    return next((path for path in candidates if os.path.exists(path)), candidates[0])


class TriggerConfig(Config):
    """Fabric's Config whose files and FABRIC_TRIGGER_* variables are checked as they are
    read; a problem is a ConfigError naming the file or variable."""

    trigger_project_dir: str | None = None  # where ./fabric.yaml is looked for
    trigger_runtime_file: str | None = None  # the -f file, if any

    def set_project_location(self, path) -> None:
        super().set_project_location(path)
        self.trigger_project_dir = None if path is None else str(path)

    def config_file(self, level: str) -> str:
        """The file behind a level (system, user, project, runtime), for messages."""
        if level == "runtime":
            return self.trigger_runtime_file or "the -f file"
        if level == "project":
            return first_file(os.path.join(self.trigger_project_dir or os.getcwd(), ""))
        return first_file(FILE_PLACES[level])

    def checked(self, level: str, load: Callable[..., None]) -> None:
        """Load one level (always merged, so that its `trigger:` tree can be checked)."""
        try:
            load(merge=True)
        except Exception as exc:  # noqa: BLE001 - any loader failure is one line
            raise ConfigError(f"{self.config_file(level)}: {file_error(exc)}") from None
        problem = trigger_problem(self)
        if problem:
            raise ConfigError(f"{self.config_file(level)}: {problem}")

    def load_system(self, merge: bool = True) -> None:
        self.checked("system", super().load_system)

    def load_user(self, merge: bool = True) -> None:
        self.checked("user", super().load_user)

    def load_project(self, merge: bool = True) -> None:
        self.checked("project", super().load_project)

    def load_runtime(self, merge: bool = True) -> None:
        self.checked("runtime", super().load_runtime)

    def load_shell_env(self) -> None:
        """Invoke's environment loading, except that FABRIC_TRIGGER_* variables are checked
        here and read by `config.from_context` (Invoke would cast them by its own rules)."""
        prefix = env_prefix(self)
        environment(os.environ, prefix)
        with hidden(os.environ, prefix):
            try:
                super().load_shell_env()
            except AmbiguousEnvVar as exc:
                raise ConfigError(f"configuration: two settings share one environment "
                                  f"variable name ({one_line(str(exc), 120)})") from None
            except (UncastableEnvVar, ValueError, TypeError):
                raise ConfigError(f"environment: a {prefix}* variable holds a value Invoke "
                                  "cannot convert to its setting's type (a list, or a "
                                  "number that is not one)") from None


@contextmanager
def usage_errors() -> Iterator[None]:
    """Turn a configuration problem into one line on stderr and exit code 2."""
    try:
        yield
    except ConfigError as exc:
        raise Exit(f"trigger-maint: {exc}", code=ConfigError.exit_code) from None
    except AmbiguousMergeError as exc:
        raise Exit(f"trigger-maint: configuration: {file_error(exc)}",
                   code=ConfigError.exit_code) from None


def runtime_file(flag: str | None, environ) -> tuple[str | None, str]:
    """The -f file (else INVOKE_RUNTIME_CONFIG, as Invoke reads it) and how it was given."""
    if flag:
        return flag, "-f/--config"
    if environ.get("INVOKE_RUNTIME_CONFIG"):
        return environ["INVOKE_RUNTIME_CONFIG"], "INVOKE_RUNTIME_CONFIG"
    return None, ""


class TriggerMaint(Fab):
    """Fab with a built-in namespace that still reads ./fabric.yaml and exits 2 on bad usage
    or configuration."""

    def create_config(self):
        with usage_errors():
            super().create_config()

    def parse_collection(self):
        super().parse_collection()
        # A bundled namespace makes Invoke skip the project's config files; load them.
        with usage_errors():
            self.config.set_project_location(os.getcwd())
            self.config.load_project()

    def parse_core(self, argv):
        try:
            super().parse_core(argv)
        except ParseError as exc:
            raise Exit(f"trigger-maint: {exc}", code=ConfigError.exit_code) from None

    def parse_tasks(self):
        try:
            super().parse_tasks()
        except ParseError as exc:
            raise Exit(f"trigger-maint: {exc}", code=ConfigError.exit_code) from None
        json_for_all(self.tasks)

    def update_config(self):
        path, given = runtime_file(self.args.config.value, os.environ)
        if path and not os.path.isfile(os.path.expanduser(path)):
            raise Exit(f"trigger-maint: {given} {path}: no such file",
                       code=ConfigError.exit_code)
        if isinstance(self.config, TriggerConfig):
            self.config.trigger_runtime_file = path
        with usage_errors():
            super().update_config()

    def execute(self):
        with usage_errors():
            super().execute()


def program() -> TriggerMaint:
    """The program object (a function so that importing this module stays cheap)."""
    from .fleet_runner import FleetExecutor  # fleet tasks get every -H host in one call
    from .tasks import ns

    return TriggerMaint(
        name="trigger-maint",
        binary="trigger-maint",
        binary_names=["trigger-maint"],
        version=__version__,
        namespace=ns,
        executor_class=FleetExecutor,
        config_class=TriggerConfig,
    )


def json_for_all(parsed) -> None:
    """--json on one task of a chain is --json on all of them: stdout then holds nothing
    but JSON, one document per task (plain `fab` needs --json on each task)."""
    wanted = any("json" in ctx.args and ctx.args["json"].value for ctx in parsed)
    for ctx in parsed if wanted else ():
        if "json" in ctx.args:
            ctx.args["json"].value = True


def main() -> None:
    """Console-script entry point."""
    program().run()



if __name__ == "__main__":
    main()
