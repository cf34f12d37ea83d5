"""Running a change (update, rollback, restore) as a transaction the host owns: read the
facts, plan in Python, start the plan detached on the host, follow its journal, reattach
after a lost link, and tell what the host runs now."""

from __future__ import annotations

import dataclasses
import time

from .. import transactions
from ..confirm import Confirm
from ..errors import ConnectError, MaintError, OperationError, UnsafeError
from ..hostpaths import HostPaths
from ..installation import Preflight
from ..outcomes import ChangeResult, Planned
from ..output import emit, plain
from ..plans import Budgets
from ..scripts.backups import dump_inputs
from ..scripts.base import InstallInputs
from ..scripts.changes import (
    ACK,
    CHANGE_FACTS,
    TRANSACTION,
    AckInputs,
    ChangeFacts,
    ChangeFactsInputs,
    RunnerInputs,
    TransactionInputs,
    runner_text,
    start_inputs,
)
from ..transactions import ABANDON, Before, Journal, Plan
from ..updating import PIN_AWK
from .common import check_exit, run_preflight

FINISHING = ("wait_healthy", "finish", "check_images", "mark", "save_aside", "drop_aside")
RECONNECT_PAUSE = 3  # seconds between attempts to reach the host again


def host_spec(session) -> str:
    """The host as `-H` takes it back (user@host[:port]), for commands a message names."""
    user = getattr(session.connection, "user", "")
    return f"{user}@{session.label}" if user else session.label


def paths_of(pre: Preflight) -> HostPaths:
    return HostPaths(pre.backup_dir)


def found_install(pre: Preflight) -> InstallInputs:
    """Install inputs that find exactly the layout preflight found."""
    inst = pre.installation
    return InstallInputs(path=inst.path, layouts=(inst.layout,), forced=True,
                         webapp_url=inst.webapp_url)


def read_facts(session, pre: Preflight) -> ChangeFacts:
    """What the change is planned from (always measured afresh)."""
    return session.run(CHANGE_FACTS, ChangeFactsInputs(found_install(pre), paths_of(pre)))


def budgets(s) -> Budgets:
    return Budgets(pull=s.pull_timeout, dump=s.dump_timeout, health=s.health_timeout,
                   health_fail=s.health_fail_seconds)


def runner(session, pre: Preflight, plan: Plan) -> str:
    """The runner script that carries `plan` out on the host."""
    s = session.settings
    return runner_text(RunnerInputs(
        install=found_install(pre), dump=dump_inputs(pre, s.backup_compression, s.dump_timeout),
        paths=paths_of(pre), plan=plan, pull_timeout=s.pull_timeout, pin_awk=PIN_AWK),
        s.template_dir)


def follow(session, inputs: TransactionInputs, budget: int, kind: str):
    """Run the transaction script (start, resume or attach); after a lost link, reconnect
    and attach again until trigger.reconnect_timeout has passed."""
    deadline = None
    while True:
        try:
            return session.run(TRANSACTION, inputs, timeout=budget + 300)
        except ConnectError as exc:
            deadline = deadline or time.monotonic() + session.settings.reconnect_timeout
            if time.monotonic() >= deadline:
                raise ConnectError(
                    f"{exc}; the host carries {kind} {inputs.tx} on by itself: run the same "
                    "command again to see how it ended") from None
            session.note(f"lost the connection ({str(exc).removeprefix(session.label + ': ')})"
                         f"; {kind} {inputs.tx} goes on on the host; reconnecting to follow it")
            session.close()
            time.sleep(RECONNECT_PAUSE)
            inputs = dataclasses.replace(inputs, mode="attach")


def finished(session, pre: Preflight, followed, kind: str) -> Journal:
    """The journal of a change that ended; its end is acknowledged (a rerun does not report
    it again). A change whose runner died without an end is an error."""
    j = followed.journal
    if not followed.ended:
        raise OperationError(f"{session.label}: {kind} {followed.tx} stopped on the host "
                             "before it ended (the host went down?); run the command again "
                             "to finish or roll it back")
    session.run(ACK, AckInputs(paths_of(pre), followed.tx))
    return j


def execute(session, pre: Preflight, plan: Plan, abandon: str = "") -> Journal | None:
    """Start `plan` on the host and follow it to its end (None under --dry-run)."""
    inputs = start_inputs(paths_of(pre), plan, runner(session, pre, plan), abandon)
    done = follow(session, inputs, plan.budget, plan.kind)
    return None if done is None else finished(session, pre, done, plan.kind)


