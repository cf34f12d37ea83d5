"""What each stand-in service answers and logs: one Profile subclass per real service."""

import base64
import json
import os
import socket
import subprocess
import threading
import urllib.parse
import warnings

import logfmt

PSQL = "/usr/lib/postgresql/15/bin/psql"
# A server up for less than a second counts as still starting (see webapp.py).
STARTING_UP = "SELECT now() - pg_postmaster_start_time() < interval '1 second'"
JSON_TYPE = {"Content-Type": "application/json"}


class Profile:
    """The generic stand-in: health path only, request logging, no start-up noise."""

    service = ""
    log_requests = True

    def __init__(self, health: str, args: list[str]):
        self.health, self.args = health, args
        self.ready = threading.Event()

    def ports(self, port: int) -> list[int]:
        """Extra ports to listen on besides the health port."""
        return []

    def route(self, request, method: str) -> tuple[int, str, dict]:
        if request.path.split("?")[0] == self.health:
            return 200, '{"status":"ok"}', JSON_TYPE
        return 404, "Not Found", {}

    def log(self, level: str, message: str, **fields) -> None:
        logfmt.emit(logfmt.line_for(self.service, level, message))

    def listening(self, address: str, port: int) -> None:
        print(f"listening on {address}:{port}", flush=True)

    def start(self) -> None:
        """Log the start-up lines, then wait for dependencies in the background."""
        threading.Thread(target=self.run, daemon=True).start()

    def run(self) -> None:
        self.ready.set()


class JsonProfile(Profile):
    """Trigger.dev's own services: the structured JSON logger."""

    log_requests = False

    def log(self, level: str, message: str, **fields) -> None:
        logfmt.emit(logfmt.json_line(self.service, level, message, **fields))

    def listening(self, address: str, port: int) -> None:
        self.log("info", "Server listening", host=address, port=port)

    def wait_for_platform(self, url: str, what: str) -> None:
        def failed(error: str) -> None:
            code = error.split()[1] if error.startswith("connect ") else "ERR"
            self.log("error", what, url=url, error={
                "name": "TypeError", "message": "fetch failed",
                "cause": {"code": code, "message": error}})
        logfmt.retry(lambda: logfmt.http_error(url), failed, interval=1.0, limit=10**9)
        self.log("info", "Connected to platform", url=url)
        self.ready.set()


class Supervisor(JsonProfile):
    service = "supervisor"

    def run(self) -> None:
        env = os.environ.get
        self.log("info", "Starting supervisor", workerToken=env("TRIGGER_WORKER_TOKEN", ""))
        if env("DOCKER_AUTOREMOVE_EXITED_CONTAINERS", "1") in ("0", "false"):
            self.log("warn", "DOCKER_AUTOREMOVE_EXITED_CONTAINERS is disabled, exited run "
                             "containers will not be removed")
        else:
            self.log("warn", "Docker registry credentials not set, private images will fail")
        if not env("TRIGGER_WORKLOAD_API_DOMAIN"):
            self.log("warn", "TRIGGER_WORKLOAD_API_DOMAIN is not set, runners will use the "
                             "supervisor's IP address")
        else:
            self.log("warn", "Resource monitor: no cgroup limits found, using host totals")
        api = env("TRIGGER_API_URL", "http://127.0.0.1:3030").rstrip("/")
        self.wait_for_platform(f"{api}/healthcheck", "Failed to connect to platform")
        self.log("info", "Workload API listening", port=8020)


class V3Worker(JsonProfile):
    """The v3 coordinator and docker provider: a socket to the platform."""

    def run(self) -> None:
        env = os.environ.get
        self.log("info", f"Starting {self.service}", nodeName=env("NODE_NAME", "unknown"))
        if env("SECURE_CONNECTION", "true") == "false":
            self.log("warn", "SECURE_CONNECTION is false, platform traffic is not encrypted")
        self.log("warn", "NODE_NAME is not set, using the hostname")
        url = f"http://{env('PLATFORM_HOST', '127.0.0.1')}:{env('PLATFORM_WS_PORT', '3030')}"
        self.wait_for_platform(f"{url}/healthcheck", "Platform socket connect_error")


