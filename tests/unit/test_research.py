"""Choosing the target, matching advisories, reading breaking changes (pure)."""

import json
from pathlib import Path

import pytest
from packaging.version import Version

from trigger_maint.hazards import HAZARDS, applicable
from trigger_maint.research import (
    Research,
    affecting,
    breaking_changes,
    choose,
    covers,
    describe,
    notes_between,
    releases,
    specifiers,
    tag_version,
    vulnerable,
)
from trigger_maint.web import ServiceError

DATA = Path(__file__).parent / "data"
RELEASES = json.loads((DATA / "github_releases.json").read_text())
ADVISORIES = json.loads((DATA / "github_advisories.json").read_text())
PUBLISHED = {"v4.5.9", "v4.5.10", "v4.5.11", "v4.5.12", "v4.6.0-rc.1", "v3.3.18"}


def has_image(tag):
    return f"sha256:{tag}" if tag in PUBLISHED else None


def test_tag_version_accepts_only_image_tags():
    assert tag_version("v4.5.12") == Version("4.5.12")
    assert tag_version("v4.6.0-rc.1") is None
    assert tag_version("v4.6.0-rc.1", pre=True) == Version("4.6.0rc1")
    for odd in ("v.docker.2.2.5-remove-pg-notify-listen", "helm-v4.5.13", "trigger.dev@4.4.1",
                "@trigger.dev/sdk@4.4.1", "v4", "latest", "v4-beta", "4.5.12", "",
                "v4.0.0-v4-beta.21"):
        assert tag_version(odd, pre=True) is None, odd


def test_releases_skip_drafts_prereleases_and_odd_tags():
    stable = releases(RELEASES)
    assert [r.tag for r in stable] == ["v4.5.13", "v4.5.12", "v4.5.11", "v4.5.10", "v4.5.9",
                                       "v3.3.18"]
    with_pre = releases(RELEASES, pre=True)
    assert with_pre[0].tag == "v4.6.0-rc.1" and with_pre[0].prerelease
    assert with_pre[0].name == "4.6.0-rc.1"
    assert "v4.5.14" not in {r.name for r in with_pre}  # the draft


def test_choose_newest_published_on_the_running_line():
    found, digest, skipped = choose(releases(RELEASES), Version("4.5.10"), 4, has_image)
    assert (found.tag, digest) == ("v4.5.12", "sha256:v4.5.12")
    assert [(s.version, s.reason) for s in skipped] == [
        ("4.5.13", "no image v4.5.13 in the registry")]


def test_choose_prerelease_only_when_asked_and_up_to_date_when_nothing_newer():
    found, _, _ = choose(releases(RELEASES, pre=True), Version("4.5.10"), 4, has_image)
    assert found.tag == "v4.6.0-rc.1"
    found, digest, skipped = choose(releases(RELEASES), Version("4.5.12"), 4, has_image)
    assert (found, digest) == (None, "")
    assert [s.version for s in skipped] == ["4.5.13"]


def test_choose_stays_on_the_major_unless_allowed():
    found, _, _ = choose(releases(RELEASES), Version("3.3.17"), 3, has_image)
    assert found.tag == "v3.3.18"
    found, _, _ = choose(releases(RELEASES), Version("3.3.17"), None, has_image)
    assert found.tag == "v4.5.12"


@pytest.mark.parametrize(("text", "inside", "outside"), [
    ("< 4.5.6", ["4.5.5", "3.0.0", "4.5.6rc1"], ["4.5.6", "4.5.7"]),
    ("<= 4.5.5", ["4.5.5"], ["4.5.6"]),
    (">= 3.3.8, <= 4.5.5", ["3.3.8", "4.0.0", "4.5.5"], ["3.3.7", "4.5.6"]),
    ("< 4.5.6, >= 3.3.8", ["3.3.8", "4.5.5"], ["3.3.7", "4.5.6"]),
    (">=4.5.10,<4.5.11", ["4.5.10"], ["4.5.9", "4.5.11"]),
    ("= 4.5.3", ["4.5.3"], ["4.5.2", "4.5.4"]),
    ("4.5.3", ["4.5.3"], ["4.5.4"]),
    ("> 4.0.0, < 4.1.0 || >= 4.5.0, < 4.5.2", ["4.0.1", "4.5.1"], ["4.0.0", "4.1.0", "4.5.2"]),
])
def test_affected_ranges_at_their_edges(text, inside, outside):
    for version in inside:
        assert covers(text, Version(version)), version
    for version in outside:
        assert not covers(text, Version(version)), version


def test_ranges_are_packaging_specifiers():
    assert [str(s) for s in specifiers("< 4.5.6, >= 3.3.8")] == ["<4.5.6,>=3.3.8"]
    assert [str(s) for s in specifiers("= 4.5.3 || >=4.5.9")] == ["==4.5.3", ">=4.5.9"]
    for bad in ("", "all versions", ">= 4.5.*", "< 4.5.6,, ||"):
        with pytest.raises(ValueError):
            specifiers(bad)


