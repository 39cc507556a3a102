"""queue-app web: GET / enqueues a job and says how many wait."""

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import rq


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        depth = rq.call("RPUSH", rq.QUEUE, "job").lstrip(":")
        body = f"queue-app: {depth} waiting\n".encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
