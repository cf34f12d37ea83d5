"""Log judging: levels per service format, the time window, start-up noise, the host-side
prefilter, health from Docker's probes, and readable output."""

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest

from trigger_maint.logs import (
    CANDIDATE_PATTERN,
    LEVEL_WORDS,
    Finding,
    Level,
    counts_from,
    healthy_since,
    image_repository,
    is_noise,
    judge,
    level_of,
    noise_rules,
    parse_docker_line,
    rules_from,
    startup_seconds,
    strip_escapes,
    summary,
    tail_distinct,
)

DBG, INF, NTC, WRN = Level.DEBUG, Level.INFO, Level.NOTICE, Level.WARNING
ERR, FTL, UNK = Level.ERROR, Level.FATAL, Level.UNKNOWN

# Example lines in each service's own format, as `docker logs` prints them (no timestamp).
WEBAPP = [  # Trigger.dev's structured logger (packages/core logger.ts): "level" last
    ('{"timestamp":"2026-12-03T09:00:31.012Z","name":"webapp","message":"Server listening",'
     '"port":3000,"level":"log"}', INF),
    ('{"timestamp":"2026-12-03T09:00:05.100Z","name":"webapp","message":"Database not ready, '
     'retrying","error":{"name":"PrismaClientInitializationError","message":"Can\'t reach '
     'database server at `postgres:5432`"},"level":"warn"}', WRN),
    ('{"timestamp":"2026-12-03T09:10:00.000Z","name":"webapp","message":"Error processing '
     'batch","error":{"name":"TypeError","message":"Cannot read properties of undefined '
     '(reading \'id\')","stack":"TypeError: Cannot read properties of undefined\\n    at '
     'processBatch (/triggerdotdev/apps/webapp/build/server.js:10:5)"},"level":"error"}', ERR),
    ('{"timestamp":"2026-12-03T09:00:31.100Z","name":"webapp","message":"Run engine worker '
     'started","level":"info"}', INF),
    ('{"timestamp":"2026-12-03T09:00:31.200Z","name":"webapp","message":"Polling queue",'
     '"level":"debug"}', DBG),
    ('{"timestamp":"2026-12-03T09:00:31.300Z","name":"webapp","message":"Tick","level":'
     '"verbose"}', DBG),
    ('{"timestamp":"2026-12-03T09:00:31.400Z","message":"Redis client ready","name":"webapp",'
     '"level":"WARN"}', WRN),
]
SUPERVISOR = [  # SimpleStructuredLogger: "$level" first
    ('{"timestamp":"2026-12-03T09:00:40.000Z","message":"Connected to platform","$name":'
     '"supervisor-session","$level":"log","type":"MANAGED","name":"bootstrap"}', INF),
    ('{"timestamp":"2026-12-03T09:00:12.000Z","message":"Failed to connect","$name":'
     '"supervisor-session","$level":"error","error":"TypeError: fetch failed (connect '
     'ECONNREFUSED 172.18.0.6:3000)"}', ERR),
    ('{"timestamp":"2026-12-03T09:00:40.100Z","message":"Run notifications disabled","$name":'
     '"supervisor-session","$level":"warn"}', WRN),
    ('{"timestamp":"2026-12-03T09:00:40.200Z","message":"Sending heartbeat","$name":'
     '"supervisor-session","$level":"debug"}', DBG),
    ('{"timestamp":"2026-12-03T09:20:00.000Z","message":"Failed to dequeue","$name":'
     '"queue-consumer","$level":"error","error":"Unauthorized"}', ERR),
    ('{"timestamp":"2026-12-03T09:00:40.300Z","message":"Resource monitor","$name":"docker",'
     '"$level":"info","level":"error"}', INF),
]
JSON_OTHER = [  # pino numbers, "severity", minio's JSON, broken and level-less JSON
    ('{"level":30,"time":1796288400000,"pid":1,"hostname":"a1b2","msg":"listening"}', INF),
    ('{"level":40,"time":1796288400000,"pid":1,"msg":"slow query"}', WRN),
    ('{"level":50,"time":1796288400000,"pid":1,"msg":"request failed"}', ERR),
    ('{"level":60,"time":1796288400000,"pid":1,"msg":"out of memory"}', FTL),
    ('{"level":20,"time":1796288400000,"pid":1,"msg":"tick"}', DBG),
    ('{"level":"50","msg":"request failed"}', ERR),
    ('{"severity":"ERROR","message":"export failed","time":"2026-12-03T09:10:00Z"}', ERR),
    ('{"severity":"WARNING","message":"retrying export"}', WRN),
    ('{"severity":"CRITICAL","message":"cannot continue"}', FTL),
    ('{"level":"INFO","time":"2026-12-03T09:00:00.123456789Z","message":"MinIO started"}', INF),
    ('{"level":"ERROR","errKind":"ALL","time":"2026-12-03T09:10:00.000000000Z","message":'
     '"Drive /data returned an unexpected error"}', ERR),
    ('{"level":"FATAL","time":"2026-12-03T09:10:00.000000000Z","message":"Unable to use the '
     'drive /data: drive not found"}', FTL),
    ('{"$level":"error","timestamp":"2026-12-03T09:10:00.000Z","message":"Failed to create '
     'pod","body":"aaaa', ERR),  # cut off by Docker at 16 KiB: the fragment still tells
    ('{"level":50,"msg":"cut', ERR),
    ('{"severity":"ERROR","message":"export failed: cut', ERR),
    ('{"lvl":50,"msg":"a number under another key is no level"}', UNK),
    ('{"severity":"50","msg":"nor here"}', UNK),
    ('{"lvl":"error","msg":"x"}', ERR),
    ('{"levelname":"CRITICAL","name":"worker","message":"x"}', FTL),
    ('{"message":"🔑 Reading worker token from file","tokenPath":"/home/node/.token"}', UNK),
    ("{ code: 'ECONNREFUSED', errno: -111, syscall: 'connect' }", UNK),
]
ELECTRIC = [  # Elixir Logger: time, optional metadata, [level]
    ("09:12:00.101 [info] Running Electric.Plug.Router with Bandit 1.6.7 at 0.0.0.0:3000 "
     "(http)", INF),
    ("09:12:00.350 [warning] Database connection error, retrying in 1000ms: connection "
     "refused", WRN),
    ("09:12:00.351 [error] Postgrex.Protocol (#PID<0.2766.0>) failed to connect: ** "
     "(DBConnection.ConnectionError) tcp connect (postgres:5432): connection refused - "
     ":econnrefused", ERR),
    ("09:12:00.352 pid=<0.2766.0> [error] Postgrex.Protocol (#PID<0.2766.0>) failed to "
     "connect: ** (Postgrex.Error) FATAL 57P03 (cannot_connect_now) the database system is "
     "starting up", ERR),
    ("09:12:05.010 [notice] Application electric exited: shutdown", NTC),
    ("09:12:05.011 [debug] Shape cache loaded", DBG),
    ("09:20:00.000 [error] GenServer Electric.Shapes.Consumer terminating", ERR),
    ("** (RuntimeError) shape log corrupted", UNK),
    ("09:12:00.350 [warn] Replication slot electric_slot_default is lagging", WRN),
    ("09:30:00.000 [critical] Electric.Connection.Manager exited", FTL),
]
BRACKETS = [  # other bracket tags: haproxy (docker-socket-proxy), generic apps
    ("[NOTICE]   (1) : New worker (8) forked", NTC),
    ("[WARNING]  (8) : Server dockerbackend/dockersocket is DOWN", WRN),
    ("[ALERT]    (1) : config : parsing [/usr/local/etc/haproxy/haproxy.cfg:10] : unknown "
     "keyword 'foo'", FTL),
    ("[2026-12-03 09:00:00] [ERROR] worker 3 crashed", ERR),
    ("[2026-12-03 09:00:00] [INFO] worker 3 started", INF),
    ("[ioredis] Reconnecting to redis:6379", UNK),
]
CLICKHOUSE = [  # ClickHouse's <Level>, and the Bitnami image's scripts
    ("2026.12.03 09:00:01.123456 [ 1 ] {} <Information> Application: Starting ClickHouse "
     "25.3.2.39 (revision: 54496, build id: 1A2B3C), PID 1", INF),
    ("2026.12.03 09:00:01.223456 [ 1 ] {} <Warning> Context: Delay accounting is not "
     "enabled, OSIOWaitMicroseconds will not be gathered.", WRN),
    ("2026.12.03 09:05:10.000123 [ 48 ] {8f3e2a4c-1b2d-4c5e-9f00-0a1b2c3d4e5f} <Error> "
     "executeQuery: Code: 60. DB::Exception: Unknown table expression identifier "
     "'trigger_dev.task_runs_v2' in scope SELECT count() FROM trigger_dev.task_runs_v2. "
     "(UNKNOWN_TABLE) (version 25.3.2.39 (official build)) (from 172.18.0.5:51234)", ERR),
    ("2026.12.03 09:06:00.000001 [ 60 ] {} <Error> ServerErrorHandler: Code: 210. "
     "DB::NetException: I/O error: Broken pipe, while writing to socket (172.18.0.4:8123 -> "
     "172.18.0.5:51234). (NETWORK_ERROR)", ERR),
    ("2026.12.03 09:00:01.323456 [ 1 ] {} <Debug> Application: Set up listeners", DBG),
    ("2026.12.03 09:00:01.423456 [ 7 ] {} <Trace> AsynchronousMetrics: Update", DBG),
    ("2026.12.03 09:00:01.523456 [ 1 ] {} <Fatal> BaseDaemon: ########## Short fault info "
     "############", FTL),
    ("2026.12.03 09:00:01.623456 [ 1 ] {} <Notice> Application: Listening on [::]:8123", NTC),
    ("Processing configuration file '/etc/clickhouse-server/config.xml'.", UNK),
    ("0. DB::Exception::Exception(DB::Exception::MessageMasked&&, int, bool) @ "
     "0x000000000d4b1c3b", UNK),
    ("clickhouse 09:00:00.52 INFO  ==> ** Starting ClickHouse setup **", INF),
    ("clickhouse 09:00:00.60 WARN  ==> You set the environment variable "
     "ALLOW_EMPTY_PASSWORD=yes. For safety reasons, do not use this flag in production.", WRN),
    ("clickhouse 09:00:01.00 ERROR ==> Could not find the configuration file", ERR),
    ("\x1b[38;5;6mclickhouse \x1b[38;5;5m09:00:00.52 \x1b[0m\x1b[1mINFO \x1b[0m ==> "
     "Initializing ClickHouse", INF),
]
POSTGRES = [  # log_line_prefix '%m [%p] '; two spaces after the level's colon
    ("2026-12-03 09:00:00.123 UTC [1] LOG:  starting PostgreSQL 14.17 (Debian "
     "14.17-1.pgdg120+1) on x86_64-pc-linux-gnu", INF),
    ("2026-12-03 09:00:00.623 UTC [1] LOG:  database system is ready to accept connections", INF),
    ("2026-12-03 09:00:00.223 UTC [64] FATAL:  the database system is starting up", FTL),
    ("2026-12-03 08:59:59.900 UTC [88] FATAL:  terminating connection due to administrator "
     "command", FTL),
    ('2026-12-03 09:05:00.000 UTC [90] ERROR:  relation "TaskRun" does not exist at '
     "character 15", ERR),
    ('2026-12-03 09:05:00.000 UTC [90] STATEMENT:  SELECT * FROM "TaskRun"', UNK),
    ('2026-12-03 09:05:01.000 UTC [91] ERROR:  duplicate key value violates unique '
     'constraint "User_email_key"', ERR),
    ("2026-12-03 09:05:01.000 UTC [91] DETAIL:  Key (email)=(a@example.com) already exists.",
     UNK),
    ("2026-12-03 09:05:02.000 UTC [92] HINT:  Check free disk space.", UNK),
    ("2026-12-03 09:05:03.000 UTC [1] PANIC:  could not write to file "
     '"pg_wal/xlogtemp.1": No space left on device', FTL),
    ("2026-12-03 09:00:00.300 UTC [70] WARNING:  there is no transaction in progress", WRN),
    ('2026-12-03 09:00:00.400 UTC [70] NOTICE:  relation "TaskRun" already exists, skipping',
     NTC),
    ("2026-12-03 09:00:00.500 UTC [71] LOG:  logical decoding found consistent point at "
     "0/1A2B3C4", INF),
    ("2026-12-03 09:00:00.501 UTC [71] CONTEXT:  while reading WAL", UNK),
    ("2026-12-03 09:00:00.600 UTC [72] LOG:  statement: SELECT 'ERROR:  not really'", INF),
    ("2026-12-03 09:00:00.700 UTC [73] FATAL:  connection to client lost", FTL),
    ('2026-12-03 09:00:00.800 UTC [74] FATAL:  password authentication failed for user '
     '"trigger"', FTL),
    ("PostgreSQL Database directory appears to contain a database; Skipping initialization",
     UNK),
    ("waiting for server to start....2026-12-03 09:00:00.100 UTC [48] LOG:  redirecting log "
     "output to logging collector process", INF),
    ("ERROR:  canceling statement due to statement timeout", ERR),
]
REDIS = [  # pid:role date time symbol message
    ("1:C 03 Dec 2026 09:00:00.101 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo", WRN),
    ("1:M 03 Dec 2026 09:00:00.102 * Ready to accept connections tcp", NTC),
    ("1:M 03 Dec 2026 09:00:00.103 # WARNING Memory overcommit must be enabled! Without it, "
     "a background save or replication may fail under low memory condition.", WRN),
    ("1:M 03 Dec 2026 09:00:00.104 - Accepted 172.18.0.5:43210", DBG),
    ("1:M 03 Dec 2026 09:00:00.105 . Client closed connection id=5 addr=172.18.0.5:43210", DBG),
    ("1:M 03 Dec 2026 09:10:00.000 # Error trying to save the DB, can't exit.", WRN),
    ("1:S 3 Dec 2026 09:00:00.106 * Connecting to MASTER redis-primary:6379", NTC),
]
REGISTRY = [  # docker distribution: logfmt
    ('time="2026-12-03T09:00:00.123456789Z" level=info msg="listening on [::]:5000" '
     "go.version=go1.20.8 instance.id=0b1c2d3e service=registry version=2.8.3", INF),
    ('time="2026-12-03T09:00:00.2Z" level=warning msg="No HTTP secret provided - generated '
     'random secret. This may cause problems with uploads if multiple registries are behind '
     'a load-balancer." go.version=go1.20.8 service=registry', WRN),
    ('time="2026-12-03T09:05:00.3Z" level=error msg="response completed with error" '
     'err.code="manifest unknown" err.detail="unknown tag=v4.0.4" err.message="manifest '
     'unknown" http.request.method=HEAD', ERR),
    ('time="2026-12-03T09:05:01.3Z" level=error msg="response completed with error" '
     'err.code=unauthorized err.message="authentication required" http.request.method=GET', ERR),
    ('time="2026-12-03T09:05:02.3Z" level=panic msg="runtime error: index out of range"', FTL),
    ("time=2026-12-03T09:00:00.000Z level=ERROR msg=\"upload failed\" err=EOF", ERR),
    ('172.18.0.1 - - [03/Dec/2026:09:00:00 +0000] "GET /v2/ HTTP/1.1" 200 2 "" '
     '"docker/27.3.1 go/go1.22.7"', UNK),
    ("time=2026-12-03T09:00:00Z lvl=warn msg=\"slow disk\"", WRN),
]
MINIO = [  # minio's console: INFO:, WARN:, ERRO:, a FATAL banner, and its error blocks
    ("INFO: Formatting 1st pool, 1 set(s), 1 drives per set.", INF),
    ("WARNING: Detected default credentials 'minioadmin:minioadmin', we recommend that you "
     "change these values with 'MINIO_ROOT_USER' and 'MINIO_ROOT_PASSWORD' environment "
     "variables", WRN),
    ("WARN: Detected Linux kernel version older than 4.0.0 release", WRN),
    ("ERRO: Unable to use the drive /data: drive not found", ERR),
    ("\x1b7\x1b[41m\x1b[97m\x1b[1mFATAL\x1b[0m \x1b8\x1b[6CUnable to prepare the list of "
     "endpoints: Invalid command line arguments", FTL),
    ("API: SYSTEM.storage", UNK),
    ("Time: 09:10:00 UTC 12/03/2026", UNK),
    ("Error: Drive /data returned an unexpected error: file access denied, please "
     "investigate - drive will be offline (*errors.errorString)", ERR),
    ("       6: internal/logger/logger.go:258:logger.LogIf()", UNK),
    ("ERRO[0003] Unable to reach the KMS", ERR),
    ("INFO[0000] Status: Online", INF),
]
PLAIN = [  # crashes at the start of an unindented line, and lines that are not errors
    ("Error: P1001: Can't reach database server at `postgres`:`5432`", ERR),
    ("Please make sure your database server is running at `postgres`:`5432`.", UNK),
    ("TypeError: Cannot read properties of undefined (reading 'id')", ERR),
    ('TypeError [ERR_INVALID_ARG_TYPE]: The "path" argument must be of type string. Received '
     "undefined", ERR),
    ("    at processTicksAndRejections (node:internal/process/task_queues:95:5)", UNK),
    ("    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)", UNK),
    ("Traceback (most recent call last):", ERR),
    ('  File "/app/main.py", line 3, in <module>', UNK),
    ("BrokenPipeError: [Errno 32] Broken pipe", ERR),
    ("requests.exceptions.ConnectionError: HTTPConnectionPool(host='webapp', port=3000)", ERR),
    ("java.lang.IllegalStateException: pool closed", ERR),
    ("panic: runtime error: invalid memory address or nil pointer dereference", FTL),
    ("goroutine 1 [running]:", UNK),
    ("FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory", FTL),
    ("fatal error: concurrent map writes", FTL),
    ("Uncaught TypeError: Cannot read properties of null (reading 'send')", ERR),
    ("[ioredis] Unhandled error event: Error: connect ECONNREFUSED 172.18.0.3:6379", ERR),
    ("Error: connect ECONNREFUSED 172.18.0.3:6379", ERR),
    ("error: failed to load config: no such file", ERR),
    ("(node:1) [DEP0040] DeprecationWarning: The `punycode` module is deprecated.", WRN),
    ("(node:1) Warning: Closing file descriptor 23 on garbage collection", WRN),
    ("prisma:error ", ERR),
    ("prisma:warn Prisma doesn't know which engines to download for the Linux distro", WRN),
    ("prisma:info Starting a postgresql pool with 21 connections.", INF),
    ("wait-for-it.sh: waiting 15 seconds for postgres:5432", UNK),
    ("wait-for-it.sh: timeout occurred after waiting 15 seconds for postgres:5432", UNK),
    ("Ignoring error while reading optional config, using defaults", UNK),
    ("Database error count: 0", UNK),
    ("  Error: indented, so a frame of the line above", UNK),
    ("ErrorBoundary mounted", UNK),
    ("Errors: 0, Warnings: 2", UNK),
    ("2026/12/03 09:00:02 goose: no migrations to run. current version: 20251201000000", UNK),
    ("", UNK),
]
FORMATS = {"webapp": WEBAPP, "supervisor": SUPERVISOR, "json": JSON_OTHER,
           "electric": ELECTRIC, "brackets": BRACKETS, "clickhouse": CLICKHOUSE,
           "postgres": POSTGRES, "redis": REDIS, "registry": REGISTRY, "minio": MINIO,
           "plain": PLAIN}
