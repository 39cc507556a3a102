"""Just enough of the Redis protocol for a PING and a list, with the standard library."""

import os
import socket


def command(*args: str) -> bytes:
    host, port = os.environ.get("REDIS_HOST", "redis"), int(os.environ.get("REDIS_PORT", "6379"))
    payload = f"*{len(args)}\r\n".encode() + b"".join(f"${len(a)}\r\n{a}\r\n".encode() for a in args)
    with socket.create_connection((host, port), timeout=3) as conn:
        conn.sendall(payload)
        return conn.recv(4096)