class Coordinator(V3Worker):
    service = "coordinator"


class DockerProvider(V3Worker):
    service = "docker-provider"


class Electric(Profile):
    """ElectricSQL: Elixir Logger lines; /v1/health says waiting until PostgreSQL answers."""

    service = "electric"
    log_requests = False

    def route(self, request, method: str) -> tuple[int, str, dict]:
        if request.path.split("?")[0] == self.health:
            if self.ready.is_set():
                return 200, '{"status":"active"}', JSON_TYPE
            return 202, '{"status":"waiting"}', JSON_TYPE
        return 404, "Not Found", {}

    def listening(self, address: str, port: int) -> None:
        self.log("info", f"Electric HTTP API listening on {address}:{port}")

    def run(self) -> None:
        self.log("info", "Running Electric.Application (electric 1.2.4)")
        if os.environ.get("ELECTRIC_INSECURE", "").lower() == "true":
            self.log("warn", "Electric is running in insecure mode: the HTTP API accepts "
                             "requests without a secret (ELECTRIC_INSECURE=true)")
        self.log("warn", "ELECTRIC_STORAGE_DIR is not set, shape data is kept in ./persistent")
        url = os.environ.get("DATABASE_URL", "").split("?")[0]
        pids = iter(range(2611, 10**6, 7))
        logfmt.retry(lambda: self.pg_error(url),
                     lambda e: self.log("error", f"Postgrex.Protocol (#PID<0.{next(pids)}.0>) "
                                                 f"failed to connect: ** {e}"), interval=1.0)
        self.log("info", "Acquiring lock from postgres with name electric_slot_default")
        self.log("info", "Lock acquired from postgres with name electric_slot_default")
        self.log("info", "Starting replication from postgres")
        self.ready.set()

    @staticmethod
    def pg_error(url: str) -> str | None:
        """None if PostgreSQL at url runs a query, else Postgrex's words for why not."""
        where = urllib.parse.urlsplit(url)
        if logfmt.tcp_error(where.hostname or "", where.port or 5432):
            return (f"(DBConnection.ConnectionError) tcp connect ({where.hostname}:"
                    f"{where.port or 5432}): connection refused - :econnrefused")
        proc = subprocess.run([PSQL, url, "-X", "-q", "-A", "-t", "-c", STARTING_UP],
                              capture_output=True, text=True, timeout=10,
                              env={**os.environ, "PGCONNECT_TIMEOUT": "2"})
        err = "starting up" if proc.stdout.strip() == "t" else proc.stderr.strip()
        if proc.returncode == 0 and not err:
            return None
        if "refused" in err:
            return (f"(DBConnection.ConnectionError) tcp connect ({where.hostname}:"
                    f"{where.port or 5432}): connection refused - :econnrefused")
        if "starting up" in err:
            return "(Postgrex.Error) FATAL 57P03 (cannot_connect_now) the database system " \
                   "is starting up"
        if "does not exist" in err:
            return f"(Postgrex.Error) FATAL 3D000 (invalid_catalog_name) database " \
                   f"\"{where.path.lstrip('/')}\" does not exist"
        return f"(DBConnection.ConnectionError) {err.splitlines()[-1] if err else 'closed'}"