def test_unreadable_range_falls_back_to_the_patched_version_then_to_affected():
    assert vulnerable({"vulnerable_version_range": "all before the fix",
                       "patched_versions": ">= 4.5.6"}, Version("4.5.5"))
    assert not vulnerable({"vulnerable_version_range": "all before the fix",
                           "patched_versions": "4.5.6"}, Version("4.5.6"))
    assert vulnerable({"vulnerable_version_range": None, "patched_versions": None},
                      Version("9.9.9"))


def test_advisories_affecting_a_version():
    ids = {v: [a.id for a in affecting(ADVISORIES, Version(v))]
           for v in ("4.5.5", "4.5.6", "4.5.10", "4.5.11", "3.3.17", "3.3.7")}
    assert ids["4.5.5"] == ["GHSA-p28v-f755-9qrg", "GHSA-j6vv-pq9h-f4wj"]
    assert ids["4.5.6"] == []
    assert ids["4.5.10"] == ["GHSA-x4c2-7qv8-3hwq"]
    assert ids["4.5.11"] == []
    assert ids["3.3.17"] == ["GHSA-p28v-f755-9qrg", "GHSA-j6vv-pq9h-f4wj",
                             "GHSA-m3mf-37q7-8928", "GHSA-x4c2-7qv8-3hwq"]
    assert ids["3.3.7"] == ["GHSA-j6vv-pq9h-f4wj", "GHSA-m3mf-37q7-8928"]
    critical = affecting(ADVISORIES, Version("4.5.5"))[1]
    assert (critical.severity, critical.cve, critical.fixed, critical.affected) == (
        "critical", "CVE-2026-73656", "4.5.6", "< 4.5.6")
    second_range = affecting(ADVISORIES, Version("3.3.17"))[3]
    assert (second_range.affected, second_range.fixed) == ("= 3.3.17", "3.3.18")


def test_breaking_changes_sections():
    by_tag = {r["tag_name"]: r["body"] for r in RELEASES}
    assert breaking_changes(by_tag["v4.5.12"]).splitlines() == [
        "- The webapp no longer reads `V3_ENABLED`; remove it from `.env`.",
        "- `TRIGGER_IMAGE_TAG` must match the CLI version used to deploy "
        "([#4377](https://github.com/triggerdotdev/trigger.dev/pull/4377))"]
    assert breaking_changes(by_tag["v4.5.11"]) == ""
    bold = "Intro\n\n**Breaking changes:**\n- drop X\n\n**Fixes**\n- y\n"
    assert breaking_changes(bold) == "- drop X"
    nested = "## Breaking Changes\n\nA\n### Before\nold\n## New Features\nB\n"
    assert breaking_changes(nested) == "A\n### Before\nold"


def test_notes_between_running_and_target():
    notes = notes_between(releases(RELEASES), Version("4.5.10"), Version("4.5.12"))
    assert [n.version for n in notes] == ["4.5.11", "4.5.12"]
    assert notes[0].breaking == "" and "V3_ENABLED" in notes[1].breaking
    assert notes[1].url.endswith("/releases/tag/v4.5.12")


def test_hazards_apply_to_the_jumps_that_cross_them():
    def ids(a, b):
        return [h.id for h in applicable(Version(a) if a else None, Version(b))]

    assert ids("4.5.10", "4.5.12") == []
    assert ids("4.5.5", "4.5.6") == ["default-secrets"]
    assert ids("4.5.0", "4.5.12") == ["sdk-v3-tasks", "default-secrets", "clickhouse-image"]
    assert ids("4.4.5", "4.5.0") == ["clickhouse-secure-url", "clickhouse-25.8"]
    assert ids("3.3.17", "4.5.12")[0] == "v3-to-v4"
    assert ids(None, "4.5.12") == [h.id for h in HAZARDS]  # unknown running: all of them
    assert len({h.ack for h in HAZARDS}) == len(HAZARDS)


def research(**fields):
    base = dict(running="4.5.11", running_tag="v4", running_digest="sha256:aaa", floating=True,
                latest="4.5.12", target="4.5.12", target_tag="v4.5.12",
                target_digest="sha256:bbb", update_available=True, advisories=[],
                advisories_checked=True, hazards=[])
    return Research(**{**base, **fields})


def test_describe_in_the_runbook_words():
    notes = notes_between(releases(RELEASES), Version("4.5.11"), Version("4.5.12"))
    text = describe(research(notes=notes, advisories=affecting(ADVISORIES, Version("4.5.10")),
                             skipped=choose(releases(RELEASES), Version("4.5.11"), 4,
                                            has_image)[2]), "ghcr.io")
    lines = text.splitlines()
    assert lines[0] == "Update available: v4.5.11 -> v4.5.12"
    assert lines[1] == "running     v4.5.11 (tag v4 (floating), digest sha256:aaa)"
    assert "skipped     v4.5.13: no image v4.5.13 in the registry" in lines
    assert any("LOW" in line and "GHSA-x4c2-7qv8-3hwq" in line and "fixed in 4.5.11" in line
               for line in lines)
    assert "  v4.5.12: breaking changes:" in lines
    up_to_date = research(target=None, target_tag="", target_digest="", update_available=False)
    assert describe(up_to_date, "ghcr.io").splitlines()[0] == "Up to date: v4.5.11"
    assert research().ok and not research(running=None).ok
    assert not research(advisories=affecting(ADVISORIES, Version("4.5.10"))).ok


