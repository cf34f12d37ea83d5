"""Record what every remote script really prints on rig hosts, as fixtures for the parsers.

    python -m tests.rig.record [--host K] [--only TEMPLATE]

Each fixture is tests/unit/data/scripts/<template>/<case>.json: {"inputs": what the unit test
rebuilds the script's inputs from, "raw": the JSON object the script printed}.
tests/unit/test_parsers.py holds every parser to them. Host K (default 1) is locked and reset
along the way; its installation is gone afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime

from fabric import Connection

from trigger_maint import hostpaths
from trigger_maint.cleanup import kept_image_ids, plan_cleanup
from trigger_maint.config import settings
from trigger_maint.errors import MaintError
from trigger_maint.hostpaths import HostPaths
from trigger_maint.plans import Budgets, tx_id, update_plan
from trigger_maint.points import free_name
from trigger_maint.remote import Session
from trigger_maint.scripts import backups as backup_scripts
from trigger_maint.scripts import changes, cleanup, preflight, reboot, status, verify
from trigger_maint.scripts.base import install_inputs, new_marker
from trigger_maint.tasks.change import paths_of, runner
from trigger_maint.updating import pin_args

from .config import KEY, KNOWN_HOSTS, REGISTRY, REPO
from .rig import Rig

DATA = REPO / "tests" / "unit" / "data" / "scripts"


def session(host, **tree) -> Session:
    """A session to rig host `host` with the trigger settings `tree`."""
    connection = Connection(f"root@{host.address}", port=host.port,
                            connect_kwargs={"key_filename": str(KEY), "look_for_keys": False,
                                            "allow_agent": False})
    return Session(connection, settings({"known_hosts": str(KNOWN_HOSTS),
                                         "registry": REGISTRY, **tree}))


def capture(s: Session, script, inputs) -> dict:
    """The raw result object the script prints (its error object too)."""
    marker = new_marker()
    text = script.render(inputs, marker, s.heartbeat)
    try:
        return s.execute(script.template, text, marker, script.requires, timeout=900)
    except MaintError as exc:
        if getattr(exc, "result", None) is None:
            raise
        return exc.result


def save(template: str, case: str, raw: dict, **inputs) -> None:
    folder = DATA / template
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{case}.json").write_text(
        json.dumps({"inputs": inputs, "raw": raw}, indent=1, sort_keys=True) + "\n")
    print(f"recorded {template}/{case}", file=sys.stderr)


def record(s: Session, script, inputs, case: str, **stored) -> dict:
    raw = capture(s, script, inputs)
    save(script.template, case, raw, **stored)
    return raw


def found(s: Session):
    """The host as preflight finds it (parsed), for the inputs of later scripts."""
    return s.run(preflight.PREFLIGHT, preflight.PreflightInputs(
        install_inputs(s.settings), s.label, s.settings.backup_dir))


def state_scripts(s: Session, case: str, tree: dict) -> None:
    """The read-only scripts that describe a host: preflight, status, backups, change facts,
    cleanup list, verify, boot id."""
    st = s.settings
    record(s, preflight.PREFLIGHT, preflight.PreflightInputs(install_inputs(st), "h",
                                                             st.backup_dir), case, tree=tree)
    record(s, status.STATUS, status.status_inputs(st), case, tree=tree)
    pre = found(s)
    paths = HostPaths(pre.backup_dir)
    record(s, backup_scripts.LIST, backup_scripts.ListInputs(pre.backup_dir), case, tree=tree,
           backup_dir=pre.backup_dir)
    exact = changes.ChangeFactsInputs(
        install=install_inputs(st), paths=paths)
    record(s, changes.CHANGE_FACTS, exact, case, tree=tree, backup_dir=pre.backup_dir)
    record(s, cleanup.LIST, cleanup.ListInputs(install_inputs(st), paths), case, tree=tree,
           backup_dir=pre.backup_dir)
    record(s, verify.VERIFY, verify.VerifyInputs(install_inputs(st), 2), case, tree=tree)
    record(s, reboot.BOOT_ID, reboot.BootInputs(install_inputs(st)), case, tree=tree)


def dump_inputs(s: Session):
    pre = found(s)
    return pre, backup_scripts.dump_inputs(pre, s.settings.backup_compression,
                                           s.settings.dump_timeout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.rig.record", description=__doc__)
    parser.add_argument("--host", type=int, default=1)
    args = parser.parse_args(argv)
    rig = Rig()
    rig.up(max(3, args.host))
    host = rig.host(args.host)
    with host.lock():
        for layout in ("v4", "v3", "runbook"):
            host.reset(layout)
            s = session(host)
            state_scripts(s, f"{layout}_fresh", {})
            s.close()

        host.reset("v4")
        s = session(host)
        pre, dump = dump_inputs(s)
        st = s.settings
        record(s, backup_scripts.BACKUP, backup_scripts.BackupInputs(
            install_inputs(st), dump, True, True), "v4_verified_restore", tree={},
            backup_dir=pre.backup_dir)
        host.runbook_backups(nights=3, folder="/var/backups/trigger")
        host.add_truncated_dump("trigger-db-20251001-0300.sql.gz", folder="/var/backups/trigger")
        listing = s.run(backup_scripts.LIST, backup_scripts.ListInputs(pre.backup_dir))
        external = tuple(e.name for e in listing.files if e.name.endswith(".sql.gz"))
        own = tuple(e.name for e in listing.files if e.name.endswith(".sql.zst"))
        record(s, backup_scripts.INSPECT, backup_scripts.InspectInputs(
            install_inputs(st), dump, external, {n: hostpaths.stamp_of(n) for n in external},
            own), "v4_cron_and_own", tree={})
        host.require_reboot("linux-image-amd64")
        host.set_certificate(5)
        state_scripts(s, "v4_warnings", {})
        s.close()

        # A good update, then a failing one the host rolls back: their journals.
        for tag, case in (("v4.5.12", "update_done"), ("v4.5.16", "update_rolled_back")):
            s = session(host)
            pre, _ = dump_inputs(s)
            facts = s.run(changes.CHANGE_FACTS, changes.ChangeFactsInputs(
                install_inputs(s.settings), paths_of(pre)))
            now = datetime.now(UTC)
            plan = update_plan(tx_id(now, "update"), paths_of(pre),
                               free_name(list(facts.points), now), tag,
                               pre.installation.running or "",
                               pin_args(pre.installation.layout, tag), facts.migrations,
                               10 << 20, Budgets(600, 600, 300, 20), {})
            record(s, changes.TRANSACTION, changes.start_inputs(
                paths_of(pre), plan, runner(s, pre, plan)), case, tx=plan.tx,
                backup_dir=pre.backup_dir)
            s.close()
        s = session(host)
        state_scripts(s, "v4_after_updates", {})
        pre, dump = dump_inputs(s)
        paths = HostPaths(pre.backup_dir)
        record(s, changes.ACK, changes.AckInputs(paths, "x"), "ack", backup_dir=pre.backup_dir)
        host.pile_exited_containers(3)
        listing = s.run(cleanup.LIST, cleanup.ListInputs(install_inputs(s.settings), paths))
        plan = plan_cleanup(listing, 1, 1, 0)
        record(s, cleanup.APPLY, cleanup.ApplyInputs(
            install_inputs(s.settings), dump, paths, plan, kept_image_ids(listing, 1),
            hostpaths.stamp_of(plan.inspect_first) or ""), "v4_rotate_and_prune", tree={})
        boot = host.boot_id()
        record(s, reboot.REBOOT, reboot.RebootInputs(boot, True), "forced", tree={})
        s.close()
        deadline = time.monotonic() + 120
        while (host.boot_id() == boot or not host.is_up()) and time.monotonic() < deadline:
            time.sleep(0.5)

        host.reset("v4", "v4.5.15")  # a crash loop
        s = session(host)
        state_scripts(s, "v4_crash_loop", {})
        s.close()

        host.reset("v3")
        host.compose("stop", "coordinator")
        host.set_certificate(-2)
        s = session(host)
        state_scripts(s, "v3_failures", {})
        s.close()
        host.reset("v4")
    return 0


if __name__ == "__main__":
    sys.exit(main())
