"""Stand-in for a health-checked service: python3 service.py PORT HEALTH_PATH."""

import http.server
import os
import signal
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers the health path with 200, everything else 404."""

    def do_GET(self):
        ok = self.path.split("?")[0] == sys.argv[2]
        body = b'{"status":"ok"}' if ok else b"Not Found"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print(f"{self.address_string()} - {fmt % args}", flush=True)


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
address = (os.environ.get("RIG_ADDR", "127.0.0.1"), int(sys.argv[1]))
print(f"listening on {address[0]}:{address[1]}", flush=True)
http.server.ThreadingHTTPServer(address, Handler).serve_forever()
