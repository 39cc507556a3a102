"""Sealed cache entries: what stackctl keeps in `$XDG_CACHE_HOME/stackctl/` may hold secret values
(the interpolated Compose JSON; a render's output), and stackctl keeps no plaintext secret at rest
outside files the user asked for. An entry is sealed with a key derived from everything the cached
answer was computed from, so opening it takes every input — and whoever holds every input can
compute the answer anyway.

A SHAKE-256 keystream and an HMAC-SHA-256 tag, standard library only: no `cryptography` import on
the commands that read a cache (a plain render imports nothing it does not use).
"""

from __future__ import annotations

import hashlib
import hmac
import os

NONCE = 16
TAG = 32


def key(material: bytes) -> bytes:
    """The sealing key of the inputs `material` (a digest that is never stored)."""
    return hashlib.sha256(b"key\0" + material).digest()


def seal(key: bytes, data: bytes) -> bytes:
    """nonce + tag + ciphertext."""
    nonce = os.urandom(NONCE)
    body = _xor(data, key, nonce)
    return nonce + hmac.new(key, nonce + body, hashlib.sha256).digest() + body


def unseal(key: bytes, blob: bytes) -> bytes | None:
    """The data of `seal(key, data)`; None when the blob is short, altered or of another key."""
    if len(blob) < NONCE + TAG:
        return None
    nonce, tag, body = blob[:NONCE], blob[NONCE:NONCE + TAG], blob[NONCE + TAG:]
    if not hmac.compare_digest(tag, hmac.new(key, nonce + body, hashlib.sha256).digest()):
        return None
    return _xor(body, key, nonce)


def _xor(data: bytes, key: bytes, nonce: bytes) -> bytes:
    stream = hashlib.shake_256(key + nonce).digest(len(data))
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")
