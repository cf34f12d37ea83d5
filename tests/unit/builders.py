"""What the remote scripts report and what they are rendered from, built by hand.

`docker inspect` objects and the installation parts of a script result (shaped like Docker
27 and Compose v2 print them), StatusFacts, and plausible inputs for every remote script.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from trigger_maint import hostpaths
from trigger_maint.backups import FileEntry, Folder
from trigger_maint.checks import BackupFolder, StatusFacts, StatusReport, chosen_folder, evaluate
from trigger_maint.cleanup import Item
from trigger_maint.cleanup import Plan as CleanupPlan
from trigger_maint.config import settings
from trigger_maint.hostpaths import HostPaths
from trigger_maint.installation import Preflight, from_result
from trigger_maint.layout import PRESETS, candidates
from trigger_maint.plans import Budgets, restore_plan, rollback_plan, update_plan
from trigger_maint.points import PointImage, RollbackPoint
from trigger_maint.scripts.backups import BackupInputs, DumpInputs, InspectInputs
from trigger_maint.scripts.backups import ListInputs as BackupListInputs
from trigger_maint.scripts.base import InstallInputs, install_inputs
from trigger_maint.scripts.changes import (
    AckInputs,
    ChangeFactsInputs,
    RunnerInputs,
    TransactionInputs,
    runner_text,
    start_inputs,
)
from trigger_maint.scripts.cleanup import ApplyInputs
from trigger_maint.scripts.cleanup import ListInputs as CleanupListInputs
from trigger_maint.scripts.preflight import PreflightInputs
from trigger_maint.scripts.reboot import BootInputs, RebootInputs
from trigger_maint.scripts.status import status_inputs
from trigger_maint.scripts.verify import VerifyInputs
from trigger_maint.transactions import TxSummary
from trigger_maint.updating import PIN_AWK, pin_args

NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
STARTED = "2026-12-01T03:00:01.123456789Z"  # two hours before NOW
WEBAPP_IMAGE = "sha256:" + "1b" * 32
OTHER_IMAGE = "sha256:" + "2c" * 32
REGISTRY = "127.0.0.1:5000"
BACKUP_DIR = "/var/backups/trigger"
HOSTILE = "/opt/t r$(touch /tmp/pwned)'`x`\"; rm -rf /"


# ---- docker inspect ---------------------------------------------------------------------

def inspect(service: str, n: int, state="running", health="healthy", restarts=0, exit_code=0,
            policy="unless-stopped", image=OTHER_IMAGE, ref="postgres:14", env=(),
            started=STARTED, project="trigger") -> dict:
    """One `docker inspect` object of a compose service's container."""
    return {
        "Id": f"{n:x}" * 64,
        "Created": "2026-11-30T10:00:00.000000001Z",
        "Name": f"/{project}-{service}-1",
        "RestartCount": restarts,
        "Image": image,
        "State": {"Status": state, "Running": state == "running",
                  "Restarting": state == "restarting", "ExitCode": exit_code,
                  "StartedAt": started, "FinishedAt": "0001-01-01T00:00:00Z",
                  **({"Health": {"Status": health, "FailingStreak": 0}} if health else {})},
        "HostConfig": {"RestartPolicy": {"Name": policy, "MaximumRetryCount": 0}},
        "Config": {"Image": ref, "Env": list(env),
                   "Labels": {"com.docker.compose.project": project,
                              "com.docker.compose.service": service}},
    }


def webapp(n: int = 1, tag="v4.5.10", **kwargs) -> dict:
    """The webapp's container, its version in BUILD_APP_VERSION as the images set it."""
    return inspect("webapp", n, image=WEBAPP_IMAGE,
                   ref=f"{REGISTRY}/triggerdotdev/trigger.dev:{tag}",
                   env=[f"BUILD_APP_VERSION={tag}", "NODE_ENV=production"], **kwargs)


