"""Pure logic of `update`: the target, the pin edit, the direction and the hazard gate."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from .errors import ConfigError, UnsafeError
from .hazards import Hazard, applicable
from .hostpaths import POINT_RE
from .inventory import normalize_version
from .layout import Layout

TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# Trigger.dev images whose tag moves with the release (the "image" pin edits these lines).
PINNED_IMAGES = ("trigger.dev", "supervisor", "coordinator", "provider/docker")

# The pin edit, run by the host's awk (mawk or gawk) on one file. Environment:
# TM_PIN_MODE dotenv|image, TM_PIN_RE (lines to edit), TM_PIN_TAG, TM_PIN_VARIABLE,
# TM_PIN_FINAL_NL (1 when the file ends with a newline). Only the value (the tag) of the
# matching lines changes: quotes, comments, CRLF and every other line stay byte for byte.
# A dotenv file without the variable gets it appended. Exit 3: no image line to pin;
# exit 4: a quote is not closed.
PIN_AWK = r"""
function retag(ref, tag,    i, slash, name) {
    sub(/@.*/, "", ref)
    slash = 0
    for (i = length(ref); i > 0; i--) if (substr(ref, i, 1) == "/") { slash = i; break }
    name = substr(ref, slash + 1)
    sub(/:.*/, "", name)
    return substr(ref, 1, slash) name ":" tag
}
BEGIN {
    mode = ENVIRON["TM_PIN_MODE"]; re = ENVIRON["TM_PIN_RE"]; tag = ENVIRON["TM_PIN_TAG"]
    sep = (mode == "image") ? "image:[ \t]*" : "=[ \t]*"
    edited = 0; bad = 0
}
{
    line = $0; cr = ""
    if (sub(/\r$/, "", line)) cr = "\r"
    if (line ~ re) {
        match(line, sep)
        head = substr(line, 1, RSTART + RLENGTH - 1)
        rest = substr(line, RSTART + RLENGTH)
        q = substr(rest, 1, 1)
        if (q == "\"" || q == "'") {
            end = index(substr(rest, 2), q)
            if (!end) { bad = 1; exit 4 }
            value = substr(rest, 2, end - 1)
            tail = substr(rest, end + 2)
        } else {
            q = ""; value = rest; tail = ""
            if (match(rest, /[ \t]+(#.*)?$/)) {
                value = substr(rest, 1, RSTART - 1); tail = substr(rest, RSTART)
            }
        }
        line = head q (mode == "image" ? retag(value, tag) : tag) q tail
        edited++
    }
    printf "%s%s%s", (NR > 1 ? "\n" : ""), line, cr
}
END {
    if (bad) exit 4
    if (edited == 0 && mode == "image") exit 3
    if (NR > 0 && (ENVIRON["TM_PIN_FINAL_NL"] == "1" || edited == 0)) printf "\n"
    if (edited == 0) printf "%s=%s\n", ENVIRON["TM_PIN_VARIABLE"], tag
}
"""


@dataclass(frozen=True)
class Pin:
    """Where and how one layout pins the Trigger.dev version."""

    mode: str  # "dotenv" or "image"
    variable: str  # TRIGGER_IMAGE_TAG (dotenv)
    files: tuple[str, ...]  # files to edit, relative to the installation
    line_regex: str  # ERE (awk) of the lines whose value is the pin
    image_repo: str  # the webapp image, whose reference must name the target afterwards


def pin_regex(layout: Layout) -> str:
    """The lines that hold the pin: `VAR=...` in .env, or the Trigger.dev image lines."""
    blank = "[ \\t]"
    if layout.pin == "dotenv":
        return f"^{blank}*(export{blank}+)?{re.escape(layout.pin_variable)}{blank}*="
    quote, word = "[\"']", "[^\"' \\t#]"
    owner = re.escape(layout.image_repo.split("/", 1)[0])
    names = "|".join(re.escape(name) for name in PINNED_IMAGES)
    return (f"^{blank}*image:{blank}*{quote}?({word}*/)?{owner}/({names})([:@]{word}*)?"
            f"{quote}?{blank}*(#.*)?$")


def pin_for(layout: Layout) -> Pin:
    """The pin of `layout`."""
    if layout.pin not in ("dotenv", "image"):
        raise ConfigError(f"layout {layout.name}: unknown pin {layout.pin!r}")
    files = (".env",) if layout.pin == "dotenv" else layout.compose_files
    return Pin(layout.pin, layout.pin_variable, tuple(files), pin_regex(layout),
               layout.image_repo)


def target_tag(target: str) -> str:
    """The image tag for `--target` ("4.5.12" -> "v4.5.12"; floating tags kept as given)."""
    target = (target or "").strip()
    version = normalize_version(target)
    tag = f"v{version}" if version else target
    if not TAG_RE.fullmatch(tag):
        raise ConfigError(f"--target: {target!r} is not a version or image tag")
    return tag


def choose_target(explicit: str | None, research) -> str | None:
    """The tag to pin: --target, else research's target, else None (pull current tags)."""
    if explicit:
        return target_tag(explicit)
    if research is not None and research.target:
        return research.target_tag or target_tag(research.target)
    return None


def _version(text: str | None) -> Version | None:
    try:
        return Version(normalize_version(text) or "") if text else None
    except InvalidVersion:
        return None


def hazards_for(running: str | None, tag: str | None, research) -> list[Hazard]:
    """The upgrade hazards of this jump: research's when it planned the same target,
    else those the package knows for running -> tag (none for a floating tag)."""
    if research is not None and tag and research.target_tag == tag:
        return list(research.hazards)
    target = _version(tag)
    return applicable(_version(running), target) if target else []


def check_hazards(hazards: Iterable[Hazard], acks: Iterable[str]) -> None:
    """Refuse (exit 4) while a hazard of this jump is not acknowledged by --ack."""
    given = set(acks or ())
    missing = [h for h in hazards if h.ack not in given and h.id not in given]
    if missing:
        first = missing[0]
        flags = " ".join(f"--ack {h.ack}" for h in missing)
        raise UnsafeError(f"upgrade hazard {first.id}: {first.text} "
                          f"(acknowledge with {flags})")


def check_direction(running: str | None, tag: str | None) -> None:
    """Refuse a target older than what runs: migrations only go forward; use rollback."""
    now, target = _version(running), _version(tag)
    if now and target and target < now:
        raise UnsafeError(f"target {tag} is older than the running v{running}; migrations "
                          "only go forward: use `rollback` to go back")


def check_point(point: str | None) -> str:
    """A rollback point name as given to --point ("" for the default one)."""
    if point and not POINT_RE.fullmatch(point):
        raise ConfigError(f"--point: {point!r} is not a rollback point name (YYYYmmdd-HHMMSS)")
    return point or ""


def pin_args(layout: Layout, tag: str) -> tuple[str, ...]:
    """The arguments of the runner's pin step: mode, line regex, the webapp image the compose
    files must name afterwards, tag, variable, files."""
    pin = pin_for(layout)
    return (pin.mode, pin.line_regex, f"{pin.image_repo}:{tag}", tag, pin.variable, *pin.files)
