"""The cleanup scripts: list what could go (read-only), then remove exactly the plan."""

from __future__ import annotations

from dataclasses import dataclass

from .. import cleanup, hostpaths, points, transactions
from ..cleanup import Listing, Plan, short
from ..hostpaths import HostPaths
from .backups import DumpInputs, folder
from .base import InstallInputs, Script


@dataclass(frozen=True)
class ListInputs:
    install: InstallInputs
    paths: HostPaths
    rollback_repo: str = hostpaths.ROLLBACK_REPO
    sidecar_pattern: str = hostpaths.SIDECAR
    tx_pattern: str = hostpaths.TRANSACTION


def listing(raw: dict, inputs: ListInputs) -> Listing:
    tags = {t["tag"]: t["id"] for t in raw.get("rollback_tags") or [] if isinstance(t, dict)}
    return Listing(
        now=cleanup.host_now(raw),
        dangling=tuple(i for i in raw.get("dangling") or [] if isinstance(i, dict)),
        rollback_tags=tags,
        images={short(i["id"]): i for i in raw.get("images") or [] if isinstance(i, dict)},
        used_images=frozenset(short(i) for i in raw.get("used_images") or []),
        run_containers=tuple(c for c in raw.get("run_containers") or [] if isinstance(c, dict)),
        points=tuple(points.parse(raw.get("points") or [])),
        folder=folder(raw, inputs.paths.backup_dir),
        transactions=transactions.summary(raw.get("transactions")),
    )


LIST = Script("cleanup-list", ListInputs, listing,
              requires=("now", "dangling", "points", "files"))


@dataclass(frozen=True)
class ApplyInputs:
    install: InstallInputs
    dump: DumpInputs  # to inspect the newest backup before rotating
    paths: HostPaths
    plan: Plan
    kept_ids: tuple[str, ...]  # short IDs of every image a kept rollback point names
    inspect_stamp: str = ""
    dump_pattern: str = hostpaths.DUMP


APPLY = Script("cleanup", ApplyInputs, lambda raw, inputs: list(raw.get("actions") or []),
               requires=("actions",), changes=True)
