"""Every script's parser against what the script really printed on rig hosts
(tests/unit/data/scripts, recorded by `python -m tests.rig.record`)."""

import json
from pathlib import Path

import pytest

from trigger_maint import backups, checks
from trigger_maint.config import settings
from trigger_maint.hostpaths import HostPaths
from trigger_maint.scripts import backups as backup_scripts
from trigger_maint.scripts import changes, cleanup, preflight, reboot, status, verify
from trigger_maint.scripts.base import install_inputs
from trigger_maint.verification import verify_report

DATA = Path(__file__).parent / "data" / "scripts"


def fixtures(template: str) -> list[Path]:
    return sorted((DATA / template).glob("*.json"))


def load(path: Path) -> tuple[dict, dict]:
    data = json.loads(path.read_text())
    return data["raw"], data["inputs"]


def ids(paths):
    return [p.stem for p in paths]


def test_every_script_has_recorded_fixtures():
    from tests.unit.test_scripts import all_scripts

    templates = {script.template for script in all_scripts().values()}
    assert templates == {p.name for p in DATA.iterdir() if p.is_dir()}
    assert all(fixtures(t) for t in templates)


@pytest.mark.parametrize("path", fixtures("preflight"), ids=ids(fixtures("preflight")))
def test_preflight(path):
    raw, stored = load(path)
    s = settings(stored["tree"])
    found = preflight.PREFLIGHT.parse(raw, preflight.PreflightInputs(install_inputs(s), "h", ""))
    layout = path.stem.split("_")[0]
    assert found.installation.layout.name == layout
    assert found.installation.running and found.docker_version and found.zstd
    expected = "/opt/trigger/backups" if layout == "runbook" else backups.DEFAULT_DIR
    assert found.backup_dir == expected
    assert set(found.installation.services) >= {"webapp", "postgres", "redis"}


@pytest.mark.parametrize("path", fixtures("status"), ids=ids(fixtures("status")))
def test_status(path):
    raw, stored = load(path)
    s = settings(stored["tree"])
    facts = status.STATUS.parse(raw, status.status_inputs(s))
    found = checks.evaluate(facts, s)
    states = {}
    for check in found:
        assert check.name in checks.NAMES
        states.setdefault(check.name, set()).add(check.state)
    assert set(states) >= {"containers", "webapp", "disk", "memory", "backup", "transaction",
                           "reboot", "version", "database", "secrets"}
    case = path.stem
    if case.endswith("fresh"):
        assert states["containers"] == {"ok"} and states["backup"] == {"fail"}
    if case == "v4_warnings":
        assert states["reboot"] == {"warn"} and "warn" in states["certificate"]
        assert states["backup"] == {"ok"}  # the newest usable is trigger-maint's, verified
    if case == "v4_crash_loop":
        assert "fail" in states["containers"] and states["webapp"] == {"fail"}
    if case == "v3_failures":
        assert "fail" in states["containers"] and "fail" in states["certificate"]


@pytest.mark.parametrize("path", fixtures("backups"), ids=ids(fixtures("backups")))
def test_backups_listing(path):
    raw, stored = load(path)
    folder = backup_scripts.LIST.parse(raw, backup_scripts.ListInputs(stored["backup_dir"]))
    found = backups.in_folder(folder)
    if path.stem.endswith("fresh"):
        assert found == []
    if path.stem == "v4_warnings":
        origins = {b.origin for b in found}
        assert origins == {"trigger-maint", "external"}
        assert any(b.known_bad for b in found)  # the truncated one, inspected as bad


def test_backup_made():
    raw, stored = load(DATA / "backup" / "v4_verified_restore.json")
    made = backup_scripts.BACKUP.parse(raw, None)
    assert made.verified and made.restore_tested and made.compression == "zstd"
    assert made.row_counts["TaskRun"] == 250 and made.migrations == 5


