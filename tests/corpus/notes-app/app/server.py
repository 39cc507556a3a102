"""notes: the smallest web app that needs its database: / answers with the version, /healthz with
whether PostgreSQL accepts connections (DATABASE_URL)."""

import json
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

VERSION = os.environ.get("APP_VERSION", "dev")
DB = urlsplit(os.environ["DATABASE_URL"])


def db_up() -> bool:
    try:
        with socket.create_connection((DB.hostname, DB.port or 5432), timeout=2):
            return True
    except OSError:
        return False


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            ok = db_up()
            self.reply(200 if ok else 503, {"status": "ok" if ok else "db down"})
        else:
            self.reply(200, {"app": "notes", "version": VERSION})

    def reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt: str, *args: object) -> None:
        if os.environ.get("LOG_JSON") == "true":
            sys.stderr.write(json.dumps({"msg": fmt % args}) + "\n")
        else:
            super().log_message(fmt, *args)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