def stack(**webapp_kwargs) -> list[dict]:
    """A v4 stack, every container running and (where it has a healthcheck) healthy."""
    return [webapp(**webapp_kwargs), inspect("postgres", 2), inspect("redis", 3, health=""),
            inspect("electric", 4, health="", ref="electricsql/electric:1.2.4"),
            inspect("supervisor", 5, ref=f"{REGISTRY}/triggerdotdev/supervisor:v4.5.10")]


def compose_config(containers: list[dict], **extra_services) -> dict:
    """`docker compose config --format json` declaring the services of `containers`."""
    services = {c["Config"]["Labels"]["com.docker.compose.service"]: {"image": c["Config"]["Image"]}
                for c in containers}
    return {"name": "trigger", "services": {**services, **extra_services}}


def install_result(containers: list[dict] | None = None, layout="v4", path="/opt/trigger",
                   webapp_url="http://127.0.0.1:8030/healthcheck", pinned_tag="v4.5.10",
                   config: dict | None = ..., **extra) -> dict:
    """The installation parts of a script result (_installation, _containers, _version);
    `config` None: `docker compose config` failed."""
    found = stack() if containers is None else containers
    hook = next((c for c in found
                 if c["Config"]["Labels"]["com.docker.compose.service"] == "webapp"), None)
    version = {"webapp_container": hook,
               "webapp_image": {"Id": WEBAPP_IMAGE, "RepoDigests": [],
                                "Config": {"Labels": {}}},
               "core_package": ""} if hook else {}
    return {"layout": layout, "path": path, "webapp_url": webapp_url,
            "config": compose_config(found) if config is ... else config,
            "containers": found, **version, "pinned_tag": pinned_tag, **extra}


def installation(containers: list[dict] | None = None, layout="v4", **kwargs):
    """An Installation as a script found it."""
    return from_result(install_result(containers, layout, **kwargs), candidates(settings({})))


def preflight(backup_dir=BACKUP_DIR, layout="v4", zstd=False, **kwargs) -> Preflight:
    """The host and its installation as preflight found them (v4.5.10 running)."""
    return Preflight(host="127.0.0.29:2222", hostname="trigger-host-19",
                     os="Debian GNU/Linux 12 (bookworm)", kernel="6.1.0-28-amd64",
                     boot_id="0f1e2d3c-aaaa-bbbb-cccc-123456789abc", docker_version="27.3.1",
                     compose_version="2.29.7", docker_root="/var/lib/docker", zstd=zstd,
                     installation=installation(layout=layout, **kwargs), install_dumps=0,
                     backup_dir=backup_dir, backup_dir_reason="configured (trigger.backup_dir)")


# ---- status -----------------------------------------------------------------------------

DF_ROOT = "/dev/vda1 270553174016 116337864704 154215309312 43% /"
DF_BACKUPS = "/dev/vdb 107374182400 30064771072 77309411328 28% /var/backups"
MEMINFO = ("MemTotal:       24684084 kB\nMemFree:         9876543 kB\n"
           "MemAvailable:   14810450 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n"
           "HugePages_Total:       0\n")
POSTGRES = json.dumps({"size": 8068455, "slots": []})
CERTIFICATE = ("notAfter=Jan 30 04:58:55 2027 GMT\nsubject=CN = trigger.example.com\n"
               "issuer=C = US, O = Let's Encrypt, CN = R11")