class ClickHouse(Profile):
    """HTTP interface on 8123 (/ping, SELECT 1) and a native port 9000 that accepts."""

    service = "clickhouse"
    log_requests = False

    def listening(self, address: str, port: int) -> None:
        threading.Thread(target=self.native, args=(address,), daemon=True).start()
        self.log("info", f"Listening for http://{address}:{port}")
        self.log("info", f"Listening for native protocol (tcp): {address}:9000")

    @staticmethod
    def native(address: str) -> None:
        server = socket.create_server((address, 9000))
        while True:
            server.accept()[0].close()

    def route(self, request, method: str) -> tuple[int, str, dict]:
        path, _, query = request.path.partition("?")
        if path == "/ping":
            return 200, "Ok.\n", {}
        params = urllib.parse.parse_qs(query)
        user = request.headers.get("X-ClickHouse-User") or params.get("user", ["default"])[0]
        key = request.headers.get("X-ClickHouse-Key") or params.get("password", [""])[0]
        sql = params.get("query", [""])[0]
        if method == "POST":
            sql += request.rfile.read(int(request.headers.get("Content-Length") or 0)).decode()
        if not sql:
            return 200, "Ok.\n", {}
        if (user, key) != (os.environ.get("CLICKHOUSE_USER", "default"),
                           os.environ.get("CLICKHOUSE_PASSWORD", "")):
            return 516, f"Code: 516. DB::Exception: {user}: Authentication failed: password " \
                        "is incorrect, or there is no user with such name. " \
                        "(AUTHENTICATION_FAILED)\n", {}
        return 200, "1\n", {}

    def log(self, level: str, message: str, **fields) -> None:
        source = "Context" if level == "warn" else "Application"
        logfmt.emit(logfmt.clickhouse_line(level, message, source))

    def run(self) -> None:
        self.log("info", "Starting ClickHouse 26.2.1.1012 (revision: 54502, build id: "
                         "5F1A2B7C, git hash: 7e1f4d1)")
        self.log("warn", "Linux transparent hugepages are set to \"always\". Check "
                         "/sys/kernel/mm/transparent_hugepage/enabled")
        self.log("warn", "Delay accounting is not enabled, OSIOWaitMicroseconds will not be "
                         "gathered. You can enable it using `echo 1 > "
                         "/proc/sys/kernel/task_delayacct` or by using sysctl.")
        self.log("info", "Ready for connections.")
        self.ready.set()


class Registry(Profile):
    """Docker's registry: / answers 200, /v2/ asks for htpasswd credentials."""

    service = "registry"
    log_requests = False

    def route(self, request, method: str) -> tuple[int, str, dict]:
        path = request.path.split("?")[0]
        if path == "/":
            return 200, "", {}
        if path.startswith("/v2"):
            if self.authorized(request.headers.get("Authorization", "")):
                return 200, "{}", JSON_TYPE
            return 401, '{"errors":[{"code":"UNAUTHORIZED","message":"authentication ' \
                        'required","detail":null}]}', {
                **JSON_TYPE, "WWW-Authenticate": 'Basic realm="Registry Realm"'}
        return 404, "404 page not found\n", {}

    @staticmethod
    def authorized(header: str) -> bool:
        if os.environ.get("REGISTRY_AUTH") != "htpasswd":
            return True
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        try:
            lines = open(os.environ["REGISTRY_AUTH_HTPASSWD_PATH"]).read().split()
        except (OSError, KeyError):
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import crypt
        hashes = dict(line.partition(":")[::2] for line in lines)
        return user in hashes and crypt.crypt(password, hashes[user]) == hashes[user]

    def log(self, level: str, message: str, **fields) -> None:
        logfmt.emit(logfmt.logrus_line(level, message))

    def listening(self, address: str, port: int) -> None:
        self.log("info", f"listening on {address}:{port}")

    def run(self) -> None:
        self.log("warn", "No HTTP secret provided - generated random secret. This may cause "
                         "problems with uploads if multiple registries are behind a "
                         "load-balancer. To provide a shared secret, fill in http.secret in "
                         "the configuration file or set the REGISTRY_HTTP_SECRET environment "
                         "variable.")
        self.log("info", "redis not configured")
        self.log("info", "Starting upload purge in 20m0s")
        self.ready.set()


