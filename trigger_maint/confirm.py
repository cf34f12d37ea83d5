"""The one confirmation rule for every task that can cost availability or data (update,
rollback, restore, reboot): `--yes` confirms; otherwise the operator is asked at a
terminal; with no terminal (cron, CI, a fleet) nothing is asked and the change is not made.
Phases receive a `Confirm`; they never read the terminal themselves."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

NO_TERMINAL = "not confirmed: no terminal to ask (add --yes)"


def ask_terminal(question: str) -> bool:
    """Ask on the terminal; anything but y or yes is no."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


@dataclass(frozen=True)
class Confirm:
    """How changes are confirmed in this run."""

    yes: bool = False  # --yes: confirmed beforehand
    ask: Callable[[str], bool] | None = None  # asks the operator; None: nobody to ask

    def allows(self, question: str) -> tuple[bool, str]:
        """Whether the change may go ahead, and why not."""
        if self.yes:
            return True, ""
        if self.ask is None:
            return False, NO_TERMINAL
        return (True, "") if self.ask(question) else (False, "declined at the prompt")


def from_flags(yes: bool) -> Confirm:
    """The policy of a task run from the command line: --yes, else ask at a terminal."""
    return Confirm(yes=yes, ask=ask_terminal if sys.stdin.isatty() else None)


UNATTENDED = Confirm()  # nobody to ask and no --yes: no change is confirmed
