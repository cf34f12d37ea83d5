"""Stand-in Trigger.dev webapp: prisma-like migrations, seed data, GET /healthcheck."""

import hashlib
import http.server
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

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


def psql(sql: str, url: str = DB_URL, check: bool = True) -> str:
    """Run SQL with psql against url, return its unaligned output."""
    proc = subprocess.run([PSQL, url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"],
                          input=sql, text=True, capture_output=True, timeout=30)
    if check and proc.returncode:
        raise RuntimeError(proc.stderr.strip())
    return proc.stdout.strip() if proc.returncode == 0 else ""


def wait_for_database() -> None:
    """Wait for the server, create the database if missing (as prisma does)."""
    base, _, name = DB_URL.rpartition("/")
    for _ in range(120):
        try:
            if not psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'", f"{base}/postgres"):
                psql(f'CREATE DATABASE "{name}"', f"{base}/postgres")
                print(f'PostgreSQL database {name} created at {base.rpartition("@")[2]}')
            return
        except RuntimeError as exc:
            error = exc
            time.sleep(0.25)
    print(f"Error: P1001: Can't reach database server: {error}", flush=True)
    sys.exit(1)


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


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    version = os.environ.get("BUILD_APP_VERSION", "v3")
    print(f"Starting Trigger.dev webapp {version}", flush=True)
    if BEHAVIOUR == "crash":
        print("Error: Invalid environment variables: ENCRYPTION_KEY must be 32 bytes", flush=True)
        sys.exit(1)
    wait_for_database()
    migrate()
    seed()
    address = (os.environ.get("RIG_ADDR", "127.0.0.1"), int(os.environ.get("PORT", "3000")))
    server = Server(address, Handler)
    print(f"server listening on http://{address[0]}:{address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