# `certbot certificates` (certbot 2.1.0) with an expired, a nearly expired and a fine
# certificate, and one renewal configuration it could not read.
CERTBOT = """
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
Found the following certs:
  Certificate Name: old.example.com
    Serial Number: 60064b1e174d51d2fcfccb18426ea8a0aa3692fa
    Key Type: ECDSA
    Domains: old.example.com www.old.example.com
    Expiry Date: 2026-11-28 04:58:55+00:00 (INVALID: EXPIRED)
    Certificate Path: /etc/letsencrypt/live/old.example.com/fullchain.pem
    Private Key Path: /etc/letsencrypt/live/old.example.com/privkey.pem
  Certificate Name: soon.example.com
    Serial Number: 192fab66c2803076090ade3a6b49873493870945
    Key Type: ECDSA
    Domains: soon.example.com www.soon.example.com
    Expiry Date: 2026-12-06 04:58:55+00:00 (VALID: 4 days)
    Certificate Path: /etc/letsencrypt/live/soon.example.com/fullchain.pem
    Private Key Path: /etc/letsencrypt/live/soon.example.com/privkey.pem
  Certificate Name: trigger.example.com
    Serial Number: 2caa6d2e2ae29ab8aabcde440b26533e274961cd
    Key Type: ECDSA
    Domains: trigger.example.com www.trigger.example.com
    Expiry Date: 2027-01-30 04:58:55+00:00 (VALID: 59 days)
    Certificate Path: /etc/letsencrypt/live/trigger.example.com/fullchain.pem
    Private Key Path: /etc/letsencrypt/live/trigger.example.com/privkey.pem

The following renewal configurations were invalid:
  /etc/letsencrypt/renewal/broken.example.com.conf
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
"""
CERTBOT_NONE = """
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
No certificates found.
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
"""
LIVE = {"host": "trigger.example.com", "verify": "0 (ok)", "certificate": CERTIFICATE,
        "error": ""}  # what the status script measured of the domain's live certificate


def status_raw(**changes) -> dict:
    """What the status script measures on a healthy v4 host (its result beyond the
    installation parts and the folders); `changes` replaces keys."""
    raw = {
        "docker_root": "/var/lib/docker",
        "webapp_http": "200",
        "stats": [{"ID": "111111111111", "Name": "trigger-webapp-1", "CPUPerc": "1.02%",
                   "MemUsage": "255.9MiB / 23.54GiB", "MemPerc": "1.06%"},
                  {"ID": "222222222222", "Name": "trigger-postgres-1", "CPUPerc": "0.10%",
                   "MemUsage": "48.27MiB / 23.54GiB", "MemPerc": "0.20%"}],
        "disks": {"root": {"path": "/", "measured": "/", "df": DF_ROOT},
                  "backups0": {"path": BACKUP_DIR, "measured": BACKUP_DIR, "df": DF_BACKUPS}},
        "meminfo": MEMINFO,
        "reboot": {"required": False, "source": "/var/run/reboot-required", "packages": []},
        "run_containers": {"prefix": "runner-", "count": 0, "oldest_created": ""},
        "system_df": [{"Type": "Images", "Size": "4.2GB", "Reclaimable": "1.1GB (26%)"},
                      {"Type": "Containers", "Size": "63B", "Reclaimable": "0B (0%)"}],
        "postgres": POSTGRES,
        "default_secrets": [],
        "insecure_secrets_allowed": "",
        "certbot": None,
    }
    raw.update(changes)
    return raw


def backup_folder(*hours_ago: float, directory=BACKUP_DIR, now: datetime = NOW,
                  **sidecar) -> Folder:
    """A backup folder holding one verified dump (and its sidecar) per age in hours;
    `sidecar` changes what every sidecar says."""
    files, sidecars = [], {}
    for hours in hours_ago:
        done = now - timedelta(hours=hours)
        stamp = done.strftime(hostpaths.STAMP_FORMAT)
        name = hostpaths.dump_name(stamp)
        record = {"file": name, "origin": "trigger-maint", "purpose": "backup", "size": 12319,
                  "finished_at": done.strftime("%Y-%m-%dT%H:%M:%SZ"), "sha256": "ab" * 32,
                  "trigger_version": "4.5.10", "migrations": 5, "verified": True,
                  "checks": {"intact": True, "complete": True, "rows_match": True,
                             "size_plausible": True}, **sidecar}
        files += [FileEntry(name, 12319, done), FileEntry(hostpaths.sidecar_name(stamp), 700,
                                                          done)]
        sidecars[hostpaths.sidecar_name(stamp)] = json.dumps(record)
    return Folder(directory, tuple(files), sidecars)


