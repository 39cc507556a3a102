"""Secret generators: the `@secret SPEC` part of a `.env.example` annotation.

A spec names how a value is made (`hex:32`, `password:24`, `ed25519`, ...). `parse_spec` validates
it (a `ValueError` whose message names the problem, never a value); `Generator.generate()` makes a
fresh value from the OS CSPRNG (`secrets` module). Key-pair generators (`ed25519`, `rsa:N`) produce a
PEM private key; `public_pem()` derives the matching public key for `@public` template entries.
"""

from __future__ import annotations

import base64
import secrets as _rand
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # cryptography is imported only when a key pair is made or read (start-up cost)
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

# name -> (takes a size, default size, (min, max) or allowed sizes, what the size counts)
_SIZED: dict[str, tuple[int, tuple[int, int], str]] = {
    "hex": (32, (8, 1024), "bytes"),
    "base64": (32, (8, 1024), "bytes"),
    "base64url": (32, (8, 1024), "bytes"),
    "password": (24, (8, 1024), "characters"),
    "alnum": (32, (8, 1024), "characters"),
}
_RSA_SIZES = (2048, 3072, 4096)
_FIXED = ("uuid", "fernet", "jwt-hs256", "jwt-hs384", "jwt-hs512", "ed25519")
KEY_PAIR_KINDS = ("ed25519", "rsa")

KNOWN = ("hex:N", "base64:N", "base64url:N", "password:N", "alnum:N", "uuid", "fernet", "jwt-hs256",
         "jwt-hs384", "jwt-hs512", "ed25519", "rsa:N")

# RFC 3986 "unreserved" punctuation: safe inside URLs (postgres://user:PASS@host), shells and YAML.
PASSWORD_SYMBOLS = "-_.~"
_ALNUM = string.ascii_letters + string.digits
_JWT_BYTES = {"jwt-hs256": 32, "jwt-hs384": 48, "jwt-hs512": 64}


@dataclass(frozen=True)
class Generator:
    """A validated generator spec. `str(gen)` is its canonical spec (`hex:32`, `rsa:3072`, `uuid`)."""

    kind: str
    size: int | None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.size}" if self.size is not None else self.kind

    @property
    def is_key_pair(self) -> bool:
        return self.kind in KEY_PAIR_KINDS

    def generate(self) -> str:
        """A fresh random value (multi-line PEM text for key pairs)."""
        k, n = self.kind, self.size
        if k == "hex":
            return _rand.token_hex(n)
        if k == "base64":
            return base64.b64encode(_rand.token_bytes(n)).decode("ascii")
        if k == "base64url":
            return base64.urlsafe_b64encode(_rand.token_bytes(n)).decode("ascii").rstrip("=")
        if k == "alnum":
            return "".join(_rand.choice(_ALNUM) for _ in range(n or 0))
        if k == "password":
            return _password(n or 0)
        if k == "uuid":
            import uuid

            return str(uuid.UUID(bytes=_rand.token_bytes(16), version=4))
        if k == "fernet":  # what cryptography's Fernet.generate_key() returns: urlsafe base64 of 32 bytes
            return base64.urlsafe_b64encode(_rand.token_bytes(32)).decode("ascii")
        if k in _JWT_BYTES:  # an HMAC key as long as the hash (RFC 7518 §3.2), base64url without padding
            return base64.urlsafe_b64encode(_rand.token_bytes(_JWT_BYTES[k])).decode("ascii").rstrip("=")
        if k == "ed25519":
            from cryptography.hazmat.primitives.asymmetric import ed25519

            return _private_pem(ed25519.Ed25519PrivateKey.generate())
        if k == "rsa":
            from cryptography.hazmat.primitives.asymmetric import rsa

            return _private_pem(rsa.generate_private_key(public_exponent=65537, key_size=n or 3072))
        raise AssertionError(f"unhandled generator {self}")

    def validate(self, value: str) -> str | None:
        """Why `value` cannot be a value of this type (for `secrets set`), or None. Never quotes the value."""
        if not self.is_key_pair:
            return None
        try:
            key = _load_private(value)
        except ValueError:
            return f"must be a PEM private key ({self})"
        from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

        if self.kind == "ed25519" and not isinstance(key, ed25519.Ed25519PrivateKey):
            return "must be an Ed25519 PEM private key"
        if self.kind == "rsa" and not isinstance(key, rsa.RSAPrivateKey):
            return "must be an RSA PEM private key"
        return None


def parse_spec(text: str) -> Generator:
    """`hex:32` → Generator; ValueError with a one-line reason for anything else."""
    spec = text.strip()
    kind, sep, size_text = spec.partition(":")
    if kind in _FIXED:
        if sep:
            raise ValueError(f"generator '{kind}' takes no size (got '{spec}')")
        return Generator(kind)
    if kind == "rsa":
        if not sep:
            return Generator("rsa", 3072)
        size = _int(size_text, spec)
        if size not in _RSA_SIZES:
            raise ValueError(f"rsa key size must be one of {', '.join(map(str, _RSA_SIZES))} (got '{spec}')")
        return Generator("rsa", size)
    if kind in _SIZED:
        default, (low, high), unit = _SIZED[kind]
        if not sep:
            return Generator(kind, default)
        size = _int(size_text, spec)
        if not low <= size <= high:
            raise ValueError(f"'{spec}': size must be {low}..{high} {unit}")
        return Generator(kind, size)
    raise ValueError(f"unknown generator '{spec}' (known: {', '.join(KNOWN)})")


def _int(text: str, spec: str) -> int:
    if not text.isdigit():
        raise ValueError(f"'{spec}': size must be a whole number")
    return int(text)


def _password(length: int) -> str:
    alphabet = _ALNUM + PASSWORD_SYMBOLS
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits, PASSWORD_SYMBOLS)
    while True:  # rejection sampling keeps the distribution uniform over passwords with every class
        value = "".join(_rand.choice(alphabet) for _ in range(length))
        if all(any(c in cls for c in value) for cls in classes):
            return value


def _private_pem(key: PrivateKeyTypes) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _load_private(value: str) -> PrivateKeyTypes:
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(value.encode("utf-8"), password=None)
    except (ValueError, TypeError):
        raise ValueError("not a PEM private key") from None


def public_pem(private_value: str) -> str:
    """The PEM public key (SubjectPublicKeyInfo) of a PEM private key; ValueError if it is not one."""
    from cryptography.hazmat.primitives import serialization

    key = _load_private(private_value)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
