"""Fake GitHub API: releases and security advisories of triggerdotdev/trigger.dev.

python -m tests.rig.fake_github --port P [--advisories FILE]; GET /_requests returns the
number of API requests served so far (and their log)."""

import argparse
import hashlib
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPO = "triggerdotdev/trigger.dev"
API = f"/repos/{REPO}"
WEB = f"https://github.com/{REPO}"
# tag, published_at (None for drafts), draft, prerelease; newest first as GitHub lists them
RELEASES = [
    ("v4.5.16", None, True, False), ("v4.5.15", None, True, False),
    ("v4.5.14", None, True, False), ("v4.6.0-rc.1", "2026-09-01T10:12:44Z", False, True),
    ("v4.5.13", "2026-08-28T16:40:02Z", False, False),
    ("v4.5.12", "2026-08-20T14:03:51Z", False, False),
    ("v4.5.11", "2026-08-12T09:27:13Z", False, False),
    ("v4.5.10", "2026-08-04T11:55:38Z", False, False),
    ("v3.3.18", "2025-03-05T13:21:09Z", False, False),
    ("v3.3.17", "2025-02-26T17:48:30Z", False, False),
    ("v.docker.2.2.5-remove-pg-notify-listen", "2024-06-11T08:30:00Z", False, False),
]
BREAKING = {"v4.5.12": "## Breaking changes\n\n- The webapp applies a new database migration "
                       "(`add_task_run_priority`); it cannot be rolled back without a backup.\n"
                       "- `TRIGGER_IMAGE_TAG` must match the CLI version used to deploy.\n\n"}
ADVISORIES = [
    ("GHSA-p28v-f755-9qrg", "CVE-2026-73654", "high", "2026-08-03T15:00:00Z",
     "Cross-tenant access to run payloads via crafted API keys", ">= 3.3.8, <= 4.5.5", "4.5.6"),
    ("GHSA-j6vv-pq9h-f4wj", "CVE-2026-73656", "critical", "2026-07-21T12:00:00Z",
     "Self-hosted instances accept default secrets shipped in .env.example", "< 4.5.6", "4.5.6"),
    ("GHSA-m3mf-37q7-8928", "CVE-2026-73659", "moderate", "2026-05-19T09:00:00Z",
     "Magic link login tokens do not expire", "< 4.5.0", "4.5.0"),
]


def release(index: int, tag: str, published, draft: bool, prerelease: bool) -> dict:
    """One release object as GET /repos/{owner}/{repo}/releases returns it."""
    rid = 250000000 - index * 1117
    image = f"Self-hosted Docker image: ghcr.io/{REPO}:{tag}\n\n" if tag[1].isdigit() else ""
    body = (f"{image}{BREAKING.get(tag, '')}## What's changed\n\n"
            f"- Fixes and improvements ({WEB}/compare/{tag})\n")
    created = published or "2026-09-20T08:00:00Z"
    return {
        "url": f"https://api.github.com{API}/releases/{rid}",
        "html_url": f"{WEB}/releases/tag/{tag}" if not draft else f"{WEB}/releases/tag/untagged",
        "assets_url": f"https://api.github.com{API}/releases/{rid}/assets",
        "id": rid, "node_id": f"RE_kwDO{rid:x}", "tag_name": tag,
        "target_commitish": "main", "name": f"trigger.dev {tag}", "draft": draft,
        "prerelease": prerelease, "immutable": False, "created_at": created,
        "published_at": published, "assets": [], "body": body,
        "tarball_url": f"https://api.github.com{API}/tarball/{tag}",
        "zipball_url": f"https://api.github.com{API}/zipball/{tag}",
        "author": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
    }