def status_facts(raw: dict | None = None, folders: tuple[Folder, ...] = (),
                 tx: TxSummary | None = None, now: datetime = NOW,
                 containers: list[dict] | None = None, **install) -> StatusFacts:
    """StatusFacts of one host: measurements, installation and its candidate backup
    folders (by default one, BACKUP_DIR, empty)."""
    found = folders or (Folder(BACKUP_DIR, (), {}),)
    result = {**install_result(containers, **install), **(status_raw() if raw is None else raw)}
    inst = from_result(result, candidates(settings({})))
    return StatusFacts(now=now, installation=inst, raw=result, folders=tuple(
        BackupFolder(HostPaths(f.dir), f, tx or TxSummary()) for f in found))


# ---- inputs of every remote script ------------------------------------------------------

def install(layout="auto", path="/opt/trigger") -> InstallInputs:
    return install_inputs(settings({"layout": layout, "path": path}))


def dump(backup_dir=BACKUP_DIR, compression="gzip", volumes=("shared",)) -> DumpInputs:
    return DumpInputs(backup_dir=backup_dir, compression=compression, dump_timeout=3540,
                      trigger_version="4.5.10", volumes=tuple(volumes), project="trigger",
                      names=dict(hostpaths.NAMES))


BUDGETS = Budgets(pull=1800, dump=3600, health=300, health_fail=20)
POINT = RollbackPoint("20261201-040020", "done", tx="20261201-040020-update", version="4.5.10",
                      target="v4.5.12", migrations=5,
                      images=(PointImage("webapp", WEBAPP_IMAGE, True),),
                      guard="trigger-db-20261201-040019.sql.gz", guard_sha256="ab" * 32)


def plans(backup_dir=BACKUP_DIR) -> dict:
    """An update (with a pin), a rollback restoring the database and a restore."""
    from trigger_maint import backups

    paths = HostPaths(backup_dir)
    guard = backups.Backup(name=POINT.guard, path=f"{backup_dir}/{POINT.guard}",
                           stamp="20261201-040019", size=12319, mtime=NOW, origin="trigger-maint",
                           sha256="ab" * 32)
    return {
        "update": update_plan("20261201-050000-update", paths, "20261201-050000", "v4.5.12",
                              "4.5.10", pin_args(PRESETS["v4"], "v4.5.12"), 5, 100_000_000,
                              BUDGETS, {"from_version": "4.5.10"}),
        "update-current": update_plan("20261201-050000-update", paths, "20261201-050000", "",
                                      "4.5.10", (), 5, 100_000_000, BUDGETS, {}),
        "rollback": rollback_plan("20261201-050000-rollback", paths, POINT, 6, 100_000_000,
                                  True, BUDGETS, {"point": POINT.name}),
        "restore": restore_plan("20261201-050000-restore", guard, BUDGETS, {}),
    }


def runner(plan, layout="v4", path="/opt/trigger", backup_dir=BACKUP_DIR) -> str:
    """The runner script of `plan`, for the installation preflight found."""
    found = InstallInputs(path=path, layouts=(PRESETS[layout],), forced=True, webapp_url="")
    return runner_text(RunnerInputs(install=found, dump=dump(
        backup_dir, volumes=PRESETS[layout].volumes), paths=HostPaths(
        backup_dir), plan=plan, pull_timeout=1800, pin_awk=PIN_AWK))


