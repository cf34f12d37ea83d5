"""Integration-test rig: Docker hosts reachable over SSH on loopback (see README.md)."""

from .config import RigError
from .host import RigHost
from .rig import Rig

__all__ = ["Rig", "RigHost", "RigError"]
