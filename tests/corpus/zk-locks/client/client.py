"""lock-client: reports ZooKeeper's `srvr` answer over HTTP (a stand-in for an app holding locks)."""

import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def srvr() -> str:
    with socket.create_connection((os.environ["ZK_HOST"], int(os.environ["ZK_PORT"])), timeout=3) as conn:
        conn.sendall(b"srvr")
        chunks = []
        while chunk := conn.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            body, code = srvr(), 200
        except OSError as exc:
            body, code = f"zookeeper unreachable: {exc}\n", 503
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body.encode())


ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