EXAMPLES = [(name, i, line, level) for name, cases in FORMATS.items()
            for i, (line, level) in enumerate(cases)]


@pytest.mark.parametrize(("line", "level"), [pytest.param(line, level, id=f"{name}-{i}")
                                             for name, i, line, level in EXAMPLES])
def test_level_of(line, level):
    assert level_of(line) is level


def test_levels_are_ordered():
    assert UNK < DBG < INF < NTC < WRN < ERR < FTL


@pytest.mark.parametrize(("raw", "time", "text"), [
    ("2026-12-03T09:00:00.123456789Z 1:M ready\n",
     datetime(2026, 12, 3, 9, 0, 0, 123456, tzinfo=UTC), "1:M ready"),
    ("2026-12-03T10:00:00.5+01:00 x", datetime(2026, 12, 3, 9, 0, 0, 500000, tzinfo=UTC), "x"),
    ("2026-12-03T09:00:00Z ", datetime(2026, 12, 3, 9, tzinfo=UTC), ""),
    ("2026-12-03T09:00:00.000000001Z   at frame (x.js:1:1)",
     datetime(2026, 12, 3, 9, tzinfo=UTC), "  at frame (x.js:1:1)"),
    ("no timestamp here", None, "no timestamp here"),
    ("2026-12-03 09:00:00.123 UTC [1] LOG:  x", None, "2026-12-03 09:00:00.123 UTC [1] LOG:  x"),
])
def test_parse_docker_line(raw, time, text):
    assert parse_docker_line(raw) == (time, text)