def cleanup_plan() -> CleanupPlan:
    """A cleanup plan naming one item of every kind (a hostile backup name included)."""
    return CleanupPlan(items=(
        Item("container", "runner-cm1a2b3c", 120, "exited 48 h ago", ref="c" * 64,
             check="2026-11-29T11:59:59.123456789Z"),
        Item("tag", "trigger-maint/rollback:20261101-040000-webapp", 1000, "older point",
             ref=WEBAPP_IMAGE),
        Item("point", "20261101-040000", 0, "older rollback point (done)"),
        Item("image", "sha256:" + "4d" * 32, 4000, "dangling"),
        Item("backup", "trigger-db-20261101-030000.sql.gz'; rm -rf / #", 7, "old"),
        Item("backup", "trigger-db-20261101-030000.json", 900, "old"),
    ), kept=(), refused=(), newest_backup="trigger-db-20261130-0300.sql.gz",
        inspect_first="trigger-db-20261130-0300.sql.gz")


def script_inputs(template: str, layout="auto", path="/opt/trigger",
                  backup_dir=BACKUP_DIR) -> list:
    """Plausible inputs for the script of `template`: one or more instances of its inputs."""
    inst, paths = install(layout, path), HostPaths(backup_dir)
    s = settings({"layout": layout, "path": path, "backup_dir": backup_dir,
                  "domain": "trigger.example.com:8443"})
    tx = "20261201-050000-update"
    found = plans(backup_dir)
    return {
        "backup": [BackupInputs(inst, dump(backup_dir), True, True),
                   BackupInputs(inst, dump(backup_dir, "zstd", ()), False, False)],
        "backups": [BackupListInputs(backup_dir)],
        "backups-verify": [InspectInputs(inst, dump(backup_dir), (
            "trigger-db-20261130-0300.sql.gz",), {"trigger-db-20261130-0300.sql.gz":
                                                  "20261130-0300"},
            ("trigger-db-20261201-040019.sql.gz",)),
            InspectInputs(inst, dump(backup_dir), (), {}, ())],
        "change-facts": [ChangeFactsInputs(inst, paths)],
        "transaction": [start_inputs(paths, found["update"], runner(found["update"])),
                        start_inputs(paths, found["restore"], runner(found["restore"]),
                                     abandon="20261130-050000-update"),
                        TransactionInputs(paths=paths, tx=tx, mode="resume", resume="back"),
                        TransactionInputs(paths=paths, tx=tx, mode="attach")],
        "tx-ack": [AckInputs(paths, tx)],
        "cleanup-list": [CleanupListInputs(inst, paths)],
        "cleanup": [ApplyInputs(inst, dump(backup_dir), paths, cleanup_plan(),
                                (WEBAPP_IMAGE[7:19],), "20261130-0300"),
                    ApplyInputs(inst, dump(backup_dir), paths,
                                CleanupPlan(items=(), kept=(), refused=()), ())],
        "preflight": [PreflightInputs(inst, "root@trigger.example.com", ""),
                      PreflightInputs(inst, "h", backup_dir)],
        "boot-id": [BootInputs(inst)],
        "reboot": [RebootInputs("0f1e2d3c-aaaa-bbbb-cccc-123456789abc", False),
                   RebootInputs("0f1e2d3c-aaaa-bbbb-cccc-123456789abc", True)],
        "status": [status_inputs(s), status_inputs(settings({"layout": layout, "path": path,
                                                             "backup_dir": ""}))],
        "verify": [VerifyInputs(inst, 10)],
    }[template]


def healthy(**changes) -> StatusFacts:
    """A healthy v4 host with a live certificate and a fresh verified backup."""
    return status_facts(raw=status_raw(**{"tls": LIVE, **changes}), folders=(backup_folder(2),))


def status_report(facts: StatusFacts | None = None, research=None, host="127.0.0.29:2222",
                  allow_unknown=False, **tree) -> StatusReport:
    """The StatusReport the status task makes of `facts` (default: healthy()) with the
    settings `tree` and, when given, what research found."""
    facts = healthy() if facts is None else facts
    s = settings(tree)
    return StatusReport(host=host, checks=tuple(evaluate(facts, s, research)),
                        allow_unknown=allow_unknown,
                        backup_dir=chosen_folder(facts, s.backup_dir).paths.backup_dir)
