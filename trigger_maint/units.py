"""How numbers read for people: bytes, durations and versions, one way each."""

from __future__ import annotations


def size(n: int | float | None) -> str:
    """Bytes in binary units: 512 B, 1.5 KiB, 3.4 MiB, 1.2 GiB; "?" when unknown."""
    if n is None:
        return "?"
    value, unit = float(n), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"


def duration(seconds: float) -> str:
    """3700 -> "1 h"; rounded down to the largest unit (d, h, min, s)."""
    seconds = max(0, int(seconds))
    for length, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= length:
            return f"{seconds // length} {unit}"
    return f"{seconds} s"


def v(version: str | None) -> str:
    """A version as people write it, with its leading v ("4.5.10" -> "v4.5.10"); "" stays."""
    if not version:
        return ""
    return version if version.startswith("v") else f"v{version}"