def attach(session, pre: Preflight, tx: str, kind: str) -> Journal:
    """Follow a change already under way (or ended) on the host to its end."""
    inputs = TransactionInputs(paths=paths_of(pre), tx=tx, mode="attach")
    done = follow(session, inputs, session.settings.command_timeout, kind)
    return finished(session, pre, done, kind)


def resume(session, pre: Preflight, facts: ChangeFacts, tx: str, kind: str) -> Journal | None:
    """Carry a change that was cut off forward or back (None when it is simply dropped:
    it had changed nothing)."""
    record = facts.current_journal
    direction = transactions.resume_direction(record, facts.healthy, FINISHING) \
        if record is not None else ABANDON
    if direction == ABANDON:
        return None
    session.note(f"{kind} {tx} was cut off; carrying it {direction} first")
    inputs = TransactionInputs(paths=paths_of(pre), tx=tx, mode="resume", resume=direction)
    done = follow(session, inputs, session.settings.command_timeout, kind)
    return finished(session, pre, done, kind)


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A change task's starting point: the host, the facts, what to do first."""

    pre: Preflight
    facts: ChangeFacts
    before: Before


def prepare(session, kind: str) -> Prepared:
    """Preflight, the change facts, and what to do before a new change of `kind`."""
    pre = run_preflight(session)
    facts = read_facts(session, pre)
    return Prepared(pre, facts, transactions.before_change(facts.transactions, kind))


@dataclasses.dataclass(frozen=True)
class Earlier:
    """What became of a change found on the host before a new one could start: its journal
    when this run followed it to its end (`reported`: it had ended with no client), else the
    id of one that changed nothing and is to be dropped (`abandon`)."""

    journal: Journal | None = None
    reported: bool = False
    abandon: str = ""


def settle_earlier(session, prep: Prepared, kind: str) -> Earlier:
    """Before a new change of `kind`: follow one under way, report one that ended unseen,
    carry one that was cut off forward or back (or drop it when it changed nothing)."""
    before = prep.before
    label = prep.facts.transactions.kind or kind
    if before.action in (transactions.ATTACH, transactions.REPORT):
        session.note(before.reason)
        return Earlier(attach(session, prep.pre, before.tx, label),
                       reported=before.action == transactions.REPORT)
    if before.action == transactions.RESUME:
        j = resume(session, prep.pre, prep.facts, before.tx, label)
        return Earlier(j) if j is not None else Earlier(abandon=before.tx)
    return Earlier()


def carry_out(session, prep: Prepared, plan: Plan, what: str, confirm: Confirm,
              earlier: Earlier) -> Journal | Planned:
    """The plan shown under --dry-run; else, once `confirm` allows `what`, carried out on the
    host to its end (UnsafeError when not confirmed)."""
    if session.dry_run:
        return planned(session, prep.pre, plan, f"would {what}")
    ok, why = confirm.allows(f"{session.label}: {what}?")
    if not ok:
        raise UnsafeError(f"{session.label}: {plan.kind} not done: {why}")
    return execute(session, prep.pre, plan, earlier.abandon)


def raise_for(session, code: int, message: str, result) -> None:
    """The error a change's outcome stands for (exit 4 or 5), carrying its result."""
    if not code:
        return
    error = (UnsafeError if code == 4 else OperationError)(f"{session.label}: {message}")
    error.result = result
    raise error


def report_change(session, task_name: str, action, describe) -> None:
    """Run a change task's `action`, show its result (a failed change's too, with the last
    log lines of what failed) and end with its exit code."""
    try:
        done = action()
    except MaintError as exc:
        done = getattr(exc, "result", None)
        if not isinstance(done, ChangeResult):
            raise
    if isinstance(done, Planned):
        emit(session, task_name, {"dry_run": True, "plan": done.plan.as_data()}, "")
        return
    emit(session, task_name, plain(done), describe(done), exit_code=done.exit_code)
    check_exit(session, done.exit_code, done.message)


def planned(session, pre: Preflight, plan: Plan, summary: str) -> Planned:
    """A dry run's result: the plan shown for people (and, with --scripts, the scripts that
    would carry it out, runner included)."""
    session.print(transactions.describe(plan))
    if session.show_scripts:
        session.run(TRANSACTION, start_inputs(paths_of(pre), plan, runner(session, pre, plan)))
    result = Planned(plan.kind, plan, summary)
    session.outcomes[plan.kind] = result
    return result
