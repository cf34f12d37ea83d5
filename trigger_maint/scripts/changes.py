"""The scripts of a change (update, rollback, restore): the facts it is planned from, the
runner that carries the plan out on the host, and the script that starts or follows it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .. import hostpaths, points, transactions
from ..backups import Folder
from ..hostpaths import HostPaths
from ..points import RollbackPoint
from ..render import render
from ..transactions import Journal, Plan, TxSummary
from .backups import DumpInputs, folder
from .base import InstallInputs, Script, field


@dataclass(frozen=True)
class ChangeFactsInputs:
    install: InstallInputs
    paths: HostPaths
    sidecar_pattern: str = hostpaths.SIDECAR
    tx_pattern: str = hostpaths.TRANSACTION


@dataclass(frozen=True)
class ChangeFacts:
    """What a change is planned from."""

    migrations: int | None  # _prisma_migrations rows (None: the database did not answer)
    database_bytes: int | None  # the Trigger.dev database on disk
    cluster_bytes: int | None  # every database of the cluster
    backup_free_bytes: int | None
    docker_free_bytes: int | None
    folder: Folder
    points: tuple[RollbackPoint, ...]
    transactions: TxSummary
    current_journal: Journal | None  # the journal of the change under way or cut off
    healthy: bool  # every container running (healthy where checked), /healthcheck 200


def change_facts(raw: dict, inputs: ChangeFactsInputs) -> ChangeFacts:
    db = raw.get("database") if isinstance(raw.get("database"), dict) else {}
    journal_lines = raw.get("current_journal")
    return ChangeFacts(
        migrations=field(db, "migrations", int),
        database_bytes=field(db, "database_bytes", int),
        cluster_bytes=field(db, "cluster_bytes", int),
        backup_free_bytes=field(raw, "backup_free_bytes", int),
        docker_free_bytes=field(raw, "docker_free_bytes", int),
        folder=folder(raw, inputs.paths.backup_dir),
        points=tuple(points.parse(raw.get("points") or [])),
        transactions=transactions.summary(raw.get("transactions")),
        current_journal=(transactions.journal(journal_lines)
                         if isinstance(journal_lines, list) else None),
        healthy=raw.get("healthy") is True,
    )


CHANGE_FACTS = Script("change-facts", ChangeFactsInputs, change_facts,
                      requires=("points", "transactions", "healthy", "files"))


@dataclass(frozen=True)
class RunnerInputs:
    """What the runner of one change needs besides its plan."""

    install: InstallInputs  # the found layout only, forced
    dump: DumpInputs
    paths: HostPaths
    plan: Plan
    pull_timeout: int
    pin_awk: str
    rollback_repo: str = hostpaths.ROLLBACK_REPO


def runner_text(inputs: RunnerInputs, template_dir: str = "") -> str:
    """The runner script the host runs detached (it reports through its journal only)."""
    values = {name: getattr(inputs, name) for name in inputs.__dataclass_fields__}
    return render("runner", template_dir, marker="", heartbeat=0,
                  lock_file=hostpaths.LOCK_FILE, **values)


@dataclass(frozen=True)
class TransactionInputs:
    paths: HostPaths
    tx: str
    mode: str  # start, resume or attach
    abandon: str = ""  # a change cut off before its first change, dropped first
    resume: str = ""  # resume: "forward" or "back"
    plan_json: str = ""
    runner: str = ""
    tx_pattern: str = hostpaths.TRANSACTION


@dataclass(frozen=True)
class Followed:
    """A change as far as the client followed it."""

    tx: str
    ended: bool
    journal: Journal


def followed(raw: dict, inputs: TransactionInputs) -> Followed:
    lines = [line for line in raw.get("journal") or [] if isinstance(line, str)]
    return Followed(tx=str(raw.get("tx") or inputs.tx), ended=raw.get("ended") is True,
                    journal=transactions.journal(lines))


TRANSACTION = Script("transaction", TransactionInputs, followed,
                     requires=("tx", "ended", "journal"), changes=True)


def start_inputs(paths: HostPaths, plan: Plan, runner: str,
                 abandon: str = "") -> TransactionInputs:
    """Inputs that start a new change on the host."""
    return TransactionInputs(paths=paths, tx=plan.tx, mode="start", abandon=abandon,
                             plan_json=json.dumps(plan.as_data()), runner=runner)


@dataclass(frozen=True)
class AckInputs:
    paths: HostPaths
    tx: str


ACK = Script("tx-ack", AckInputs, lambda raw, inputs: raw.get("tx"), requires=("tx",))