@pytest.mark.parametrize(("raw", "clean"), [
    ("\x1b[2K\rProgress 100%", "Progress 100%"),
    ("\x1b[31mERROR\x1b[0m boom", "ERROR boom"),
    ("\x1b[1;38;5;196mred\x1b[m", "red"),
    ("\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\", "link"),
    ("\x1b]0;window title\x07text", "text"),
    ("\x1b7\x1b[41mFATAL\x1b[0m \x1b8\x1b[6CUnable", "FATAL Unable"),
    ("\x1b[?25lhidden cursor\x1b[?25h", "hidden cursor"),
    ("a\tb\x00c\x07d\x08", "a\tbcd"),
    ("50%\r100%", "100%"),
    ("done\r", "done"),
    ("\x9b31mred\x9b0m", "red"),
    ("plain line", "plain line"),
    ("line\n", "line"),
])
def test_strip_escapes(raw, clean):
    assert strip_escapes(raw) == clean


STARTING = "FATAL:  the database system is starting up"
PG_BURST = [f"2026-12-03T09:00:{s:02d}.1Z \x1b[2K2026-12-03 09:00:{s:02d}.100 UTC [{60 + s}] "
            f"{STARTING}" for s in range(15)]


@pytest.mark.parametrize(("lines", "n", "tail"), [
    (PG_BURST, 5, [f"2026-12-03 09:00:14.100 UTC [74] {STARTING} (x15)"]),
    (["a", "b", "a"], 5, ["b", "a (x2)"]),
    (["a", "b", "c", "d"], 2, ["c", "d"]),
    (["  a  ", "", "   ", "\x1b[2K", "b"], 5, ["a", "b"]),
    ([*PG_BURST, "2026-12-03T09:00:20Z 1:M 03 Dec 2026 09:00:20.000 * Ready to accept"], 3,
     [f"2026-12-03 09:00:14.100 UTC [74] {STARTING} (x15)",
      "1:M 03 Dec 2026 09:00:20.000 * Ready to accept"]),
    (["x"] * 15, 3, ["x (x15)"]),
    (["a", "b"], 0, []),
    ([], 3, []),
])
def test_tail_distinct(lines, n, tail):
    assert tail_distinct(lines, n) == tail


def test_tail_distinct_output_is_readable():
    out = tail_distinct([*PG_BURST, *PG_BURST[:3]], 10)
    assert len(out) == 1 and "\x1b" not in out[0] and out[0].endswith("(x18)")


# ---- the host-side prefilter --------------------------------------------------------------

def _grep(lines):
    """The indexes of the lines `grep -aiE CANDIDATE_PATTERN` passes, as on the host."""
    text = "".join(f"2026-12-03T09:00:00.000000000Z {line}\n" for line in lines)
    done = subprocess.run(["grep", "-naiE", CANDIDATE_PATTERN], input=text.encode(),
                          capture_output=True, check=False)
    assert done.returncode in (0, 1), done.stderr
    return {int(row.split(b":", 1)[0]) - 1 for row in done.stdout.splitlines()}


def test_candidate_pattern_passes_every_error_line():
    lines = [line for _, _, line, _ in EXAMPLES]
    passed = _grep(lines)
    missed = [line for i, line in enumerate(lines) if level_of(line) >= ERR and i not in passed]
    assert not missed
    assert sum(level_of(line) >= ERR for line in lines) > 40


def test_candidate_pattern_passes_every_error_word_in_every_form():
    words = [w for w, level in LEVEL_WORDS.items() if level >= ERR]
    forms = [f"[{w}] x" for w in words] + [f"level={w} msg=x" for w in words]
    forms += [f'{{"level":"{w}","msg":"x"}}' for w in words]
    forms += [f'{{"$level":"{w.upper()}"}}' for w in words]
    forms += [f'{{"level": {n}, "msg":"x"}}' for n in (50, 55, 60, 100)]
    forms += ['{"level":"50"}', '{"level":60,"msg":"cut', '{"$level": 50}']
    forms += [f'{{"{key}":"{w}","msg":"cut' for key in ("lvl", "severity", "levelname")
              for w in words]
    assert all(level_of(line) >= ERR for line in forms)
    assert _grep(forms) == set(range(len(forms)))


def test_candidate_pattern_leaves_most_healthy_lines_on_the_host():
    quiet = [line for _, _, line, level in EXAMPLES if level in (INF, NTC, DBG)]
    assert len(_grep(quiet)) < len(quiet) / 4
    assert not _grep(['{"level":30,"msg":"listening"}', '{"level":40,"msg":"slow"}',
                      "1:M 03 Dec 2026 09:00:00.102 * Ready to accept connections tcp"])


# ---- noise as data ------------------------------------------------------------------------

WEBAPP_IMAGE = "ghcr.io/triggerdotdev/trigger.dev:v4.0.4"
SUPERVISOR_IMAGE = "ghcr.io/triggerdotdev/supervisor:v4.0.4"


@pytest.mark.parametrize(("image", "repository"), [
    ("ghcr.io/triggerdotdev/trigger.dev:v4.0.4", "triggerdotdev/trigger.dev"),
    ("postgres:14", "postgres"),
    ("docker.io/library/postgres:14-alpine", "postgres"),
    ("127.0.0.1:5000/triggerdotdev/supervisor:v4.0.4", "triggerdotdev/supervisor"),
    ("localhost/redis", "redis"),
    ("electricsql/electric@sha256:" + "ab" * 32, "electricsql/electric"),
    ("registry.example.com:5000/mirror/library/postgres:16@sha256:" + "cd" * 32,
     "mirror/library/postgres"),
    ("sha256:" + "ef" * 32, "sha256"),
    ("", ""),
])
def test_image_repository(image, repository):
    assert image_repository(image) == repository


NOISE = [  # (service, image, text, noise?)
    ("postgres", "postgres:14", POSTGRES[2][0], True),
    ("postgres", "postgres:14", POSTGRES[3][0], True),
    ("postgres", "postgres:14", POSTGRES[15][0], True),
    ("db", "registry.example.com:5000/mirror/library/postgres:16", POSTGRES[15][0], True),
    ("postgres", "postgres:14", POSTGRES[4][0], False),
    ("postgres", "postgres:14", POSTGRES[16][0], False),
    ("postgres", "postgres:14", POSTGRES[9][0], False),
    ("webapp", WEBAPP_IMAGE, PLAIN[0][0], True),
    ("worker", WEBAPP_IMAGE, PLAIN[0][0], True),
    ("webapp", WEBAPP_IMAGE, "Error: P1017: Server has closed the connection.", True),
    ("webapp", WEBAPP_IMAGE, PLAIN[16][0], True),
    ("webapp", WEBAPP_IMAGE, PLAIN[17][0], True),
    ("webapp", WEBAPP_IMAGE, PLAIN[2][0], False),
    ("webapp", WEBAPP_IMAGE, WEBAPP[2][0], False),
    ("webapp", WEBAPP_IMAGE, "Error: write EPIPE", True),
    ("webapp", WEBAPP_IMAGE, "Error: read ECONNRESET", True),
    ("webapp", WEBAPP_IMAGE, "Error: connect ECONNREFUSED 172.18.0.7:8123", True),
    ("electric", "electricsql/electric:1.0.13", ELECTRIC[2][0], True),
    ("electric", "electricsql/electric:1.0.13", ELECTRIC[3][0], True),
    ("electric", "electricsql/electric:1.0.13", ELECTRIC[6][0], False),
    ("webapp", WEBAPP_IMAGE, ELECTRIC[2][0], False),  # Electric's rule is Electric's
    ("supervisor", SUPERVISOR_IMAGE, SUPERVISOR[1][0], True),
    ("supervisor", SUPERVISOR_IMAGE, SUPERVISOR[4][0], False),
    ("supervisor", SUPERVISOR_IMAGE,
     '{"message":"[WS] Connection error","$level":"error","error":"websocket error"}', True),
    ("clickhouse", "clickhouse/clickhouse-server:25.3", CLICKHOUSE[3][0], True),
    ("clickhouse", "bitnami/clickhouse:25.3",
     "2026.12.03 09:06:00.000001 [ 60 ] {} <Error> TCPHandler: Code: 32. DB::Exception: "
     "Attempt to read after eof. (ATTEMPT_TO_READ_AFTER_EOF)", True),
    ("clickhouse", "clickhouse/clickhouse-server:25.3", CLICKHOUSE[2][0], False),
    ("registry", "registry:2", REGISTRY[2][0], True),
    ("registry", "registry:2", REGISTRY[3][0], False),
    ("minio", "minio/minio:latest", MINIO[7][0], False),
    ("anything", "example/app:1", PLAIN[8][0], True),
]


@pytest.mark.parametrize(("service", "image", "text", "noise"), NOISE)
def test_is_noise(service, image, text, noise):
    why = is_noise(service, image, text)
    assert (why is not None) is noise
    assert why is None or len(why) > 10


def test_noise_data_ships_in_the_package():
    text = resources.files("trigger_maint").joinpath("data", "log_noise.json").read_text(
        encoding="utf-8")
    data = json.loads(text)
    assert data["version"] == 1
    assert all(entry["why"] and entry["pattern"] for entry in data["noise"])
    rules = noise_rules()
    assert rules is noise_rules()  # cached
    assert len(rules.noise) == len(data["noise"])


@pytest.mark.parametrize(("data", "message"), [
    ({"version": 2}, "version"),
    ({"version": 1, "noise": [{"pattern": "x"}]}, "why"),
    ({"version": 1, "noise": [{"why": "x"}]}, "pattern"),
])
def test_rules_from_refuses_malformed_data(data, message):
    with pytest.raises(ValueError, match=message):
        rules_from(data)


@pytest.mark.parametrize(("service", "image", "seconds"), [
    ("webapp", WEBAPP_IMAGE, 180),
    ("trigger", "127.0.0.1:5000/triggerdotdev/trigger.dev:v4.0.4", 180),
    ("supervisor", SUPERVISOR_IMAGE, 180),
    ("electric", "electricsql/electric:1.0.13", 120),
    ("clickhouse", "bitnami/clickhouse:25.3", 120),
    ("redis", "redis:7", 60),
    ("postgres", "postgres:14", 60),
])
def test_startup_seconds_come_from_the_data(service, image, seconds):
    assert startup_seconds(service, image) == seconds


def test_startup_seconds_of_other_data():
    rules = rules_from({"version": 1, "startup_seconds": {
        "default": 30, "overrides": [{"images": ["redis"], "seconds": 5}]}})
    assert startup_seconds("cache", "redis:7", rules) == 5
    assert startup_seconds("cache", "valkey/valkey:8", rules) == 30


# ---- health from Docker's probes ----------------------------------------------------------

STARTED = "2026-12-03T09:00:00.123456789Z"
T0 = datetime(2026, 12, 3, 9, 0, 0, 123456, tzinfo=UTC)


def probe(second, code=0, took=0.2, zone="Z"):
    """One entry of State.Health.Log, `second` seconds after T0."""
    start = T0 + timedelta(seconds=second)
    end = start + timedelta(seconds=took)
    fmt = "%Y-%m-%dT%H:%M:%S.%f"
    if zone == "Z":
        start_text, end_text = start.strftime(fmt) + "123Z", end.strftime(fmt) + "123Z"
    else:
        shift = timedelta(hours=1)
        start_text = (start + shift).strftime(fmt) + "123+01:00"
        end_text = (end + shift).strftime(fmt) + "123+01:00"
    return {"Start": start_text, "End": end_text, "ExitCode": code,
            "Output": "ok" if code == 0 else "pg_isready: no response"}


def at(second):
    return T0 + timedelta(seconds=second, microseconds=200000)


@pytest.mark.parametrize(("log", "has_check", "since"), [
    pytest.param(None, False, T0 + timedelta(seconds=60), id="no-healthcheck"),
    pytest.param([], True, T0 + timedelta(seconds=60), id="no-probe-yet"),
    pytest.param([probe(5, 1), probe(10, 1), probe(15), probe(20)], True, at(15),
                 id="fails-then-passes"),
    pytest.param([probe(5), probe(10, 1), probe(15), probe(20), probe(25)], True, at(15),
                 id="passes-fails-passes"),
    pytest.param([probe(5, 1), probe(10, -1), probe(15), probe(20), probe(25)], True, at(15),
                 id="timeout-counts-as-failure"),
    pytest.param([probe(5), probe(10), probe(15)], True, at(5), id="all-pass-short-log"),
    pytest.param([probe(s) for s in (5, 10, 15, 20, 25)], True, at(5),
                 id="all-pass-log-reaches-start"),
    pytest.param([probe(s) for s in (3600, 3630, 3660, 3690, 3720)], True,
                 T0 + timedelta(seconds=60), id="all-pass-log-after-start"),
    pytest.param([probe(s, 1) for s in (5, 10, 15, 20, 25)], True,
                 T0 + timedelta(seconds=60), id="still-failing"),
    pytest.param([probe(-20, 1), probe(-10, 1), probe(5), probe(10), probe(15)], True, at(5),
                 id="probes-of-the-previous-run-ignored"),
    pytest.param([probe(5, 1, zone="+01:00"), probe(10, zone="+01:00")], True, at(10),
                 id="offset-times"),
    pytest.param([probe(15), probe(5, 1), probe(10)], True, at(10), id="unordered"),
    pytest.param([{"Start": "", "End": "", "ExitCode": 0}, probe(10)], True, at(10),
                 id="unreadable-probe-skipped"),
])
def test_healthy_since(log, has_check, since):
    assert healthy_since(STARTED, log, has_check, 60) == since


def test_electric_counts_from_its_allowance_though_its_health_check_passed_at_once():
    # /v1/health answers 202 while Electric waits for PostgreSQL: curl -f passes it
    passed = [probe(5), probe(10)]
    assert healthy_since(STARTED, passed, True, 120) == T0 + timedelta(seconds=5.2)
    assert counts_from("electric", "electricsql/electric:1.2.4", STARTED, passed, True) == \
        T0 + timedelta(seconds=120)
    assert counts_from("redis", "redis:7", STARTED, passed, True) == T0 + timedelta(seconds=5.2)
    late = [probe(130, code=1), probe(135)]  # still failing after the allowance
    assert counts_from("electric", "electricsql/electric:1.2.4", STARTED, late, True) == \
        T0 + timedelta(seconds=135.2)


def test_the_database_main_missing_is_noise_for_electric_and_postgres_only():
    electric = ('10:42:42.184 [error] Postgrex.Protocol (#PID<0.2653.0>) failed to connect: '
                '** (Postgrex.Error) FATAL 3D000 (invalid_catalog_name) database "main" does '
                'not exist')
    postgres = '2026-12-03 10:42:42.175 UTC [48] FATAL:  database "main" does not exist'
    assert is_noise("electric", "electricsql/electric:1.2.4", electric)
    assert is_noise("postgres", "postgres:14", postgres)
    assert is_noise("webapp", "ghcr.io/triggerdotdev/trigger.dev:v4.5.10", postgres) is None
    assert is_noise("postgres", "postgres:14", postgres.replace("main", "trigger")) is None


def test_healthy_since_takes_a_datetime_and_refuses_nonsense():
    assert healthy_since(T0, None, False, 30) == T0 + timedelta(seconds=30)
    with pytest.raises(ValueError):
        healthy_since("yesterday", None, False, 30)


# ---- judging ------------------------------------------------------------------------------

HEALTHY = datetime(2026, 12, 3, 9, 0, 30, tzinfo=UTC)


def stamp(second, text):
    """A `docker logs --timestamps` line, `second` seconds after 09:00:00."""
    when = datetime(2026, 12, 3, 9, tzinfo=UTC) + timedelta(seconds=second)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z " + text + "\n"


NEW_ERROR = WEBAPP[2][0]
CASES = [  # (id, service, image, lines, texts of the findings)
    ("start-up-burst-before-healthy", "webapp", WEBAPP_IMAGE,
     [stamp(2, PLAIN[0][0]), stamp(3, PLAIN[1][0]), stamp(4, PLAIN[2][0]),
      stamp(5, "Error: something unknown"), stamp(31, WEBAPP[0][0])], []),
    ("new-error-after-healthy", "webapp", WEBAPP_IMAGE,
     [stamp(2, PLAIN[0][0]), stamp(31, WEBAPP[0][0]), stamp(40, NEW_ERROR),
      stamp(40, "    at processBatch (/triggerdotdev/apps/webapp/build/server.js:10:5)")],
     [NEW_ERROR]),
    ("error-at-the-window-start-counts", "postgres", "postgres:14",
     [stamp(30, POSTGRES[4][0])], [POSTGRES[4][0]]),
    ("warning-with-error-word-never-counts", "electric", "electricsql/electric:1.0.13",
     [stamp(s, ELECTRIC[1][0]) for s in range(0, 60, 3)], []),
    ("client-hang-up-after-healthy-is-noise", "webapp", WEBAPP_IMAGE,
     [stamp(45, "Error: write EPIPE"), stamp(45, "    at afterWriteDispatched (node:net:1)"),
      stamp(46, '{"message":"Request aborted","error":{"code":"ECONNRESET"},"level":"error"}')],
     []),
    ("postgres-restart-after-healthy-is-noise", "electric", "electricsql/electric:1.0.13",
     [stamp(50, ELECTRIC[2][0]), stamp(51, ELECTRIC[3][0]), stamp(55, ELECTRIC[0][0])], []),
    ("fatal-counts", "postgres", "postgres:14", [stamp(60, POSTGRES[9][0])], [POSTGRES[9][0]]),
    ("escapes-stripped", "minio", "minio/minio:latest", [stamp(70, MINIO[4][0])],
     ["FATAL Unable to prepare the list of endpoints: Invalid command line arguments"]),
    ("untimed-line-takes-the-time-before", "webapp", WEBAPP_IMAGE,
     [stamp(5, "starting"), "TypeError: before healthy\n", stamp(35, "ready"),
      "TypeError: after healthy\n"], ["TypeError: after healthy"]),
    ("untimed-first-line-counts", "webapp", WEBAPP_IMAGE, ["TypeError: age unknown\n"],
     ["TypeError: age unknown"]),
]


@pytest.mark.parametrize(("service", "image", "lines", "texts"),
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_judge(service, image, lines, texts):
    found = judge(lines, HEALTHY, service, image)
    assert [f.text for f in found] == texts
    assert all(f.service == service and f.level >= ERR and f.time >= HEALTHY for f in found
               if f.time is not None)


def test_judge_finding_fields():
    [found] = judge([stamp(40, NEW_ERROR)], HEALTHY, "webapp", WEBAPP_IMAGE)
    assert found == Finding("webapp", datetime(2026, 12, 3, 9, 0, 40, tzinfo=UTC), ERR,
                            NEW_ERROR)


# A healthy stack restarted at 09:00:00, every service's start-up as it really goes.
RESTART = {  # service: (image, has healthcheck, probes, lines)
    "postgres": ("postgres:14", True, [probe(5, 1), probe(10)], [
        stamp(0, "PostgreSQL Database directory appears to contain a database; Skipping "
                 "initialization"),
        stamp(1, "2026-12-03 09:00:01.000 UTC [1] LOG:  starting PostgreSQL 14.17"),
        stamp(2, "2026-12-03 09:00:02.000 UTC [27] LOG:  database system was interrupted; "
                 "last known up at 2026-12-03 08:59:50 UTC"),
        stamp(3, "2026-12-03 09:00:03.000 UTC [64] FATAL:  the database system is starting up"),
        stamp(3, "2026-12-03 09:00:03.100 UTC [65] FATAL:  the database system is starting up"),
        stamp(8, "2026-12-03 09:00:08.000 UTC [1] LOG:  database system is ready to accept "
                 "connections"),
        stamp(200, "2026-12-03 09:03:20.000 UTC [90] FATAL:  connection to client lost"),
    ]),
    "redis": ("redis:7", True, [probe(3)], [stamp(0, REDIS[0][0]), stamp(0, REDIS[2][0]),
                                             stamp(1, REDIS[1][0])]),
    "webapp": (WEBAPP_IMAGE, True, [probe(10, 1), probe(20, 1), probe(30)], [
        stamp(1, "wait-for-it.sh: waiting 15 seconds for postgres:5432"),
        stamp(2, "Prisma schema loaded from prisma/schema.prisma"),
        stamp(3, PLAIN[0][0]), stamp(3, ""), stamp(3, PLAIN[1][0]),
        stamp(4, PLAIN[16][0]), stamp(4, "    at TCPConnectWrap.afterConnect [as oncomplete]"),
        stamp(5, WEBAPP[1][0]), stamp(9, "Error: connect ECONNREFUSED 172.18.0.7:8123"),
        stamp(29, WEBAPP[0][0]),
        stamp(95, "Error: write EPIPE"),
    ]),
    "electric": ("electricsql/electric:1.0.13", False, None, [
        stamp(2, ELECTRIC[2][0]), stamp(3, ELECTRIC[1][0]), stamp(4, ELECTRIC[3][0]),
        stamp(5, ELECTRIC[0][0]),
    ]),
    "supervisor": (SUPERVISOR_IMAGE, False, None, [
        stamp(12, SUPERVISOR[1][0]), stamp(40, SUPERVISOR[0][0]),
        stamp(200, '{"timestamp":"2026-12-03T09:03:20.000Z","message":"[WS] Connection error",'
                   '"$name":"supervisor-session","$level":"error","error":"xhr poll error"}'),
    ]),
    "clickhouse": ("clickhouse/clickhouse-server:25.3", True, [probe(4), probe(6)], [
        stamp(0, CLICKHOUSE[8][0]), stamp(1, CLICKHOUSE[0][0]), stamp(1, CLICKHOUSE[1][0]),
        stamp(300, CLICKHOUSE[3][0]),
    ]),
    "registry": ("registry:2", False, None, [
        stamp(0, REGISTRY[1][0]), stamp(0, REGISTRY[0][0]), stamp(120, REGISTRY[2][0]),
    ]),
    "minio": ("minio/minio:latest", True, [probe(2)], [
        stamp(0, MINIO[1][0]), stamp(0, MINIO[0][0]),
    ]),
}


def judge_restart(extra=()):
    found = []
    for service, (image, has_check, probes, lines) in RESTART.items():
        since = healthy_since(STARTED, probes, has_check, startup_seconds(service, image))
        found += judge([*lines, *(raw for name, raw in extra if name == service)], since,
                       service, image)
    return found


def test_a_freshly_restarted_healthy_stack_passes():
    assert judge_restart() == []
    assert summary(judge_restart()) == "no error lines since healthy"


def test_a_new_error_in_a_restarted_stack_fails():
    found = judge_restart([("webapp", stamp(100, NEW_ERROR)),
                           ("postgres", stamp(100, POSTGRES[16][0]))])
    assert [(f.service, f.level) for f in found] == [("postgres", FTL), ("webapp", ERR)]


# ---- the one-liner ------------------------------------------------------------------------

def finding(service, text, level=ERR):
    return Finding(service, HEALTHY, level, text)


@pytest.mark.parametrize(("findings", "line"), [
    ([], "no error lines since healthy"),
    ([finding("webapp", "TypeError: x")],
     "webapp: 1 error line since healthy, last: TypeError: x"),
    ([finding("webapp", "TypeError: x"), finding("postgres", "ERROR:  y"),
      finding("webapp", "TypeError: z", FTL)],
     "webapp: 2 error lines since healthy, last: TypeError: z; "
     "postgres: 1 error line since healthy, last: ERROR:  y"),
    ([finding("minio", "\x1b[31mERRO:\x1b[0m drive offline\x1b[2K")],
     "minio: 1 error line since healthy, last: ERRO: drive offline"),
])
def test_summary(findings, line):
    assert summary(findings) == line


def test_summary_caps_each_service():
    line = summary([finding("webapp", "TypeError: " + "x" * 500),
                    finding("redis", "boom " * 100)])
    webapp, redis = line.split("; ")
    assert len(webapp) <= 160 and webapp.endswith("...") and webapp.startswith("webapp: 1 ")
    assert len(redis) <= 160 and redis.startswith("redis: 1 error line")


def test_summary_names_its_window():
    assert summary([finding("webapp", "x")], since="the update").startswith(
        "webapp: 1 error line since the update, last: x")


def test_module_reads_no_clock_and_no_host():
    source = resources.files("trigger_maint").joinpath("logs.py").read_text(encoding="utf-8")
    banned = r"\b(datetime\.now|datetime\.utcnow|time\.time|subprocess|open\(|os\.)|\bimport os\b"
    assert not re.search(banned, source)
