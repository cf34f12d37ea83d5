"""Run one job on many hosts with Fabric's ThreadingGroup, at most N at a time, in stages.

A fleet task is marked `fleet = True`. `FleetExecutor` (Fabric's executor otherwise) calls it
once with every -H host instead of once per host, as Fabric would for a normal task.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence

from fabric import Connection, Executor, ThreadingGroup
from fabric.exceptions import GroupException
from fabric.tasks import ConnectionCall
from invoke import Call, Context

from .errors import ConfigError, MaintError
from .fabric_compat import on_every_host
from .fleet import (
    HostOutcome,
    HostResult,
    Member,
    Shard,
    load_report,
    shard_stages,
    skipped,
    state_of,
    stop_reason,
    version_label,
)
from .output import Headers
from .remote import HostPrefixedStream, Session

Job = Callable[[Session], HostResult]
Announce = Callable[[HostOutcome], None]

class FleetContext(Context):
    """The context a fleet task runs in: Fabric's config plus the hosts given with -H."""

    cli_hosts: tuple = ()  # declared, else Invoke would store it in the config


class FleetCall(Call):
    """One call of a fleet task for all -H hosts."""

    cli_hosts: tuple = ()

    def make_context(self, config) -> FleetContext:
        context = FleetContext(config=config)
        context.cli_hosts = self.cli_hosts
        return context


class FleetExecutor(Executor):
    """Fabric's executor, except that a fleet task runs once with every -H host."""

    def parameterize(self, call, connection_init_kwargs):
        clone = super().parameterize(call, connection_init_kwargs)
        clone.origin = call  # which command-line call this per-host copy came from
        return clone

    def expand_calls(self, calls, apply_hosts=True):
        expanded = []
        for call in super().expand_calls(calls, apply_hosts):
            if not getattr(call.task, "fleet", False):
                expanded.append(call)
                continue
            origin = getattr(call, "origin", call)
            last = expanded[-1] if expanded else None
            if isinstance(last, FleetCall) and last.origin is origin:
                last.cli_hosts += (call.init_kwargs["host"],)
                continue
            fleet_call = FleetCall(call.task, called_as=call.called_as, args=call.args,
                                   kwargs=call.kwargs)
            fleet_call.origin = origin
            if isinstance(call, ConnectionCall):
                fleet_call.cli_hosts = (call.init_kwargs["host"],)
            expanded.append(fleet_call)
        Headers.for_calls(len(expanded))
        return expanded


class MemberConnection(Connection):
    """A fleet member's connection; its `run_job` runs a fleet job on the host."""

    # Declared here so that they are attributes: Fabric stores unknown ones in the config,
    # which every member shares.
    member: Member | None = None
    session: Session | None = None
    seconds: float = 0.0

    def __init__(self, member: Member, **kwargs):
        super().__init__(member.host, **kwargs)
        self.member = member

    # Two inventory names may point at one host (two installations): each connection is its
    # own member, so results are kept per connection object, not per host.
    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def run_job(self, job: Job, stage: str, slots: threading.Semaphore, dry_run: bool,
                announce: Announce) -> HostOutcome:
        """Wait for a free slot, run `job` on this host with its own settings, announce how
        it ended. A MaintError is this host's outcome; anything else reaches the GroupResult.

        What the phases print goes to stderr as `host | line`, like their progress: stdout
        is the fleet's (its summary, or its JSON)."""
        with slots:
            started = time.monotonic()
            out = HostPrefixedStream(self.member.name, sys.stderr)
            self.session = Session(self, self.member.settings, dry_run=dry_run, out=out)
            self.session.label = self.member.name
            try:
                self.session.open()
                value = job(self.session)
            except MaintError as exc:
                value = exc
            finally:
                self.session.close()
                out.flush()
                self.seconds = time.monotonic() - started
        done = outcome(self, stage, value)
        announce(done)
        return done


class FleetGroup(ThreadingGroup):
    """Fabric's ThreadingGroup with one more group method: a fleet job on every host."""

    def run_job(self, *args, **kwargs):
        return on_every_host(self, "run_job", *args, **kwargs)


def outcome(cxn: MemberConnection, stage: str, value) -> HostOutcome:
    """A member's outcome from what its thread returned or raised."""
    if isinstance(value, HostResult):
        result = value
    elif isinstance(value, MaintError):
        preflight = cxn.session.facts.get("preflight") if cxn.session else None
        running = getattr(getattr(preflight, "installation", None), "running", None)
        result = HostResult(exit_code=value.exit_code,
                            before=version_label(running),
                            message=_without_label(str(value), cxn.member.name))
    else:  # a bug on one host must not hide the others' results
        result = HostResult(exit_code=5, message=f"internal error: {type(value).__name__}: "
                                                 f"{value}")
    return HostOutcome(name=cxn.member.name, host=cxn.member.host, stage=stage,
                       state=state_of(result), result=result, seconds=cxn.seconds)


def _without_label(message: str, name: str) -> str:
    prefix = f"{name}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def run_stage(config, members: Sequence[Member], stage: str, job: Job, slots, *,
              dry_run: bool, announce: Announce) -> list[HostOutcome]:
    """`job` on every member of one stage, each host in its own thread."""
    # A config each: Fabric merges a host's ssh_config identities into the config's own
    # connect_kwargs, and one host's keys or timeouts must not leak into another's.
    group = FleetGroup.from_connections(MemberConnection(m, config=config.clone())
                                        for m in members)
    try:
        results = group.run_job(job, stage, slots, dry_run, announce)
    except GroupException as exc:
        results = exc.result
    except KeyboardInterrupt:
        group.close()  # the hosts' scripts see their channel close and clean up
        raise
    outcomes = []
    for cxn in group:
        value = results[cxn]
        if not isinstance(value, HostOutcome):
            value = outcome(cxn, stage, value)
            announce(value)
        outcomes.append(value)
    return outcomes


def run_fleet(config, members: Sequence[Member], job: Job, *, parallel: int,
              canary: int | None = None, dry_run: bool = False,
              announce: Announce = lambda outcome: None,
              shard: Shard | None = None) -> tuple[list[HostOutcome], str | None]:
    """Run `job` on every member, `parallel` at a time; with `canary`, on the first `canary`
    members first and on the rest only when every canary succeeded; with `shard`, only on
    that shard's members (see fleet.shard_stages). Returns the outcomes in member order and
    why the rollout stopped (None when it did not)."""
    slots = threading.Semaphore(parallel)
    outcomes: list[HostOutcome] = []
    stopped = None
    for stage, stage_members in shard_stages(members, canary, shard):
        if stopped:
            outcomes += [skipped(m, stage, stopped) for m in stage_members]
            continue
        done = run_stage(config, stage_members, stage, job, slots, dry_run=dry_run,
                         announce=announce)
        outcomes += done
        if stage == "canary":
            stopped = stop_reason(done)
    return outcomes, stopped


def read_report(path: str) -> dict:
    """The fleet report in the file at `path` (see fleet.load_report)."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})"
                          ) from None
    return load_report(text, path)


def write_report(directory: str, files: dict[str, str]) -> list[str]:
    """Write the fleet report files atomically (mode 0600); their paths."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    paths = []
    for name, content in files.items():
        path = os.path.join(directory, name)
        temporary = f"{path}.tmp-{os.getpid()}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(content)
        os.replace(temporary, path)
        paths.append(path)
    return paths