def test_inspection():
    raw, _ = load(DATA / "backups-verify" / "v4_cron_and_own.json")
    done = backup_scripts.INSPECT.parse(raw, None)
    sidecars = {name: json.loads(text) for name, text in done.inspected.items()}
    good = [s for s in sidecars.values() if all(s["checks"].values())]
    bad = [s for s in sidecars.values() if not all(s["checks"].values())]
    assert len(good) == 3 and len(bad) == 1 and not bad[0]["checks"]["complete"]
    assert all(len(sha) == 64 for sha in done.rehashed.values()) and done.rehashed


@pytest.mark.parametrize("path", fixtures("change-facts"), ids=ids(fixtures("change-facts")))
def test_change_facts(path):
    raw, stored = load(path)
    facts = changes.CHANGE_FACTS.parse(raw, changes.ChangeFactsInputs(
        install_inputs(settings({})), HostPaths(stored["backup_dir"])))
    assert facts.backup_free_bytes and facts.docker_free_bytes
    if path.stem == "v4_crash_loop":
        assert not facts.healthy
    else:
        assert facts.migrations is not None and facts.cluster_bytes
    if path.stem == "v4_after_updates":
        assert [p.state for p in facts.points] == ["rolled-back", "done"]
        assert facts.transactions.newest.endswith("-update") and not facts.transactions.current
        assert all(p.guard for p in facts.points)


@pytest.mark.parametrize("case, outcome", [("update_done", "done"),
                                           ("update_rolled_back", "rolled-back")])
def test_transaction_journal(case, outcome):
    raw, stored = load(DATA / "transaction" / f"{case}.json")
    followed = changes.TRANSACTION.parse(raw, changes.TransactionInputs(
        HostPaths(stored["backup_dir"]), stored["tx"], "start"))
    j = followed.journal
    assert followed.ended and j.outcome == outcome and j.tx == stored["tx"] == followed.tx
    assert j.done("guard_dump") and j.facts["guard"]
    if outcome == "rolled-back":
        assert j.failed_step == "wait_healthy" and j.facts["db_restored"] is True
        assert [s.name for s in j.steps if s.direction == "back"][:3] == [
            "restore_files", "retag", "restore_db"]


def test_ack():
    raw, _ = load(DATA / "tx-ack" / "ack.json")
    assert changes.ACK.parse(raw, None) == "x"


@pytest.mark.parametrize("path", fixtures("cleanup-list"), ids=ids(fixtures("cleanup-list")))
def test_cleanup_listing(path):
    raw, stored = load(path)
    listing = cleanup.LIST.parse(raw, cleanup.ListInputs(install_inputs(settings({})),
                                                         HostPaths(stored["backup_dir"])))
    assert listing.now.year >= 2026
    if path.stem == "v4_after_updates":
        assert len(listing.points) == 2 and listing.rollback_tags


def test_cleanup_apply():
    raw, _ = load(DATA / "cleanup" / "v4_rotate_and_prune.json")
    actions = cleanup.APPLY.parse(raw, None)
    assert actions and {a["kind"] for a in actions} >= {"container"}
    assert all(a["done"] for a in actions if a["kind"] == "container")


@pytest.mark.parametrize("path", fixtures("verify"), ids=ids(fixtures("verify")))
def test_verify(path):
    raw, stored = load(path)
    facts = verify.VERIFY.parse(raw, verify.VerifyInputs(install_inputs(settings({})), 2))
    report = verify_report("h", facts, facts.installation.running or "", 2, None)
    failed = {c.name for c in report.failures}
    if path.stem.endswith("fresh") or path.stem == "v4_after_updates":
        assert failed == set(), report
    if path.stem == "v4_crash_loop":
        assert {"services", "healthcheck"} <= failed


@pytest.mark.parametrize("path", fixtures("boot-id"), ids=ids(fixtures("boot-id")))
def test_boot_id(path):
    raw, _ = load(path)
    boot = reboot.BOOT_ID.parse(raw, None)
    assert len(boot.boot_id) == 36 and boot.docker_up and boot.containers
    # v4_after_updates was recorded on the v4_warnings host, reboot-required file and all
    assert boot.reboot_required == (path.stem in ("v4_warnings", "v4_after_updates"))


def test_reboot_issued():
    raw, _ = load(DATA / "reboot" / "forced.json")
    assert reboot.REBOOT.parse(raw, None) is True