# GitHub answers of the wrong shape: one ServiceError line (exit 3), never a crash.

def _release(**fields):
    return {"tag_name": "v4.5.12", "draft": False, "prerelease": False,
            "html_url": "https://github.com/x/releases/v4.5.12", "body": "", **fields}


@pytest.mark.parametrize("raw, message", [
    ({"message": "API rate limit exceeded for 203.0.113.7.",
      "documentation_url": "https://docs.github.com/rest"},
     "GitHub: malformed answer: the answer: expected a list of releases, got an object"),
    ("<html>Unicorn!</html>", "the answer: expected a list of releases, got text"),
    (None, "the answer: expected a list of releases, got null"),
    ([_release(), "v4.5.11"], "release 2: expected an object, got text"),
    ([_release(tag_name=None)], "release 1: no tag_name"),
    ([{"draft": False, "body": "x"}], "release 1: no tag_name"),
    ([_release(tag_name=4512)], "release 1: tag_name is a number, expected text"),
    ([_release(tag_name=["v4.5.12"])], "release 1: tag_name is a list, expected text"),
    ([_release(body={"text": "x"})], "release v4.5.12: body is an object, expected text"),
    ([_release(html_url=7)], "release v4.5.12: html_url is a number, expected text"),
    ([_release(draft="no")], "release v4.5.12: draft is text, expected true/false"),
])
def test_releases_of_the_wrong_shape_are_a_service_error(raw, message):
    with pytest.raises(ServiceError) as err:
        releases(raw)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("GitHub: malformed answer: ")
    assert err.value.exit_code == 3


def _advisory(**fields):
    return {"ghsa_id": "GHSA-aaaa-bbbb-cccc", "severity": "high", "summary": "x",
            "state": "published", "withdrawn_at": None,
            "vulnerabilities": [{"vulnerable_version_range": "< 4.5.6",
                                 "patched_versions": "4.5.6"}], **fields}


@pytest.mark.parametrize("raw, message", [
    ({"message": "Not Found"}, "the answer: expected a list of advisories, got an object"),
    ([["GHSA"]], "advisory 1: expected an object, got a list"),
    ([_advisory(vulnerabilities="< 4.5.6")],
     "advisory GHSA-aaaa-bbbb-cccc: vulnerabilities is text, expected a list"),
    ([_advisory(vulnerabilities={"range": "< 4.5.6"})],
     "advisory GHSA-aaaa-bbbb-cccc: vulnerabilities is an object, expected a list"),
    ([_advisory(vulnerabilities=[1, 2])],
     "advisory GHSA-aaaa-bbbb-cccc: vulnerability 1 is a number, expected an object"),
    ([_advisory(vulnerabilities=[{"vulnerable_version_range": 4.5}])],
     "advisory GHSA-aaaa-bbbb-cccc vulnerability 1: vulnerable_version_range is a number"),
    ([_advisory(vulnerabilities=[{"patched_versions": ["4.5.6"]}])],
     "vulnerability 1: patched_versions is a list, expected text"),
    ([_advisory(ghsa_id=12)], "advisory 1: ghsa_id is a number, expected text"),
    ([_advisory(severity={"level": "high"})], "severity is an object, expected text"),
    ([_advisory(withdrawn_at=True)], "withdrawn_at is true/false, expected text"),
])
def test_advisories_of_the_wrong_shape_are_a_service_error(raw, message):
    with pytest.raises(ServiceError) as err:
        affecting(raw, Version("4.5.5"))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_lenient_where_github_is_lenient():
    # null fields and a missing vulnerabilities list are fine (unknown counts as affected)
    found = affecting([_advisory(vulnerabilities=None, cve_id=None, summary=None)],
                      Version("4.5.5"))
    assert [a.id for a in found] == ["GHSA-aaaa-bbbb-cccc"]
    assert affecting([_advisory(state=None)], Version("4.5.5"))
    assert [r.tag for r in releases([_release(body=None, html_url=None, draft=None)])] == \
        ["v4.5.12"]


def test_tag_version_of_something_that_is_not_text():
    for odd in (None, 4512, ["v4.5.12"], {"tag": "v4.5.12"}):
        assert tag_version(odd, pre=True) is None


def test_a_shape_error_lets_maintain_go_on_without_a_target():
    from trigger_maint.maintaining import ends_run

    with pytest.raises(ServiceError) as err:
        releases([_release(tag_name=1)])
    assert not ends_run("research", err.value)
