"""The caches stackctl keeps in `$XDG_CACHE_HOME/stackctl/` (default `~/.cache/stackctl/`): where
each lives, how its entries are bounded, and how an entry that may hold secret values is sealed.

What is cached may hold secret values (the interpolated Compose JSON; a render's output), and
stackctl keeps no plaintext secret at rest outside files the user asked for. An entry is sealed with
a key derived from everything the cached answer was computed from, so opening it takes every input —
and whoever holds every input can compute the answer anyway. A SHAKE-256 keystream and an
HMAC-SHA-256 tag, standard library only: no `cryptography` import on the commands that read a cache.

Imported by every command (stackctl/codecache.py names its directory here), so `hashlib` (OpenSSL,
~3 ms) is imported only by the functions that seal.
"""

from __future__ import annotations

import contextlib
import os

NONCE = 16
TAG = 32


def cache_dir(name: str) -> str:
    """`$XDG_CACHE_HOME/stackctl/<name>` (default `~/.cache/stackctl/<name>`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "stackctl", name)


def prune(directory: str | os.PathLike[str], *, max_entries: int, max_bytes: int | None = None,
          suffix: str = ".bin") -> None:
    """Keep at most `max_entries` entries (files ending in `suffix`) and `max_bytes` bytes of them,
    the most recently written; never raises (a cache that cannot be pruned is no error)."""
    entries = []
    with contextlib.suppress(OSError), os.scandir(directory) as items:
        for item in items:
            if item.name.endswith(suffix):
                try:
                    st = item.stat()
                except OSError:
                    continue
                entries.append((st.st_mtime_ns, st.st_size, item.path))
    entries.sort(reverse=True)
    total = 0
    for count, (_, size, path) in enumerate(entries, 1):
        total += size
        if count > max_entries or (max_bytes is not None and total > max_bytes):
            with contextlib.suppress(OSError):
                os.unlink(path)


def key(material: bytes) -> bytes:
    """The sealing key of the inputs `material` (a digest that is never stored)."""
    import hashlib

    return hashlib.sha256(b"key\0" + material).digest()


def seal(key: bytes, data: bytes) -> bytes:
    """nonce + tag + ciphertext."""
    import hashlib
    import hmac

    nonce = os.urandom(NONCE)
    body = _xor(data, key, nonce)
    return nonce + hmac.new(key, nonce + body, hashlib.sha256).digest() + body


def unseal(key: bytes, blob: bytes) -> bytes | None:
    """The data of `seal(key, data)`; None when the blob is short, altered or of another key."""
    import hashlib
    import hmac

    if len(blob) < NONCE + TAG:
        return None
    nonce, tag, body = blob[:NONCE], blob[NONCE:NONCE + TAG], blob[NONCE + TAG:]
    if not hmac.compare_digest(tag, hmac.new(key, nonce + body, hashlib.sha256).digest()):
        return None
    return _xor(body, key, nonce)


def _xor(data: bytes, key: bytes, nonce: bytes) -> bytes:
    import hashlib

    stream = hashlib.shake_256(key + nonce).digest(len(data))
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")
