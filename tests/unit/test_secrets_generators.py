"""Generator specs: parsing, errors, and the shape of what each one makes."""

from __future__ import annotations

import base64
import re
import string
import uuid

import pytest

from stackctl.secrets.generators import KNOWN, PASSWORD_SYMBOLS, parse_spec, public_pem


@pytest.mark.parametrize(
    ("spec", "check"),
    [
        ("hex:32", lambda v: re.fullmatch(r"[0-9a-f]{64}", v)),
        ("hex", lambda v: re.fullmatch(r"[0-9a-f]{64}", v)),
        ("base64:24", lambda v: len(base64.b64decode(v, validate=True)) == 24),
        ("base64url:32", lambda v: len(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4))) == 32 and "=" not in v),
        ("alnum:40", lambda v: len(v) == 40 and all(c in string.ascii_letters + string.digits for c in v)),
        ("uuid", lambda v: uuid.UUID(v).version == 4),
        ("fernet", lambda v: len(base64.urlsafe_b64decode(v)) == 32),
        ("jwt-hs256", lambda v: len(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4))) == 32),
        ("jwt-hs512", lambda v: len(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4))) == 64),
        ("ed25519", lambda v: v.startswith("-----BEGIN PRIVATE KEY-----\n")
         and v.endswith("-----END PRIVATE KEY-----\n")),
    ],
)
def test_generated_values_have_the_declared_shape(spec: str, check) -> None:
    gen = parse_spec(spec)
    first, second = gen.generate(), gen.generate()
    assert check(first), (spec, first)
    assert first != second  # fresh randomness every call


def test_password_is_url_safe_and_has_every_class() -> None:
    gen = parse_spec("password:24")
    for _ in range(50):
        value = gen.generate()
        assert len(value) == 24
        assert set(value) <= set(string.ascii_letters + string.digits + PASSWORD_SYMBOLS)
        assert any(c.islower() for c in value) and any(c.isupper() for c in value)
        assert any(c.isdigit() for c in value) and any(c in PASSWORD_SYMBOLS for c in value)


def test_rsa_key_pair_and_public_half() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    value = parse_spec("rsa:2048").generate()
    key = serialization.load_pem_private_key(value.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    pub = public_pem(value)
    assert pub.startswith("-----BEGIN PUBLIC KEY-----")
    assert parse_spec("rsa").size == 3072


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hexx:32", "unknown generator 'hexx:32' (known: hex:N,"),
        ("hex:abc", "size must be a whole number"),
        ("hex:4", "size must be 8..1024 bytes"),
        ("password:2000", "size must be 8..1024 characters"),
        ("uuid:4", "generator 'uuid' takes no size"),
        ("rsa:1024", "rsa key size must be one of 2048, 3072, 4096"),
    ],
)
def test_bad_specs_say_why(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_spec(spec)
    assert message in str(err.value)


def test_every_known_spec_parses() -> None:
    for spec in KNOWN:
        assert parse_spec(spec.replace(":N", "")).kind == spec.split(":")[0]


def test_validate_key_pair_values() -> None:
    ed = parse_spec("ed25519")
    assert ed.validate("not a key") == "must be a PEM private key (ed25519)"
    assert ed.validate(ed.generate()) is None
    assert parse_spec("rsa:2048").validate(ed.generate()) == "must be an RSA PEM private key"
    assert parse_spec("hex:32").validate("anything") is None
