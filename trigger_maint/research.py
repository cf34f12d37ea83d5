"""Pure research logic: which release to update to, which advisories affect what runs."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .hazards import Hazard
from .web import ServiceError

TAG_RE = re.compile(r"v(\d+\.\d+\.\d+)(?:-((?:alpha|beta|rc)\.?\d+))?")
CONSTRAINT_RE = re.compile(r"(<=|>=|==|!=|<|>|=)?\s*v?(\d[\w.+-]*)")
COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
           "==": operator.eq, "!=": operator.ne}
HEADING_RE = re.compile(r"^(#{1,6})\s*(.*?)\s*#*\s*$")
BREAKING_RE = re.compile(r"breaking changes?\b", re.IGNORECASE)
BOLD_RE = re.compile(r"^\s*\*\*[^*]+\*\*:?\s*$")  # a line that is only bold text


@dataclass(frozen=True)
class Release:
    """One GitHub release whose tag names a Trigger.dev image version."""

    tag: str  # "v4.5.12"
    version: Version
    prerelease: bool
    url: str
    body: str

    @property
    def name(self) -> str:
        """The version as the tag spells it ("4.6.0-rc.1")."""
        return self.tag[1:]


@dataclass(frozen=True)
class Skipped:
    """A newer release that was not proposed, and why."""

    version: str
    reason: str


@dataclass(frozen=True)
class Advisory:
    """A published security advisory that affects the running version."""

    id: str  # GHSA id
    cve: str
    severity: str  # critical, high, medium, low or unknown
    summary: str
    affected: str  # the affected range as published
    fixed: str  # the patched version(s) as published; "" when none
    url: str


@dataclass(frozen=True)
class Note:
    """A release between the running version and the target, with its breaking changes."""

    version: str
    url: str
    breaking: str  # the "Breaking changes" section; "" when the release has none


@dataclass(frozen=True)
class Research:
    """What to update to and whether the running version is unsafe (interface for update)."""

    running: str | None  # "4.5.10"; None when the host's version cannot be told
    running_tag: str  # the tag the webapp runs (may be floating: v4, latest)
    running_digest: str
    floating: bool
    latest: str | None  # newest release on the line with a published image
    target: str | None  # what update should install; None when up to date
    target_tag: str  # image tag of target ("v4.5.12"), "" without a target
    target_digest: str  # registry digest of target_tag
    update_available: bool
    advisories: list[Advisory]
    advisories_checked: bool  # False with --target (GitHub is not asked)
    hazards: list[Hazard]
    notes: list[Note] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    source: str = "github"  # github, or --target
    requested: str | None = None  # --target as given
    allow_major: bool = False
    pre: bool = False

    @property
    def ok(self) -> bool:
        """No advisory affects what runs, and what runs is known."""
        return self.running is not None and not self.advisories


def _kind(value) -> str:
    for kind, name in ((bool, "true/false"), (str, "text"), (int | float, "a number"),
                       (dict, "an object"), (list, "a list")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


def malformed(where: str, detail: str) -> ServiceError:
    """The one-line error for a GitHub answer of the wrong shape."""
    return ServiceError(f"GitHub: malformed answer: {where}: {detail}")


def _field(item: dict, key: str, kind: type, where: str, required: bool = False):
    """item[key] when it is a `kind` (or null/missing unless `required`)."""
    value = item.get(key)
    if value is None and not required:
        return None
    if value is None:
        raise malformed(where, f"no {key}")
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        expected = {str: "text", bool: "true/false", list: "a list", dict: "an object"}[kind]
        raise malformed(where, f"{key} is {_kind(value)}, expected {expected}")
    return value


def _items(raw, what: str, plural: str) -> list[dict]:
    if not isinstance(raw, list):
        raise malformed("the answer", f"expected a list of {plural}, got {_kind(raw)}")
    for number, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise malformed(f"{what} {number}", f"expected an object, got {_kind(item)}")
    return raw


def check_releases(raw) -> list[dict]:
    """GitHub's list of releases, checked for the fields used here: ServiceError when an
    item is not a release (no tag_name, a field of the wrong type)."""
    for number, item in enumerate(_items(raw, "release", "releases"), 1):
        where = f"release {number}"
        tag = _field(item, "tag_name", str, where, required=True)
        where = f"release {tag or number}"
        for key in ("draft", "prerelease"):
            _field(item, key, bool, where)
        for key in ("html_url", "body"):
            _field(item, key, str, where)
    return raw


def check_advisories(raw) -> list[dict]:
    """GitHub's list of security advisories, checked for the fields used here: ServiceError
    when vulnerabilities or another field has an unexpected shape."""
    for number, item in enumerate(_items(raw, "advisory", "advisories"), 1):
        where = f"advisory {_field(item, 'ghsa_id', str, f'advisory {number}') or number}"
        for key in ("cve_id", "severity", "summary", "html_url", "withdrawn_at", "state"):
            _field(item, key, str, where)
        for index, entry in enumerate(_field(item, "vulnerabilities", list, where) or [], 1):
            if not isinstance(entry, dict):
                raise malformed(where, f"vulnerability {index} is {_kind(entry)}, "
                                       "expected an object")
            for key in ("vulnerable_version_range", "patched_versions"):
                _field(entry, key, str, f"{where} vulnerability {index}")
    return raw


def tag_version(tag: str, pre: bool = False) -> Version | None:
    """The version an image tag `vX.Y.Z` (or `vX.Y.Z-rc.N` with `pre`) names; None for
    any other tag (npm package tags, `v.docker.*`, floating or odd tags)."""
    match = TAG_RE.fullmatch(tag) if isinstance(tag, str) else None
    if not match or (match.group(2) and not pre):
        return None
    return Version(match.group(0)[1:])


def releases(raw: list[dict], pre: bool = False) -> list[Release]:
    """Usable releases, newest version first: no drafts, no odd tags, and no pre-releases
    unless `pre`. ServiceError when `raw` is not a list of releases."""
    found = []
    for item in check_releases(raw):
        version = tag_version(item.get("tag_name") or "", pre)
        prerelease = bool(item.get("prerelease")) or (version is not None
                                                      and version.is_prerelease)
        if item.get("draft") or version is None or (prerelease and not pre):
            continue
        found.append(Release(tag=item["tag_name"], version=version, prerelease=prerelease,
                             url=item.get("html_url") or "", body=item.get("body") or ""))
    return sorted(found, key=lambda r: r.version, reverse=True)


def choose(candidates: list[Release], running: Version | None, major: int | None,
           has_image: Callable[[str], str | None]) -> tuple[Release | None, str, list[Skipped]]:
    """The newest release on `major` (any major when None), newer than `running`, whose
    image is published (`has_image(tag)` gives its digest).

    Returns (release, its digest, skipped newer releases); (None, "", skipped) when
    nothing newer than `running` has an image.
    """
    skipped = []
    for release in candidates:
        if major is not None and release.version.major != major:
            continue
        if running is not None and release.version <= running:
            break
        digest = has_image(release.tag)
        if digest:
            return release, digest, skipped
        skipped.append(Skipped(release.name, f"no image {release.tag} in the registry"))
    return None, "", skipped


def specifiers(text: str) -> list[SpecifierSet]:
    """GitHub's affected range ("< 4.5.6, >= 3.3.8", "= 4.5.3", "<= 4.5.5") as specifier
    sets, one per `||` alternative; ValueError when it cannot be read."""
    sets = []
    for alternative in (text or "").split("||"):
        parts = [part.strip() for part in alternative.split(",") if part.strip()]
        if not parts:
            raise ValueError(f"empty range {text!r}")
        rules = []
        for part in parts:
            match = CONSTRAINT_RE.fullmatch(part)
            if not match:
                raise ValueError(f"cannot read {part!r}")
            op = {None: "==", "=": "=="}.get(match.group(1), match.group(1))
            rules.append(f"{op}{match.group(2)}")
        try:
            sets.append(SpecifierSet(",".join(rules)))
        except InvalidSpecifier as exc:
            raise ValueError(str(exc)) from None
    return sets


def covers(text: str, version: Version) -> bool:
    """Whether the affected range `text` contains `version`, ordered as npm does (a
    pre-release of 4.5.6 is below 4.5.6, so "< 4.5.6" covers it); ValueError when the
    range cannot be read."""
    return any(all(COMPARE[rule.operator](version, Version(rule.version)) for rule in rules)
               for rules in specifiers(text))


def _first_version(text: str) -> Version | None:
    match = CONSTRAINT_RE.search(text or "")
    try:
        return Version(match.group(2)) if match else None
    except InvalidVersion:
        return None


def vulnerable(vulnerability: dict, running: Version) -> bool:
    """Whether one advisory entry covers `running`.

    An unreadable or missing range falls back to the patched version (affected when
    below it), and without that too counts as affected: unknown is not safe.
    """
    try:
        return covers(vulnerability.get("vulnerable_version_range") or "", running)
    except ValueError:
        patched = _first_version(vulnerability.get("patched_versions") or "")
        return patched is None or running < patched


def affecting(raw: list[dict], running: Version) -> list[Advisory]:
    """The published, not withdrawn advisories with an entry that covers `running`.

    Every entry counts whatever its package: the packages share the image's version.
    ServiceError when `raw` is not a list of advisories.
    """
    found = []
    for item in check_advisories(raw):
        if item.get("withdrawn_at") or (item.get("state") or "published") != "published":
            continue
        entries = item.get("vulnerabilities") or [{}]
        hits = [v for v in entries if vulnerable(v, running)]
        if not hits:
            continue
        found.append(Advisory(
            id=item.get("ghsa_id") or "",
            cve=item.get("cve_id") or "",
            severity=item.get("severity") or "unknown",
            summary=" ".join((item.get("summary") or "").split()),
            affected=hits[0].get("vulnerable_version_range") or "(no range published)",
            fixed=hits[0].get("patched_versions") or "",
            url=item.get("html_url") or "",
        ))
    return found


def breaking_changes(body: str) -> str:
    """The "Breaking changes" section of a release body (Markdown); "" when it has none.

    The section is a heading (up to the next heading of its level or higher) or a bold
    line of its own (up to the next heading or bold line).
    """
    lines = (body or "").replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines):
        heading = HEADING_RE.match(line)
        if heading and BREAKING_RE.search(heading.group(2)):
            level = len(heading.group(1))
        elif BOLD_RE.match(line) and BREAKING_RE.search(line):
            level = 7
        else:
            continue
        section = []
        for rest in lines[index + 1:]:
            other = HEADING_RE.match(rest)
            if (other and len(other.group(1)) <= level) or (level == 7 and BOLD_RE.match(rest)):
                break
            section.append(rest)
        return "\n".join(section).strip()
    return ""


def notes_between(candidates: list[Release], running: Version | None,
                  target: Version) -> list[Note]:
    """The releases after `running` up to `target`, oldest first, with breaking changes."""
    return [Note(r.name, r.url, breaking_changes(r.body))
            for r in sorted(candidates, key=lambda r: r.version)
            if (running is None or r.version > running) and r.version <= target]


def describe(r: Research, registry: str) -> str:
    """The research result for people, in the runbook's words."""
    running = f"v{r.running}" if r.running else "unknown"
    if r.target:
        lines = [f"Update available: {running} -> {r.target_tag}"]
    elif r.running and (r.latest or r.source != "github"):
        lines = [f"Up to date: v{r.running}"]
    elif r.running:
        lines = [f"No release of the v{r.running.split('.')[0]} line with a published image "
                 f"found; cannot tell whether v{r.running} is current"]
    else:
        lines = ["Running version unknown: cannot tell whether an update is needed"]
    detail = f"tag {r.running_tag}" + (" (floating)" if r.floating else "")
    if r.running_digest:
        detail += f", digest {r.running_digest}"
    lines.append(f"running     {running} ({detail})")
    if r.source == "github":
        latest = f"v{r.latest}" if r.latest else "none with a published image"
        lines.append(f"latest      {latest}")
    else:
        lines.append(f"target      {r.target_tag or running} (given with --target)")
    if r.target_digest:
        lines.append(f"image       {registry}: {r.target_tag} {r.target_digest}")
    lines += [f"skipped     v{s.version}: {s.reason}" for s in r.skipped]
    if not r.advisories_checked:
        lines.append("advisories  not checked (--target does not ask GitHub)")
    elif r.running is None:
        lines.append("advisories  cannot be matched: the running version is unknown")
    elif not r.advisories:
        lines.append(f"advisories  none affect v{r.running}")
    else:
        lines.append(f"advisories  {len(r.advisories)} affect v{r.running}:")
        for a in r.advisories:
            ids = a.id + (f" / {a.cve}" if a.cve else "")
            fixed = f"; fixed in {a.fixed}" if a.fixed else "; no fix published"
            lines.append(f"  {a.severity.upper():8} {ids}: {a.summary} "
                         f"(affected {a.affected}{fixed})")
    if r.notes:
        lines.append("notes")
        for note in r.notes:
            if note.breaking:
                lines.append(f"  v{note.version}: breaking changes:")
                lines += [f"    {text}" for text in note.breaking.splitlines()]
            else:
                lines.append(f"  v{note.version}: no breaking changes listed")
    if r.hazards:
        lines.append("hazards     (update needs --ack NAME for each)")
        lines += [f"  [{h.ack}] {h.text}" for h in r.hazards]
    return "\n".join(lines)
