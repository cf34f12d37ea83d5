"""The reboot scripts: which boot this is (and the installation's containers), and the
reboot itself."""

from __future__ import annotations

from dataclasses import dataclass

from ..inventory import Container, containers
from .base import InstallInputs, Script


@dataclass(frozen=True)
class BootInputs:
    install: InstallInputs


@dataclass(frozen=True)
class Boot:
    boot_id: str
    reboot_required: bool
    docker_up: bool
    containers: tuple[Container, ...]


def boot(raw: dict, inputs: BootInputs) -> Boot:
    return Boot(boot_id=str(raw.get("boot_id") or ""),
                reboot_required=raw.get("reboot_required") is True,
                docker_up=raw.get("docker_up") is True,
                containers=tuple(containers(raw.get("containers"))))


BOOT_ID = Script("boot-id", BootInputs, boot, requires=("boot_id",))


@dataclass(frozen=True)
class RebootInputs:
    boot_id: str  # the boot that was checked: refuse if the host rebooted since
    force: bool  # reboot even when /var/run/reboot-required is absent


REBOOT = Script("reboot", RebootInputs, lambda raw, inputs: raw.get("reboot_issued") is True,
                requires=("reboot_issued",), changes=True)
