"""Stand-in Trigger.dev webapp: prisma-like migrations, seed data, GET /healthcheck, and the
structured JSON logger's start-up noise while PostgreSQL, Redis and ClickHouse are not up."""

import hashlib
import http.server
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, "/rig")
import logfmt  # noqa: E402

ROOT = pathlib.Path("/triggerdotdev")
MIGRATIONS = ROOT / "internal-packages/database/prisma/migrations"
BEHAVIOUR = (ROOT / "rig/behaviour").read_text().strip()
PSQL = "/usr/lib/postgresql/15/bin/psql"
DB_URL = os.environ.get("DATABASE_URL", "").split("?")[0]

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ, "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ, "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0);"""

SEED = """BEGIN;
INSERT INTO "User" (id, email, name)
  SELECT 'user_' || i, 'user' || i || '@example.com', 'User ' || i FROM generate_series(1, 2) i;
INSERT INTO "Project" (id, slug, name, "userId")
  SELECT 'proj_' || i, 'project-' || i, 'Project ' || i, 'user_' || (1 + i % 2)
  FROM generate_series(1, 3) i;
INSERT INTO "RuntimeEnvironment" (id, slug, type, "projectId", "apiKey")
  SELECT 'env_' || p || '_' || t, t, upper(t), 'proj_' || p, 'tr_' || t || '_' || md5(p || t)
  FROM generate_series(1, 3) p, unnest(ARRAY['dev', 'staging', 'prod']) t;
INSERT INTO "TaskRun" (id, "friendlyId", status, "taskIdentifier", "projectId",
                       "runtimeEnvironmentId", payload)
  SELECT 'run_' || i, 'run_' || md5(i::text), 'COMPLETED_SUCCESSFULLY', 'task-' || (i % 7),
         'proj_' || (1 + i % 3), 'env_' || (1 + i % 3) || '_prod', '{"n": ' || i || '}'
  FROM generate_series(1, 250) i;
COMMIT;"""


# A server up for less than a second counts as still starting: the rig's tiny cluster is
# ready in a blink, a real one (shared buffers, recovery) is not.
STARTING_UP = "SELECT now() - pg_postmaster_start_time() < interval '1 second'"


def psql(sql: str, url: str = DB_URL, check: bool = True) -> str:
    """Run SQL with psql against url, return its unaligned output."""
    proc = subprocess.run([PSQL, url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"],
                          input=sql, text=True, capture_output=True, timeout=30)
    if check and proc.returncode:
        raise RuntimeError(proc.stderr.strip())
    return proc.stdout.strip() if proc.returncode == 0 else ""


def log(level: str, message: str, **fields) -> None:
    """One line of Trigger.dev's structured JSON logger."""
    logfmt.emit(logfmt.json_line("webapp", level, message, **fields))


def database_server() -> str:
    """host:port of DATABASE_URL, as prisma names it."""
    where = urllib.parse.urlsplit(DB_URL)
    return f"{where.hostname}:{where.port or 5432}"


def log_database_error(exc: Exception) -> None:
    """What prisma and the webapp log when the database does not answer."""
    server = database_server()
    if "password authentication failed" in str(exc):
        code, text = "P1000", f"Authentication failed against database server at `{server}`"
    else:
        code, text = "P1001", f"Can't reach database server at `{server}`"
    log("error", "Failed to connect to database", error={
        "name": "PrismaClientInitializationError", "errorCode": code,
        "message": f"{text}\n\nPlease make sure your database server is running at `{server}`."})
    print(f"Error: {code}: {text}", flush=True)


def wait_for_database() -> None:
    """Wait for the server, create the database if missing (as prisma does)."""
    base, _, name = DB_URL.rpartition("/")
    host, _, port = database_server().rpartition(":")
    for _ in range(120):
        try:
            refused = logfmt.tcp_error(host, int(port))  # a connect first, as prisma's engine
            if refused:
                raise RuntimeError(refused)
            if psql(STARTING_UP, f"{base}/postgres") == "t":
                raise RuntimeError("FATAL:  the database system is starting up")
            if not psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'", f"{base}/postgres"):
                psql(f'CREATE DATABASE "{name}"', f"{base}/postgres")
                print(f'PostgreSQL database {name} created at {base.rpartition("@")[2]}')
            return
        except RuntimeError as exc:
            log_database_error(exc)
            time.sleep(0.25)
    sys.exit(1)


def watch_redis() -> None:
    """ioredis' complaints while Redis does not answer (it retries in the background)."""
    host, port = os.environ.get("REDIS_HOST"), int(os.environ.get("REDIS_PORT", "6379"))
    if not host:
        return

    def failed(error: str) -> None:
        kind = "ReplyError" if error.startswith("LOADING") else "Error"
        log("error", "Redis connection error", error={
            "name": kind, "message": error, "code": error.split()[error.startswith("connect")]})
        print(f"[ioredis] Unhandled error event: {kind}: {error}", flush=True)
    if logfmt.retry(lambda: logfmt.redis_error(host, port), failed, interval=0.5, limit=120):
        log("info", "Redis client connected", host=host, port=port)


