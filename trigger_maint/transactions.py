"""Changes as transactions the host owns: the plan Python hands to the host, the journal the
host writes while it carries the plan out, and what the client decides from both.

An update, rollback or restore is a `Plan`: forward steps, and the steps that undo them,
each undo tied to the forward step it reverses. The host runs the plan detached from the
SSH session, under the host lock, and records every step in `journal.jsonl`; when a forward
step fails after the first change, the undo steps of every forward step that started run,
newest first as the plan orders them. The client streams the journal and reads it back into
a `Journal`; whoever runs next reads a `TxSummary` of the newest transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

# How a transaction ended, and the exit code it stands for.
DONE, UNCHANGED, ROLLED_BACK, REFUSED, FAILED = "done", "unchanged", "rolled-back", "refused", \
    "failed"
ABANDONED = "abandoned"  # cut off before its first change, and dropped by the next run
EXIT_CODES = {DONE: 0, UNCHANGED: 0, ROLLED_BACK: 5, REFUSED: 4, FAILED: 5, ABANDONED: 4}


@dataclass(frozen=True)
class Step:
    """One forward step: the runner's `tm_step_<name>` with its arguments."""

    name: str
    args: tuple[str, ...] = ()
    change: bool = False  # from this step on the host differs from before the plan
    says: str = ""  # what it does, for people
    budget: int = 60  # seconds it may take


@dataclass(frozen=True)
class Undo:
    """One step of the way back; it runs only when forward step `after` (1-based) started."""

    after: int
    name: str
    args: tuple[str, ...] = ()
    says: str = ""
    budget: int = 60


@dataclass(frozen=True)
class Plan:
    """What a change will do on the host, decided in Python from the facts."""

    kind: str  # update, rollback or restore
    tx: str  # the transaction's id: <stamp>-<kind>
    forward: tuple[Step, ...]
    back: tuple[Undo, ...]
    facts: dict = field(default_factory=dict)  # what the plan was made from

    @property
    def budget(self) -> int:
        """Seconds the whole transaction may take, every step and every undo included."""
        return sum(s.budget for s in self.forward) + sum(u.budget for u in self.back)

    def as_data(self) -> dict:
        """The plan as JSON-ready data (plan.json on the host, --dry-run --json)."""
        return {
            "kind": self.kind, "tx": self.tx, "budget_seconds": self.budget,
            "forward": [{"n": n, "step": s.name, "args": list(s.args), "change": s.change,
                         "says": s.says, "budget_seconds": s.budget}
                        for n, s in enumerate(self.forward, 1)],
            "back": [{"after": u.after, "step": u.name, "args": list(u.args), "says": u.says,
                      "budget_seconds": u.budget} for u in self.back],
            "facts": self.facts,
        }


def describe(plan: Plan) -> str:
    """The plan for people: every step, and what would be rolled back."""
    lines = [f"plan: {plan.kind} ({len(plan.forward)} steps, at most {plan.budget} s)"]
    first_change = next((n for n, s in enumerate(plan.forward, 1) if s.change), 0)
    for n, step in enumerate(plan.forward, 1):
        mark = "  <- first change" if n == first_change else ""
        lines.append(f"  {n:2}. {step.says or step.name}{mark}")
    if plan.back:
        lines.append("if a step fails after the first change, the host goes back:")
        for undo in plan.back:
            lines.append(f"      {undo.says or undo.name} (when step {undo.after} started)")
    return "\n".join(lines)


@dataclass(frozen=True)
class StepRecord:
    """One step as the journal recorded it."""

    direction: str  # forward or back
    n: int
    name: str
    status: str  # start, done, failed, skipped
    error: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True)
class Journal:
    """A transaction as its journal tells it."""

    tx: str
    kind: str
    started_at: datetime | None
    ended_at: datetime | None
    outcome: str  # DONE ... FAILED, or "" while it has not ended
    error: str  # the failing step's error
    failed_step: str
    steps: tuple[StepRecord, ...]
    facts: dict

    @property
    def ended(self) -> bool:
        return bool(self.outcome)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.outcome, 5)

    @property
    def changed(self) -> bool:
        """A step that changes the host started."""
        return bool(self.facts.get("changed"))

    def started(self, direction: str = "forward") -> list[int]:
        """The numbers of the steps of `direction` that started."""
        return sorted({s.n for s in self.steps if s.direction == direction})

    def done(self, name: str) -> bool:
        return any(s.name == name and s.status == "done" for s in self.steps)


def _time(value) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return None


def events(lines: Iterable[str]) -> list[dict]:
    """The journal's events; a line cut short by a crash is skipped."""
    found = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("ev"), str):
            found.append(event)
    return found


