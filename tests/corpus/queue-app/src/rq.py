"""A list-backed queue over the Redis protocol (standard library only)."""

import os
import socket
from urllib.parse import urlsplit

URL = urlsplit(os.environ.get("REDIS_URL", "redis://redis:6379/0"))
QUEUE = os.environ.get("QUEUE", "jobs")


def call(*args: str) -> str:
    payload = b"".join([f"*{len(args)}\r\n".encode(), *(f"${len(a)}\r\n{a}\r\n".encode() for a in args)])
    db = (URL.path or "/0").lstrip("/") or "0"
    with socket.create_connection((URL.hostname, URL.port or 6379), timeout=5) as conn:
        conn.sendall(f"*2\r\n$6\r\nSELECT\r\n${len(db)}\r\n{db}\r\n".encode() + payload)
        data = b""
        while data.count(b"\r\n") < 2:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n")[1].decode()
