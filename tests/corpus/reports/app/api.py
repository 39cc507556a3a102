"""reports api: /health answers when Redis does; POST-less on purpose, the worker fills the queue."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from resp import command


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            redis = command("PING").strip().decode()
            ticks = command("LLEN", "reports:ticks").strip().decode().lstrip(":")
        except OSError as exc:
            redis, ticks = f"down: {exc}", "?"
        ok = redis == "+PONG"
        body = json.dumps({"status": "ok" if ok else "degraded", "redis": redis, "ticks": ticks}).encode()
        self.send_response(200 if ok else 503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    os.makedirs(os.environ["REPORTS_DIR"], exist_ok=True)
    ThreadingHTTPServer(("0.0.0.0", 5000), Handler).serve_forever()
