"""`trigger-maint`: Fabric's own program with the trigger-maint tasks built in."""

from __future__ import annotations

import os

from fabric import Config
from fabric.main import Fab
from invoke import Exit
from invoke.parser import ParseError

from . import __version__
from .errors import ConfigError


class TriggerMaint(Fab):
    """Fab with a built-in namespace that still reads ./fabric.yaml and exits 2 on bad usage."""

    def parse_collection(self):
        super().parse_collection()
        # A bundled namespace makes Invoke skip the project's config files; load them.
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
        config_class=Config,
    )


def main() -> None:
    """Console-script entry point."""
    program().run()
