"""secrets/sealing.py against the real tools: `sops --decrypt` with a key made by the real `age-keygen`,
`age --decrypt`, `kubeseal --recovery-unseal` with a controller-style key, and the SealedSecret CRD."""

from __future__ import annotations

import base64
import datetime as dt
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from stackctl.secrets import sealing

SECRET: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "web-env", "namespace": "shop", "labels": {"app.kubernetes.io/name": "web"},
                 "annotations": {"stackctl.dev/checksum": "0123abcd"}},
    "type": "Opaque",
    "data": {"TLS_KEY": base64.b64encode(b"\x00\x01binary\xff\xfe").decode(),
             "API_KEY": base64.b64encode(b"sk_live_abcdef123456").decode()},
    "stringData": {"PASSWORD": "hunter2-correct-horse", "MULTI": "line one\nline two\n  indented\n",
                   "UNICODE": "pässwörd-密码-🔑", "EMPTY": "", "NUMBERISH": "0123", "BOOLISH": "yes",
                   "NOTRAIL": "a\nb"},
}


def _run(cmd: list[Any], *, env: dict[str, str] | None = None, stdin: str | None = None,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, env=env,
                          input=stdin, cwd=cwd, check=False)


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no user sops/age config, no kubeconfig of the machine."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "cfg"),
            **extra}


def _age_key(age_keygen: Path, path: Path) -> str:
    made = _run([age_keygen, "-o", path])
    assert made.returncode == 0, made.stderr
    public = _run([age_keygen, "-y", path])
    assert public.returncode == 0, public.stderr
    return public.stdout.strip()


