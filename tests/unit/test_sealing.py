"""secrets/sealing.py: SOPS (age) and SealedSecret output, opened again by small decryptors written here
from the public formats (age v1, sops's AES256_GCM values and MAC, sealed-secrets' hybrid scheme), so a
wrong key derivation, path, label or MAC shows here before the real tools (tests/delivery) see it."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

from stackctl.errors import InputError
from stackctl.secrets import sealing

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


# ------------------------------------------------------------------------------ test-only decryptors


def _bech32_encode(hrp: str, data: bytes) -> str:
    """Bech32 from BIP 173 (to make age1... recipients of keys made here)."""
    acc = bits = 0
    five: list[int] = []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            five.append((acc >> bits) & 31)
    if bits:
        five.append((acc << (5 - bits)) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    poly = sealing._bech32_polymod(expanded + five + [0] * 6) ^ 1
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[v] for v in five + checksum)


def _identity() -> tuple[X25519PrivateKey, str]:
    key = X25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key, _bech32_encode("age", public)


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _unb64(text: str) -> bytes:
    assert "=" not in text
    return base64.b64decode(text + "=" * (-len(text) % 4))


def age_decrypt(armored: str, identity: X25519PrivateKey) -> bytes:
    lines = armored.split("\n")
    assert lines[0] == "-----BEGIN AGE ENCRYPTED FILE-----"
    assert lines[-2:] == ["-----END AGE ENCRYPTED FILE-----", ""]
    body = lines[1:-2]
    assert all(len(line) == 64 for line in body[:-1]) and 0 < len(body[-1]) <= 64
    raw = base64.b64decode("".join(body), validate=True)
    end = raw.index(b"\n---") + 4
    header = raw[:end].decode()
    mac_line_end = raw.index(b"\n", end)
    mac = _unb64(raw[end + 1:mac_line_end].decode())
    payload = raw[mac_line_end + 1:]
    head_lines = header.split("\n")
    assert head_lines[0] == "age-encryption.org/v1"
    public = identity.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    file_key = None
    i = 1
    while head_lines[i].startswith("->"):
        args = head_lines[i].split(" ")
        i += 1
        body_lines = []
        while True:
            body_lines.append(head_lines[i])
            i += 1
            if len(body_lines[-1]) < 64:
                break
        assert args[1] == "X25519" and len(args) == 3
        share = _unb64(args[2])
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
        shared = identity.exchange(X25519PublicKey.from_public_bytes(share))
        wrap = _hkdf(shared, share + public, b"age-encryption.org/v1/X25519")
        try:
            file_key = ChaCha20Poly1305(wrap).decrypt(bytes(12), _unb64("".join(body_lines)), None)
        except Exception:  # another recipient's stanza: try the next
            continue
    assert file_key is not None, "no stanza for this identity"
    expected = hmac.new(_hkdf(file_key, b"", b"header"), header.encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(mac, expected), "header MAC"
    nonce, chunks = payload[:16], payload[16:]
    stream = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    out, counter = b"", 0
    while chunks:
        piece, chunks = chunks[:64 * 1024 + 16], chunks[64 * 1024 + 16:]
        last = b"\x01" if not chunks else b"\x00"
        out += stream.decrypt(counter.to_bytes(11, "big") + last, piece, None)
        counter += 1
    return out


_ENC = re.compile(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]$")


def _open_value(text: str, key: bytes, aad: str) -> Any:
    m = _ENC.match(text)
    assert m, text
    data, iv, tag, kind = m.groups()
    assert len(base64.b64decode(iv)) == 32
    plain = AESGCM(key).decrypt(base64.b64decode(iv), base64.b64decode(data) + base64.b64decode(tag),
                                aad.encode()).decode()
    return {"str": plain, "int": int(plain) if kind == "int" else None,
            "bool": plain == "True"}[kind]


def sops_decrypt(document: str, identity: X25519PrivateKey) -> dict[str, Any]:
    """What `sops --decrypt` does for this module's output: data key from the age stanza, every value
    under a key matching encrypted_regex opened with its path as additional data, the MAC checked."""
    tree = yaml.safe_load(document)
    meta = tree.pop("sops")
    regex = re.compile(meta["encrypted_regex"])
    key = None
    for entry in meta["age"]:
        try:
            key = age_decrypt(entry["enc"], identity)
        except AssertionError:
            continue
    assert key is not None and len(key) == 32
    digest = hashlib.sha512()

    def walk(node: Any, path: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, path) for v in node]
        if node is None:
            return None
        if any(regex.search(p) for p in path) and node != "":
            node = _open_value(node, key, "".join(f"{p}:" for p in path))
        digest.update((("True" if node else "False") if isinstance(node, bool) else str(node)).encode())
        return node

    plain: dict[str, Any] = walk(tree, ())
    mac = _open_value(meta["mac"], key, meta["lastmodified"])
    assert mac == digest.hexdigest().upper(), "MAC mismatch"
    return plain


def sealed_open(sealed: dict[str, Any], private: rsa.RSAPrivateKey) -> dict[str, bytes]:
    """The controller's unseal: label from the SealedSecret's own annotations, name and namespace."""
    meta = sealed["metadata"]
    notes = meta.get("annotations") or {}
    if notes.get(sealing.ANNOTATION_CLUSTER_WIDE) == "true":
        label = b""
    elif notes.get(sealing.ANNOTATION_NAMESPACE_WIDE) == "true":
        label = meta["namespace"].encode()
    else:
        label = f"{meta['namespace']}/{meta['name']}".encode()
    out = {}
    for k, v in sealed["spec"]["encryptedData"].items():
        raw = base64.b64decode(v)
        n = int.from_bytes(raw[:2], "big")
        session = private.decrypt(raw[2:2 + n], padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                               algorithm=hashes.SHA256(), label=label or None))
        out[k] = AESGCM(session).decrypt(bytes(12), raw[2 + n:], None)
    return out


# ---------------------------------------------------------------------------------------- fixtures

SECRET: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "web-env", "namespace": "shop", "labels": {"app": "web"},
                 "annotations": {"team": "core"}},
    "type": "Opaque",
    "data": {"TOKEN": base64.b64encode(b"tok-\x00\xffbinary").decode(), "API_KEY": base64.b64encode(
        b"sk_live_abcdef123456").decode()},
    "stringData": {"PASSWORD": "hunter2-correct-horse", "MULTI": "line one\nline two\n",
                   "UNICODE": "pässwörd-密码-🔑", "EMPTY": ""},
}


def _plaintexts() -> list[str]:
    values = [v for v in SECRET["stringData"].values() if v]
    values += list(SECRET["data"].values())
    values += [base64.b64encode(v.encode()).decode() for v in SECRET["stringData"].values() if v]
    values += [base64.b64decode(v).decode("latin-1") for v in SECRET["data"].values()]
    return values


def _cert(*, key: Any = None, expired: bool = False) -> tuple[bytes, Any]:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sealed-secret")])
    now = dt.datetime.now(dt.UTC)
    start, end = (now - dt.timedelta(days=30), now - dt.timedelta(days=1)) if expired else \
        (now - dt.timedelta(days=1), now + dt.timedelta(days=3650))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), key


@pytest.fixture(scope="module")
def rsa_cert() -> tuple[bytes, Any]:
    return _cert()


# -------------------------------------------------------------------------------------------- SOPS


def test_sops_round_trip_keeps_every_value_and_readable_metadata() -> None:
    key, recipient = _identity()
    doc = sealing.sops_encrypt(SECRET, [recipient])
    assert sops_decrypt(doc, key) == SECRET
    tree = yaml.safe_load(doc)
    assert tree["metadata"] == SECRET["metadata"]
    assert (tree["apiVersion"], tree["kind"], tree["type"]) == ("v1", "Secret", "Opaque")
    assert list(tree) == ["apiVersion", "kind", "metadata", "type", "data", "stringData", "sops"]


def test_sops_every_value_is_encrypted_and_no_plaintext_remains() -> None:
    _, recipient = _identity()
    doc = sealing.sops_encrypt(SECRET, [recipient])
    tree = yaml.safe_load(doc)
    for section in ("data", "stringData"):
        for k, v in tree[section].items():
            if SECRET[section][k] == "":
                assert v == ""  # sops leaves an empty value empty
            else:
                assert re.fullmatch(r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]+,iv:[A-Za-z0-9+/=]{44},"
                                    r"tag:[A-Za-z0-9+/=]{24},type:str\]", v), v
    for plain in _plaintexts():
        assert plain not in doc
    assert "hunter2" not in doc and "sk_live" not in doc


def test_sops_metadata_block() -> None:
    _, first = _identity()
    _, second = _identity()
    when = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    meta = yaml.safe_load(sealing.sops_encrypt(SECRET, [first, second], now=when))["sops"]
    assert meta["encrypted_regex"] == "^(data|stringData)$"
    assert meta["lastmodified"] == "2026-03-04T05:06:07Z"
    assert re.fullmatch(r"3\.\d+\.\d+", meta["version"])
    assert [a["recipient"] for a in meta["age"]] == [first, second]
    assert meta["mac"].startswith("ENC[AES256_GCM,data:") and meta["mac"].endswith(",type:str]")
    for entry in meta["age"]:
        assert entry["enc"].startswith("-----BEGIN AGE ENCRYPTED FILE-----\n")


def test_sops_each_recipient_decrypts_on_its_own() -> None:
    keys = [_identity() for _ in range(3)]
    doc = sealing.sops_encrypt(SECRET, [r for _, r in keys])
    for key, _ in keys:
        assert sops_decrypt(doc, key) == SECRET
    stranger, _ = _identity()
    with pytest.raises(AssertionError):
        sops_decrypt(doc, stranger)


def test_sops_mac_covers_the_readable_values_too() -> None:
    key, recipient = _identity()
    doc = sealing.sops_encrypt(SECRET, [recipient])
    tampered = doc.replace("namespace: shop", "namespace: other")
    assert tampered != doc
    with pytest.raises(AssertionError, match="MAC"):
        sops_decrypt(tampered, key)


def test_sops_value_is_bound_to_its_path() -> None:
    key, recipient = _identity()
    tree = yaml.safe_load(sealing.sops_encrypt(SECRET, [recipient]))
    moved = tree["stringData"]["PASSWORD"]
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
        _open_value(moved, age_decrypt(tree["sops"]["age"][0]["enc"], key), "stringData:MULTI:")


def test_sops_key_named_data_anywhere_is_encrypted_as_sops_would() -> None:
    # encrypted_regex matches any path component: a label called `data` is encrypted by sops too, so
    # leaving it readable would make `sops --decrypt` fail on it.
    key, recipient = _identity()
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "s", "namespace": "n", "labels": {"data": "x1"}},
              "stringData": {"a": "1"}}
    doc = sealing.sops_encrypt(secret, [recipient])
    assert yaml.safe_load(doc)["metadata"]["labels"]["data"].startswith("ENC[")
    assert sops_decrypt(doc, key) == secret


def test_sops_ambiguous_strings_stay_strings() -> None:
    # sops hashes a value as its YAML type reads: `1e3` or `0o17` written plain would be numbers there.
    key, recipient = _identity()
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "s", "namespace": "n", "labels": {"a": "1e3", "b": "0o17", "c": "yes"}},
              "stringData": {"x": "true", "y": "007"}}
    assert sops_decrypt(sealing.sops_encrypt(secret, [recipient]), key) == secret


def test_sops_outputs_differ_per_call() -> None:
    _, recipient = _identity()
    assert sealing.sops_encrypt(SECRET, [recipient]) != sealing.sops_encrypt(SECRET, [recipient])


@pytest.mark.parametrize(("recipient", "why"), [
    ("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwx", "checksum"),
    ("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnuj", "checksum"),
    ("age1ZVKYG2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj", "case"),
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO", "SSH key"),
    ("AGE1ZVKYG2LQZRAA2LNJVQEJ32NKUU0UES2S82HZRYE869XEEXVN73EQUNUJWX", "checksum"),
    ("age1bio", "Bech32"),
    ("", "Bech32"),
    ("age1pq1x34nzsvr0rxjsgdn8zgyhfe8j7ceq5r9rdelkjuh3y235jzxshfg87pzf5zrqtzdxz95paef6caq5aapdmwjjqp",
     "post-quantum"),
])
def test_sops_bad_recipient_is_named(recipient: str, why: str) -> None:
    with pytest.raises(InputError) as err:
        sealing.sops_encrypt(SECRET, [_identity()[1], recipient], source="profiles/prod.yaml")
    text = str(err.value)
    assert repr(recipient) in text and why in text and "profiles/prod.yaml" in text
    assert err.value.exit_code == 2


def test_sops_other_bech32_recipients_are_refused() -> None:
    plugin = _bech32_encode("age1yubikey", b"\x02" * 33)
    with pytest.raises(InputError, match="plugin"):
        sealing.sops_encrypt(SECRET, [plugin])
    short = _bech32_encode("age", b"\x01" * 31)
    with pytest.raises(InputError, match="31 bytes"):
        sealing.sops_encrypt(SECRET, [short])
    with pytest.raises(InputError, match="SECRET key"):
        sealing.sops_encrypt(SECRET, ["AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"])


def test_sops_known_recipient_from_the_age_spec_decodes() -> None:
    key = sealing.age_recipient_key("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj")
    assert len(key) == 32
    assert _bech32_encode("age", key) == "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"


@pytest.mark.parametrize("recipients", [[], "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"])
def test_sops_needs_a_list_of_recipients(recipients: Any) -> None:
    with pytest.raises(InputError, match="at least one age recipient"):
        sealing.sops_encrypt(SECRET, recipients)


@pytest.mark.parametrize(("secret", "field"), [
    ({"metadata": {}}, "metadata.name"),
    ({"metadata": {"name": "s"}, "stringData": {"a": 1}}, "stringData.a"),
    ({"metadata": {"name": "s"}, "data": {"a": "not base64!"}}, "data.a"),
    ({"metadata": {"name": "s"}, "data": ["a"]}, "data"),
])
def test_bad_secret_names_the_field(secret: dict[str, Any], field: str) -> None:
    for call in (lambda: sealing.sops_encrypt(secret, [_identity()[1]]),
                 lambda: sealing.sealed_secret(secret, _cert()[0])):
        with pytest.raises(InputError) as err:
            call()
        assert err.value.field == field


def test_age_payload_round_trip_and_large_payload_chunks() -> None:
    key, recipient = _identity()
    other, other_recipient = _identity()
    raw = [sealing.age_recipient_key(recipient), sealing.age_recipient_key(other_recipient)]
    for size in (0, 1, 64 * 1024, 64 * 1024 + 1, 200_000):
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        armored = sealing.age_armor(sealing.age_encrypt(data, raw))
        assert age_decrypt(armored, key) == data
        assert age_decrypt(armored, other) == data


# ------------------------------------------------------------------------------------ SealedSecret


@pytest.mark.parametrize("scope", sealing.SCOPES)
def test_sealed_secret_round_trip_per_scope(scope: str, rsa_cert: tuple[bytes, Any]) -> None:
    pem, key = rsa_cert
    sealed = sealing.sealed_secret(SECRET, pem, scope=scope)
    assert (sealed["apiVersion"], sealed["kind"]) == ("bitnami.com/v1alpha1", "SealedSecret")
    assert sealed["metadata"]["name"] == "web-env" and sealed["metadata"]["namespace"] == "shop"
    opened = sealed_open(sealed, key)
    expected = {k: base64.b64decode(v) for k, v in SECRET["data"].items()}
    expected.update({k: v.encode() for k, v in SECRET["stringData"].items()})
    assert opened == expected
    template = sealed["spec"]["template"]
    assert template["type"] == "Opaque"
    assert template["metadata"]["labels"] == {"app": "web"}
    assert template["metadata"]["annotations"]["team"] == "core"
    scope_notes = {"strict": {}, "namespace-wide": {sealing.ANNOTATION_NAMESPACE_WIDE: "true"},
                   "cluster-wide": {sealing.ANNOTATION_CLUSTER_WIDE: "true"}}[scope]
    assert sealed["metadata"].get("annotations", {}) == scope_notes
    for k, v in scope_notes.items():
        assert template["metadata"]["annotations"][k] == v


def test_sealed_secret_strict_is_bound_to_name_and_namespace(rsa_cert: tuple[bytes, Any]) -> None:
    pem, key = rsa_cert
    sealed = sealing.sealed_secret(SECRET, pem)
    moved = {**sealed, "metadata": {**sealed["metadata"], "name": "renamed"}}
    with pytest.raises(ValueError):  # RSA-OAEP decryption fails on the wrong label
        sealed_open(moved, key)
    wide = sealing.sealed_secret(SECRET, pem, scope="namespace-wide")
    renamed = {**wide, "metadata": {**wide["metadata"], "name": "renamed"}}
    assert sealed_open(renamed, key)["PASSWORD"] == b"hunter2-correct-horse"


def test_sealed_secret_has_no_plaintext(rsa_cert: tuple[bytes, Any]) -> None:
    sealed = sealing.sealed_secret(SECRET, rsa_cert[0], scope="cluster-wide")
    text = yaml.safe_dump(sealed)
    for plain in _plaintexts():
        assert plain not in text
    assert sorted(sealed["spec"]["encryptedData"]) == sorted({**SECRET["data"], **SECRET["stringData"]})
    assert "data" not in sealed["spec"]["template"] and "stringData" not in sealed["spec"]


def test_sealed_secret_drops_last_applied_annotation(rsa_cert: tuple[bytes, Any]) -> None:
    secret = {**SECRET, "metadata": {**SECRET["metadata"], "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": '{"stringData":{"PASSWORD":"hunter2"}}'}}}
    sealed = sealing.sealed_secret(secret, rsa_cert[0])
    assert "hunter2" not in yaml.safe_dump(sealed)
    assert "annotations" not in sealed["spec"]["template"]["metadata"]


def test_sealed_secret_needs_a_namespace_unless_cluster_wide(rsa_cert: tuple[bytes, Any]) -> None:
    secret = {**SECRET, "metadata": {"name": "web-env"}}
    with pytest.raises(InputError, match="namespace") as err:
        sealing.sealed_secret(secret, rsa_cert[0])
    assert err.value.field == "metadata.namespace"
    sealed = sealing.sealed_secret(secret, rsa_cert[0], scope="cluster-wide")
    assert "namespace" not in sealed["metadata"]


def test_sealed_secret_bad_scope(rsa_cert: tuple[bytes, Any]) -> None:
    with pytest.raises(InputError, match="strict, namespace-wide, cluster-wide"):
        sealing.sealed_secret(SECRET, rsa_cert[0], scope="global")


def test_sealed_secret_rejects_what_is_not_an_rsa_certificate() -> None:
    with pytest.raises(InputError, match="not a PEM certificate") as err:
        sealing.sealed_secret(SECRET, b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
                              source="sealed-secrets.pem")
    assert "sealed-secrets.pem" in str(err.value) and "kubeseal --fetch-cert" in str(err.value)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    with pytest.raises(InputError, match="not a PEM certificate"):
        sealing.sealed_secret(SECRET, key_pem)
    ec_pem, _ = _cert(key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(InputError, match=r"an EC key.*RSA"):
        sealing.sealed_secret(SECRET, ec_pem)
    small_pem, _ = _cert(key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(InputError, match="1024 bits"):
        sealing.sealed_secret(SECRET, small_pem)


def test_sealed_secret_expired_certificate_warns_and_still_seals() -> None:
    pem, key = _cert(expired=True)
    seen: list[str] = []
    sealed = sealing.sealed_secret(SECRET, pem, source="cert.pem", warn=seen.append)
    assert len(seen) == 1 and "cert.pem" in seen[0] and "expired" in seen[0]
    assert sealed_open(sealed, key)["PASSWORD"] == b"hunter2-correct-horse"
    with pytest.warns(UserWarning, match="expired"):
        sealing.sealed_secret(SECRET, pem)
    fresh, _ = _cert()
    quiet: list[str] = []
    sealing.sealed_secret(SECRET, fresh, warn=quiet.append)
    assert quiet == []