def journal(lines: Iterable[str]) -> Journal:
    """A Journal from the lines of journal.jsonl."""
    found = events(lines)
    begin = next((e for e in found if e["ev"] == "begin"), {})
    end = next((e for e in reversed(found) if e["ev"] == "end"), {})
    steps: dict[tuple[str, int], StepRecord] = {}
    facts: dict = {}
    for event in found:
        if event["ev"] == "fact" and isinstance(event.get("key"), str):
            facts[event["key"]] = event.get("value")
        elif event["ev"] == "step" and isinstance(event.get("n"), int):
            key = (str(event.get("dir") or "forward"), event["n"])
            before = steps.get(key)
            steps[key] = StepRecord(
                direction=key[0], n=key[1], name=str(event.get("step") or ""),
                status=str(event.get("status") or ""), error=str(event.get("error") or ""),
                started_at=before.started_at if before else _time(event.get("t")),
                ended_at=_time(event.get("t")) if event.get("status") != "start" else None)
    return Journal(
        tx=str(begin.get("tx") or end.get("tx") or ""),
        kind=str(begin.get("kind") or ""),
        started_at=_time(begin.get("t")),
        ended_at=_time(end.get("t")),
        outcome=str(end.get("outcome") or ""),
        error=str(end.get("error") or ""),
        failed_step=str(end.get("step") or ""),
        steps=tuple(sorted(steps.values(), key=lambda s: (s.direction != "forward", s.n))),
        facts=facts,
    )


@dataclass(frozen=True)
class TxSummary:
    """The transactions of a host as a listing script sees them."""

    current: str = ""  # the transaction under way (CURRENT), "" when none
    running: bool = False  # its runner still runs
    newest: str = ""  # the newest transaction's id
    kind: str = ""
    outcome: str = ""  # how the newest ended ("" while it runs, or when it was cut off)
    message: str = ""
    seen: bool = True  # a client received the newest one's end


def summary(raw: dict | None) -> TxSummary:
    """A TxSummary from templates/_transactions.sh.j2's JSON."""
    raw = raw if isinstance(raw, dict) else {}
    first = events([raw.get("first") or ""])
    last = events([raw.get("last") or ""])
    begin = first[0] if first and first[0]["ev"] == "begin" else {}
    end = last[0] if last and last[0]["ev"] == "end" else {}
    return TxSummary(
        current=str(raw.get("current") or ""),
        running=raw.get("alive") is True,
        newest=str(raw.get("newest") or ""),
        kind=str(begin.get("kind") or ""),
        outcome=str(end.get("outcome") or ""),
        message=str(end.get("error") or ""),
        seen=raw.get("seen") is not False,
    )


# ---- what to do before a new change ---------------------------------------------------

ATTACH, REPORT, RESUME, START = "attach", "report", "resume", "start"


@dataclass(frozen=True)
class Before:
    """What a change task must do first, given the host's transactions."""

    action: str  # ATTACH, REPORT, RESUME or START
    tx: str = ""
    reason: str = ""


def before_change(tx: TxSummary, kind: str) -> Before:
    """Attach to a change still under way; finish one that was cut off; report the end of
    one no client saw (a rerun reports instead of redoing); else start."""
    if tx.current and tx.running:
        return Before(ATTACH, tx.current, f"{tx.kind or 'a change'} {tx.current} is under way "
                                          "on the host: following it")
    if tx.current:
        return Before(RESUME, tx.current, f"{tx.kind or 'a change'} {tx.current} was cut off: "
                                          "finishing it first")
    if tx.newest and not tx.seen and tx.outcome and tx.kind == kind:
        return Before(REPORT, tx.newest, f"{kind} {tx.newest} ended while no client was "
                                         f"connected ({tx.outcome})")
    return Before(START)


FORWARD, BACK, ABANDON = "forward", "back", "abandon"


def resume_direction(record: Journal, healthy_now: bool, finishing_steps: tuple[str, ...]) -> str:
    """Whether a cut-off transaction is carried forward, rolled back or dropped.

    Dropped when it was cut off before its first change (nothing to undo: the new run plans
    afresh); forward when every forward step before `finishing_steps` (the health wait and
    the bookkeeping after it) is done and the installation is healthy now; back otherwise."""
    if not record.changed:
        return ABANDON
    forward = [s for s in record.steps if s.direction == "forward"]
    essential = [s for s in forward if s.name not in finishing_steps]
    if forward and all(s.status == "done" for s in essential) and healthy_now:
        return FORWARD
    return BACK
