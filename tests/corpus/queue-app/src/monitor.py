"""queue-app monitor (profile `monitoring`): the queue depth on :9000."""

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import rq


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"queue depth {rq.call('LLEN', rq.QUEUE).lstrip(':')}\n".encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("0.0.0.0", 9000), Handler).serve_forever()
