"""shop-lite: one tiny service per name (catalog, orders) on $PORT; orders asks catalog."""

import json
import os
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = sys.argv[1]


def key_loaded() -> bool:
    return os.path.isfile("/run/secrets/catalog_api_key")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body: dict = {"service": NAME}
        if self.path != "/health" and os.environ.get("CATALOG_URL"):
            with urllib.request.urlopen(os.environ["CATALOG_URL"] + "/", timeout=3) as resp:
                body["catalog"] = json.load(resp)
        if NAME == "catalog":
            body["key"] = key_loaded()
        data = json.dumps(body).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(data)


ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