def watch_clickhouse() -> None:
    """The ClickHouse client's errors while ClickHouse does not answer."""
    url = urllib.parse.urlsplit(os.environ.get("CLICKHOUSE_URL", ""))
    if not url.hostname:
        return
    ping = f"http://{url.hostname}:{url.port or 8123}/ping"

    def failed(error: str) -> None:
        log("error", "ClickHouse query failed", name="clickhouse", error={
            "name": "Error", "message": error})
    if logfmt.retry(lambda: logfmt.http_error(ping), failed, interval=1.0, limit=120):
        log("info", "ClickHouse is reachable", host=url.hostname)


def start_warnings() -> None:
    """Warnings the real webapp logs at every start with a default self-hosted .env."""
    if not os.environ.get("CLICKHOUSE_URL"):
        log("warn", "CLICKHOUSE_URL is not set, ClickHouse features are disabled "
                    "(run replication, query insights)")
    else:
        log("warn", "CLICKHOUSE_URL uses http without TLS, credentials are sent in clear",
            secure=False)
    if os.environ.get("DIRECT_URL"):
        log("warn", "DIRECT_URL is deprecated and ignored, DATABASE_URL is used for migrations")
    else:
        log("warn", "No email transport configured (EMAIL_TRANSPORT), magic links are logged "
                    "instead of sent")


def migrate() -> None:
    """Apply pending migrations forward-only, recording them in _prisma_migrations."""
    local = sorted(p.name for p in MIGRATIONS.iterdir() if p.is_dir())
    print(f"{len(local)} migrations found in prisma/migrations")
    psql(MIGRATIONS_TABLE)
    applied = set(psql('SELECT migration_name FROM "_prisma_migrations" '
                       "WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL").split())
    for name in sorted(applied - set(local)):
        print(f"WARNING: migration {name} is applied in the database but missing locally")
    pending = [name for name in local if name not in applied]
    for name in pending:
        sql = (MIGRATIONS / name / "migration.sql").read_text()
        checksum = hashlib.sha256(sql.encode()).hexdigest()
        print(f"Applying migration `{name}`", flush=True)
        psql(f"BEGIN;\n{sql}\nINSERT INTO \"_prisma_migrations\" (id, checksum, finished_at, "
             f"migration_name, started_at, applied_steps_count) VALUES ('{uuid.uuid4()}', "
             f"'{checksum}', now(), '{name}', now(), 1);\nCOMMIT;")
    if pending:
        print("All migrations have been successfully applied.")
    else:
        print("No pending migrations to apply.")


def seed() -> None:
    """Insert the known rows on first start."""
    if psql('SELECT count(*) FROM "User"') == "0":
        psql(SEED)
        print("Seeded 2 users, 3 projects, 9 environments, 250 runs")
    shared = pathlib.Path("/home/node/shared")
    if shared.is_dir() and not (shared / "worker_token").exists():
        (shared / "worker_token").write_text(f"tr_wgt_{uuid.uuid4().hex}\n")


class Handler(http.server.BaseHTTPRequestHandler):
    """Healthcheck and a placeholder page; one log line per request on stdout."""

    def do_GET(self):
        if self.path.split("?")[0] == "/healthcheck":
            ok = BEHAVIOUR == "healthy" and psql("SELECT 1", check=False) == "1"
            self.reply(200 if ok else 500, "OK" if ok else "ERROR")
        elif self.path in ("/", "/login"):
            self.reply(200, "<html><title>Trigger.dev</title></html>")
        else:
            self.reply(404, "Not Found")

    def reply(self, status: int, body: str):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        print(f"{self.address_string()} - {fmt % args}", flush=True)


class Server(http.server.ThreadingHTTPServer):
    """One quiet line, not a traceback, when a client hangs up before its answer."""

    def handle_error(self, request, client_address):
        print(f"{client_address[0]} - client went away: {sys.exc_info()[1]!r}", flush=True)


def addresses() -> list[tuple[str, int]]:
    """Where to listen: own address and PORT; also RIG_PUBLISH (ip:port) if on loopback."""
    found = [(logfmt.own_address("webapp"), int(os.environ.get("PORT", "3000")))]
    ip, _, port = os.environ.get("RIG_PUBLISH", "").rpartition(":")
    if ip.startswith("127.") and port.isdigit() and (ip, int(port)) not in found:
        found.append((ip, int(port)))
    elif ip:
        log("error", "RIG_PUBLISH is not a loopback ip:port, not published", value=ip)
    return found


def serve(address: tuple[str, int]) -> Server:
    server = Server(address, Handler)
    print(f"server listening on http://{address[0]}:{address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    version = os.environ.get("BUILD_APP_VERSION", "v3")
    log("info", f"Starting Trigger.dev webapp {version}", appEnv="production")
    if BEHAVIOUR == "crash":
        print("Error: Invalid environment variables: ENCRYPTION_KEY must be 32 bytes", flush=True)
        sys.exit(1)
    start_warnings()
    for watch in (watch_redis, watch_clickhouse):
        threading.Thread(target=watch, daemon=True).start()
    wait_for_database()
    migrate()
    seed()
    for address in addresses():
        serve(address)
    log("info", "Trigger.dev webapp ready", version=version)
    threading.Event().wait()


if __name__ == "__main__":
    main()