def advisory(ghsa, cve, severity, published, summary, affected, patched) -> dict:
    """One repository security advisory in GitHub's JSON shape."""
    return {
        "ghsa_id": ghsa, "cve_id": cve,
        "url": f"https://api.github.com{API}/security-advisories/{ghsa}",
        "html_url": f"{WEB}/security/advisories/{ghsa}",
        "summary": summary, "description": f"{summary}.\n\nUpgrade to {patched} or later.",
        "severity": severity, "state": "published", "author": None, "publisher": None,
        "identifiers": [{"type": "GHSA", "value": ghsa}] + ([{"type": "CVE", "value": cve}]
                                                          if cve else []),
        "created_at": published, "updated_at": published, "published_at": published,
        "closed_at": None, "withdrawn_at": None, "submission": None,
        "vulnerabilities": [{"package": {"ecosystem": "npm", "name": "@trigger.dev/core"},
                             "vulnerable_version_range": affected,
                             "patched_versions": patched, "vulnerable_functions": []}],
        "cvss": {"vector_string": None, "score": None}, "cwes": [], "credits": [],
        "credits_detailed": [], "collaborating_users": None, "collaborating_teams": None,
        "private_fork": None,
    }


class Handler(BaseHTTPRequestHandler):
    """Serves the two list endpoints with pagination, ETags and a request counter."""

    server_version = "GitHub.com"

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/_requests":
            with self.server.lock:
                return self.send_json({"count": len(self.server.log), "requests": self.server.log})
        with self.server.lock:
            self.server.log.append({"path": self.path,
                                    "if_none_match": self.headers.get("If-None-Match")})
        if url.path == f"{API}/releases":
            return self.send_page(url.path, query, self.server.releases)
        if url.path == f"{API}/security-advisories":
            items = [a for a in self.server.advisories
                     if query.get("state", "published") == a.get("state", "published")]
            return self.send_page(url.path, query, items)
        self.send_json({"message": "Not Found",
                        "documentation_url": "https://docs.github.com/rest"}, 404)

    def send_page(self, path: str, query: dict, items: list) -> None:
        per_page = max(1, min(100, int(query.get("per_page", 30))))
        page = max(1, int(query.get("page", 1)))
        last = max(1, -(-len(items) // per_page))
        rels = [("next", page + 1), ("last", last)] if page < last else []
        rels += [("prev", page - 1), ("first", 1)] if page > 1 else []
        host = self.headers.get("Host", "127.0.0.1")
        links = []
        for rel, number in rels:
            params = urllib.parse.urlencode({**query, "per_page": per_page, "page": number})
            links.append(f'<http://{host}{path}?{params}>; rel="{rel}"')
        chunk = items[(page - 1) * per_page: page * per_page]
        self.send_json(chunk, headers={"Link": ", ".join(links)} if links else {})

    def send_json(self, data, status: int = 200, headers: dict | None = None) -> None:
        body = json.dumps(data, indent=2).encode()
        etag = f'W/"{hashlib.sha256(body).hexdigest()}"'
        if status == 200 and self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("X-RateLimit-Limit", "60")
        self.send_header("X-RateLimit-Remaining", "59")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def make_server(port: int, extra_advisories=()) -> ThreadingHTTPServer:
    """The fake API on 127.0.0.1:port (0: any free port)."""
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.lock = threading.Lock()
    server.log = []
    server.releases = [release(i, *r) for i, r in enumerate(RELEASES)]
    advisories = [advisory(*a) for a in ADVISORIES]
    for extra in extra_advisories:
        base = advisory(extra["ghsa_id"], extra.get("cve_id"), "high",
                        extra.get("published_at", "2026-09-15T00:00:00Z"),
                        extra.get("summary", "Security issue"),
                        extra.get("vulnerable_version_range", "< 0.0.0"),
                        extra.get("patched_versions", "0.0.0"))
        advisories.insert(0, {**base, **extra})
    server.advisories = advisories
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--advisories", help="JSON file: list of extra advisory objects")
    args = parser.parse_args()
    extra = []
    if args.advisories:
        with open(args.advisories) as f:
            extra = json.load(f)
    server = make_server(args.port, extra)
    print(f"fake GitHub API on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