def _sops_decrypt(sops: Path, doc: str, key: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    file = tmp / "secret.sops.yaml"
    file.write_text(doc)
    return _run([sops, "--decrypt", "--input-type", "yaml", "--output-type", "yaml", file],
                env=_env(tmp, SOPS_AGE_KEY_FILE=str(key)), cwd=tmp)


def test_sops_decrypts_the_secret_exactly(sops: Path, age_keygen: Path, tmp_path: Path) -> None:
    first = _age_key(age_keygen, tmp_path / "first.txt")
    second = _age_key(age_keygen, tmp_path / "second.txt")
    doc = sealing.sops_encrypt(SECRET, [first, second])
    for plain in ("hunter2", "sk_live", "line two", "密码"):
        assert plain not in doc
    for key in ("first.txt", "second.txt"):
        out = _sops_decrypt(sops, doc, tmp_path / key, tmp_path)
        assert out.returncode == 0, out.stderr
        assert yaml.safe_load(out.stdout) == SECRET


def test_sops_refuses_a_stranger_and_a_changed_file(sops: Path, age_keygen: Path, tmp_path: Path) -> None:
    # The two ways the output must fail in the real tool: the wrong key, and a readable value changed
    # after encryption (the MAC covers metadata too).
    recipient = _age_key(age_keygen, tmp_path / "key.txt")
    _age_key(age_keygen, tmp_path / "stranger.txt")
    doc = sealing.sops_encrypt(SECRET, [recipient])
    stranger = _sops_decrypt(sops, doc, tmp_path / "stranger.txt", tmp_path)
    assert stranger.returncode != 0
    tampered = doc.replace("namespace: shop", "namespace: prod")
    assert tampered != doc
    changed = _sops_decrypt(sops, tampered, tmp_path / "key.txt", tmp_path)
    assert changed.returncode != 0 and "MAC" in changed.stderr


def test_sops_extract_and_a_secret_without_string_data(sops: Path, age_keygen: Path, tmp_path: Path) -> None:
    recipient = _age_key(age_keygen, tmp_path / "key.txt")
    plain_only = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"},
                  "data": {"URL": base64.b64encode(b"postgres://u:p@db/app").decode()}}
    doc = sealing.sops_encrypt(plain_only, [recipient])
    file = tmp_path / "db.sops.yaml"
    file.write_text(doc)
    out = _run([sops, "--decrypt", "--extract", '["data"]["URL"]', file],
               env=_env(tmp_path, SOPS_AGE_KEY_FILE=str(tmp_path / "key.txt")), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert base64.b64decode(out.stdout.strip()) == b"postgres://u:p@db/app"


def test_age_decrypts_the_data_key_and_a_payload(age: Path, age_keygen: Path, tmp_path: Path) -> None:
    recipient = _age_key(age_keygen, tmp_path / "key.txt")
    doc = yaml.safe_load(sealing.sops_encrypt(SECRET, [recipient]))
    (tmp_path / "datakey.age").write_text(doc["sops"]["age"][0]["enc"])
    out = subprocess.run([str(age), "--decrypt", "-i", str(tmp_path / "key.txt"), str(tmp_path / "datakey.age")],
                         capture_output=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout) == 32
    payload = os.urandom(3 * 64 * 1024 + 5)  # several STREAM chunks
    raw = sealing.age_encrypt(payload, [sealing.age_recipient_key(recipient)])
    for name, data in (("bin.age", raw), ("armored.age", sealing.age_armor(raw).encode())):
        (tmp_path / name).write_bytes(data)
        out = subprocess.run([str(age), "--decrypt", "-i", str(tmp_path / "key.txt"), str(tmp_path / name)],
                             capture_output=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        assert out.stdout == payload


# ---------------------------------------------------------------------------------------- kubeseal


@pytest.fixture(scope="module")
def controller_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    """A sealing key as the controller makes one: RSA 4096, a self-signed certificate valid ten years."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealed-secret"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sealed-secret")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=True, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=True, crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    path = tmp_path_factory.mktemp("sealing-key") / "key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return cert.public_bytes(serialization.Encoding.PEM), path


def _unseal(kubeseal: Path, sealed: dict[str, Any], key: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    return _run([kubeseal, "--recovery-unseal", "--recovery-private-key", key, "-o", "yaml"],
                stdin=yaml.safe_dump(sealed), env=_env(tmp, KUBECONFIG=str(tmp / "no-kubeconfig")), cwd=tmp)


@pytest.mark.parametrize("scope", sealing.SCOPES)
def test_kubeseal_unseals_every_scope(scope: str, kubeseal: Path, controller_key: tuple[bytes, Path],
                                      crd_validate: Callable[[Any], list[str]], tmp_path: Path) -> None:
    cert, key = controller_key
    sealed = sealing.sealed_secret(SECRET, cert, scope=scope)
    assert crd_validate(sealed) == []
    out = _unseal(kubeseal, sealed, key, tmp_path)
    assert out.returncode == 0, out.stderr
    secret = yaml.safe_load(out.stdout)
    assert (secret["kind"], secret["metadata"]["name"], secret["metadata"]["namespace"]) == \
        ("Secret", "web-env", "shop")
    assert secret.get("type") == "Opaque"
    assert secret["metadata"]["labels"] == SECRET["metadata"]["labels"]
    assert secret["metadata"]["annotations"]["stackctl.dev/checksum"] == "0123abcd"
    expected = {k: base64.b64decode(v) for k, v in SECRET["data"].items()}
    expected.update({k: v.encode() for k, v in SECRET["stringData"].items()})
    assert {k: base64.b64decode(v or "") for k, v in (secret.get("data") or {}).items()} == expected


def test_kubeseal_refuses_a_strict_secret_moved(kubeseal: Path, controller_key: tuple[bytes, Path],
                                                 tmp_path: Path) -> None:
    cert, key = controller_key
    sealed = sealing.sealed_secret(SECRET, cert)
    moved = {**sealed, "metadata": {**sealed["metadata"], "namespace": "elsewhere"}}
    out = _unseal(kubeseal, moved, key, tmp_path)
    assert out.returncode != 0
    wide = sealing.sealed_secret(SECRET, cert, scope="cluster-wide")
    moved_wide = {**wide, "metadata": {**wide["metadata"], "namespace": "elsewhere", "name": "other"}}
    out = _unseal(kubeseal, moved_wide, key, tmp_path)
    assert out.returncode == 0, out.stderr
