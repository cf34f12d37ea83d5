"""Stand-in for a health-checked service: python3 service.py PORT HEALTH_PATH [KIND [ARGS...]].

Answers HEALTH_PATH with 200 at once. KIND (supervisor, electric, clickhouse, ...; see
profiles.py) adds the real service's other routes and ports, and the start-up noise it logs
in its own format while it waits for its dependencies."""

import http.server
import signal
import sys
import threading

import logfmt
import profiles


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers the health path and the profile's routes; everything else 404."""

    def do_GET(self):
        self.answer("GET")

    def do_HEAD(self):
        self.answer("HEAD")

    def do_POST(self):
        self.answer("POST")

    def answer(self, method: str):
        status, body, headers = self.server.profile.route(self, method)
        data = body.encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)

    def log_message(self, fmt, *args):
        if self.server.profile.log_requests:
            print(f"{self.address_string()} - {fmt % args}", flush=True)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a health check that hangs up early is not news


def serve(address: tuple[str, int], profile) -> Server:
    server = Server(address, Handler)
    server.profile = profile
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port, health, kind, args = int(argv[0]), argv[1], (argv[2:3] or [""])[0], argv[3:]
    profile = profiles.make(kind, health, args)
    address = logfmt.own_address(profile.service)
    for extra in profile.ports(port):
        serve((address, extra), profile)
    profile.listening(address, port)
    serve((address, port), profile)
    profile.start()
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