class Minio(Profile):
    """Bitnami's MinIO: API on 9000 (/minio/health/live), console on 9001."""

    service = "minio"
    log_requests = False

    def ports(self, port: int) -> list[int]:
        return [9001]

    def route(self, request, method: str) -> tuple[int, str, dict]:
        path = request.path.split("?")[0]
        if path in (self.health, "/minio/health/ready", "/"):
            return 200, "", {}
        return 403, "<Error><Code>AccessDenied</Code></Error>", {}

    def log(self, level: str, message: str, **fields) -> None:
        logfmt.emit(logfmt.bitnami_line(level, message))

    def listening(self, address: str, port: int) -> None:
        logfmt.emit(f"API: http://{address}:{port}", f"WebUI: http://{address}:9001")

    def run(self) -> None:
        self.log("info", "** Starting MinIO setup **")
        if os.environ.get("MINIO_ROOT_USER") in (None, "admin", "minio"):
            self.log("warn", "The MinIO root user is a well-known name, choose another one")
        self.log("warn", "MINIO_SERVER_URL is not set, presigned URLs will use the request host")
        buckets = os.environ.get("MINIO_DEFAULT_BUCKETS", "")
        if buckets:
            self.log("info", f"Creating default buckets: {buckets}")
        self.log("info", "** MinIO setup finished! **")
        self.ready.set()


class S2(Profile):
    """s2-lite: `lite --init-file F --local-root D`; creates the basins in F."""

    service = "s2"
    log_requests = False

    def route(self, request, method: str) -> tuple[int, str, dict]:
        path = request.path.split("?")[0]
        if path == self.health or path.startswith("/v1/"):
            return 200, '{"basins":[]}' if path.startswith("/v1/basins") else "ok", JSON_TYPE
        return 404, "", {}

    def log(self, level: str, message: str, **fields) -> None:
        logfmt.emit(logfmt.tracing_line(level, message))

    def listening(self, address: str, port: int) -> None:
        self.log("info", f"listening addr={address}:{port}")

    def option(self, name: str) -> str | None:
        return self.args[self.args.index(name) + 1] if name in self.args[:-1] else None

    def run(self) -> None:
        self.log("warn", "no object store URL given, storing data on the local disk "
                         f"root={self.option('--local-root') or '/data'}")
        init = self.option("--init-file")
        try:
            spec = json.load(open(init)) if init else {"basins": []}
        except (OSError, ValueError) as exc:
            self.log("error", f"failed to read init file path={init} error={exc}")
            os._exit(1)
        for basin in spec.get("basins", []):
            self.log("info", f"basin ready name={basin.get('name')}")
        self.ready.set()


class DockerProxy(Profile):
    """tecnativa/docker-socket-proxy: HAProxy on 2375, most of the API forbidden."""

    service = "docker-proxy"
    log_requests = False

    def route(self, request, method: str) -> tuple[int, str, dict]:
        path = request.path.split("?")[0]
        if path.endswith("/_ping"):
            return 200, "OK", {}
        if path.endswith("/version"):
            return 200, '{"Version":"20.10.24","ApiVersion":"1.41"}', JSON_TYPE
        return 403, "<html><body><h1>403 Forbidden</h1></body></html>\n", {}

    def log(self, level: str, message: str, **fields) -> None:
        logfmt.emit(logfmt.haproxy_line(level, message))

    def listening(self, address: str, port: int) -> None:
        self.log("info", f"haproxy listening on {address}:{port}")

    def run(self) -> None:
        self.log("warn", "config : missing timeouts for backend 'docker-events'. While not "
                         "properly invalid, you will certainly encounter various problems "
                         "with such a configuration.")
        self.log("info", "New worker (8) forked")
        self.log("info", "Loading success.")
        self.ready.set()


KINDS = {"": Profile, "supervisor": Supervisor, "coordinator": Coordinator,
         "docker-provider": DockerProvider, "electric": Electric, "clickhouse": ClickHouse,
         "registry": Registry, "minio": Minio, "s2": S2, "docker-proxy": DockerProxy}


def make(kind: str, health: str, args: list[str]) -> Profile:
    return KINDS[kind](health, args)
