"""Secret manifests that are safe to commit: SOPS (age recipients) and Bitnami SealedSecret.

Interface shared by `render gitops` (the caller) and this module (the encryption). Both work on a plain
v1 Secret object (a dict with `metadata.name`, `metadata.namespace` and `stringData` or base64 `data`)
that never leaves memory; what they return holds no plaintext value.

Why native Python and not the `sops`/`kubeseal` binaries: a user who renders GitOps output should need
nothing but stackctl; the formats are public and small, and the tests hold this module to the real tools
(tests/delivery/test_sealing_tools.py: `sops --decrypt`, `age --decrypt`, `kubeseal --recovery-unseal`,
the SealedSecret CRD).

What a user needs to know
=========================

SOPS with age (`sops_encrypt`)
------------------------------
* Recipients are age X25519 public keys, `age1` + 58 characters, as printed by `age-keygen` ("Public
  key: age1...") or `age-keygen -y key.txt`. Post-quantum (`age1pq1...`) and plugin recipients
  (`age1yubikey1...`) are refused with an error naming them. Every recipient can decrypt on its own.
* The output is a SOPS v3 YAML document: `apiVersion`, `kind`, `metadata` and `type` stay readable, every
  value under `data`/`stringData` becomes `ENC[AES256_GCM,data:...,iv:...,tag:...,type:str]` (an empty value
  stays empty, as sops itself writes it), and the `sops:` block records `encrypted_regex:
  ^(data|stringData)$` — the convention Flux's kustomize-controller and KSOPS expect — the data key
  age-encrypted to each recipient, `lastmodified` and the encrypted MAC over all values.
* Decrypt (to read or edit): `SOPS_AGE_KEY_FILE=key.txt sops --decrypt secret.sops.yaml` (or
  `sops secret.sops.yaml` to edit in place; sops keeps the same recipients and regex). Flux decrypts it
  with `spec.decryption.provider: sops` and the age key in a Secret named by `spec.decryption.secretRef`
  (the key file under a name ending in `.agekey`).

SealedSecret (`sealed_secret`)
------------------------------
* The certificate is the controller's public certificate (PEM):
  `kubeseal --fetch-cert [--controller-namespace kube-system --controller-name sealed-secrets] > cert.pem`.
  Only the controller, with its private key, can open the result; nothing secret is needed to make it.
  An expired certificate is a warning (the controller keeps old keys and still unseals), one that is not
  an RSA certificate an error.
* Scopes, as `kubeseal --scope`: `strict` (default: bound to the Secret's namespace and name; renaming or
  moving it breaks unsealing), `namespace-wide` (any name in that namespace), `cluster-wide` (any name,
  any namespace). The two wider scopes are recorded in the annotations
  `sealedsecrets.bitnami.com/namespace-wide` / `sealedsecrets.bitnami.com/cluster-wide: "true"`, as
  kubeseal writes them.
* Check or recover offline: `kubeseal --recovery-unseal --recovery-private-key key.pem < sealed.yaml`
  (the key from the controller's `sealed-secrets-key*` Secret).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from stackctl.errors import InputError
from stackctl.kubernetes import yamltext

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

SOPS_VERSION = "3.13.3"
"""The `version` written in the `sops:` block: the sops release this output is tested against
(tests/delivery; scripts/delivery-versions.env), file format v3."""
ENCRYPTED_REGEX = "^(data|stringData)$"
_ENCRYPTED_KEYS = frozenset({"data", "stringData"})  # what ENCRYPTED_REGEX matches, without regex semantics

SEALED_API_VERSION = "bitnami.com/v1alpha1"
ANNOTATION_NAMESPACE_WIDE = "sealedsecrets.bitnami.com/namespace-wide"
ANNOTATION_CLUSTER_WIDE = "sealedsecrets.bitnami.com/cluster-wide"
SCOPES = ("strict", "namespace-wide", "cluster-wide")
# Annotations kubectl and kubecfg fill with a full copy of the object: a Secret's values in plaintext.
_LAST_APPLIED = ("kubectl.kubernetes.io/last-applied-configuration",
                 "kubecfg.ksonnet.io/last-applied-configuration")

_AGE_HRP = "age"
_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_RECIPIENT_HINT = "an age recipient is 'age1' and 58 more characters, as `age-keygen -y KEYFILE` prints it"


# --------------------------------------------------------------------------------------------- input


def _secret_values(secret: Mapping[str, Any], source: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """`data` (base64 text, checked) and `stringData` of the Secret, each as str → str."""
    if not isinstance(secret, Mapping):
        raise InputError("a Secret object must be a mapping", file=source)
    meta = secret.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise InputError("the Secret has no metadata.name", file=source, field="metadata.name")
    name = meta["name"]
    out: list[dict[str, str]] = []
    for section in ("data", "stringData"):
        values = secret.get(section) or {}
        if not isinstance(values, Mapping):
            raise InputError(f"Secret {name}: {section} must be a mapping", file=source, field=section)
        checked: dict[str, str] = {}
        for key, value in values.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise InputError(f"Secret {name}: every {section} key and value must be a string",
                                 file=source, field=f"{section}.{key}")
            if section == "data":
                try:
                    base64.b64decode(value, validate=True)
                except binascii.Error:
                    raise InputError(f"Secret {name}: data values are base64; this one is not",
                                     file=source, field=f"data.{key}",
                                     hint="put plain text under stringData") from None
            checked[key] = value
        out.append(checked)
    return out[0], out[1]


# ---------------------------------------------------------------------------------------------- age


def _bech32_polymod(values: Sequence[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(generator):
            if (top >> i) & 1:
                check ^= gen
    return check


def _bech32_decode(text: str) -> tuple[str, bytes]:
    """(human-readable part, data bytes) of a Bech32 string (BIP 173, no length limit, as age uses it);
    ValueError naming what is wrong."""
    if text != text.lower() and text != text.upper():
        raise ValueError("mixes upper and lower case")
    text = text.lower()
    sep = text.rfind("1")
    if sep < 1 or len(text) - sep - 1 < 6:
        raise ValueError("is not Bech32 (no '1' separator followed by a checksum)")
    hrp, rest = text[:sep], text[sep + 1:]
    if any(not 33 <= ord(c) <= 126 for c in hrp):
        raise ValueError("has characters outside printable ASCII")
    bad = sorted({c for c in rest if c not in _BECH32_CHARSET})
    if bad:
        raise ValueError(f"has characters Bech32 does not use: {''.join(bad)}")
    values = [_BECH32_CHARSET.index(c) for c in rest]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    if _bech32_polymod(expanded + values) != 1:
        raise ValueError("has a wrong checksum (a typo, or a truncated key)")
    acc = bits = 0
    out = bytearray()
    for value in values[:-6]:
        acc = (acc << 5) | value
        bits += 5
        while bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if bits >= 5 or acc & ((1 << bits) - 1):
        raise ValueError("has non-zero padding bits")
    return hrp, bytes(out)


def age_recipient_key(recipient: str, *, source: str | None = None) -> bytes:
    """The 32-byte X25519 public key of an `age1...` recipient; InputError naming it otherwise."""
    if not isinstance(recipient, str):
        raise InputError(f"age recipient {recipient!r} is not a string", file=source, field="recipients",
                         hint=_RECIPIENT_HINT)
    text = recipient.strip()
    if text.lower().startswith("age1pq1"):
        why = "is a post-quantum (ML-KEM) recipient; stackctl writes X25519 stanzas only"
    elif text.upper().startswith("AGE-SECRET-KEY-"):
        raise InputError("an age SECRET key was given as a recipient: use its public key (`age-keygen -y`), "
                         "and keep the secret key out of the profile", file=source, field="recipients")
    elif text.startswith(("ssh-", "ecdsa-")):
        why = "is an SSH key; stackctl writes X25519 age stanzas only (make an age key with `age-keygen`)"
    elif not text.lower().startswith("age1"):
        why = "is not an age recipient: it does not start with 'age1' (not Bech32 with the 'age' prefix)"
    else:
        try:
            hrp, key = _bech32_decode(text)
        except ValueError as err:
            why = str(err)
        else:
            if hrp == _AGE_HRP and len(key) == 32:
                return key
            why = (f"is a plugin recipient ({hrp}1...), which needs its age plugin" if hrp.startswith("age1")
                   else f"starts with {hrp!r}, not 'age'" if hrp != _AGE_HRP
                   else f"holds {len(key)} bytes, not a 32-byte X25519 key")
    raise InputError(f"age recipient {recipient!r} {why}", file=source, field="recipients",
                     hint=_RECIPIENT_HINT)


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _b64raw(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _wrap(text: str, width: int = 64) -> list[str]:
    return [text[i:i + width] for i in range(0, len(text), width)]


def _x25519_stanza(file_key: bytes, recipient: bytes) -> str:
    """`-> X25519 <ephemeral share>` and the wrapped file key (age v1, "The X25519 recipient type")."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    if shared == bytes(32):
        raise InputError("age recipient is a low-order point (no key can decrypt for it)", field="recipients")
    wrap_key = _hkdf(shared, share + recipient, b"age-encryption.org/v1/X25519")
    body = ChaCha20Poly1305(wrap_key).encrypt(bytes(12), file_key, None)
    lines = _wrap(_b64raw(body))
    if not lines or len(lines[-1]) == 64:
        lines.append("")  # the body ends with a line shorter than 64 columns
    return f"-> X25519 {_b64raw(share)}\n" + "".join(f"{line}\n" for line in lines)


def age_encrypt(plaintext: bytes, recipients: Sequence[bytes]) -> bytes:
    """`plaintext` as a binary age v1 file to the X25519 `recipients` (raw 32-byte keys)."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    if not recipients:
        raise InputError("no age recipients", field="recipients", hint=_RECIPIENT_HINT)
    file_key = os.urandom(16)
    header = "age-encryption.org/v1\n" + "".join(_x25519_stanza(file_key, r) for r in recipients) + "---"
    mac = hmac.new(_hkdf(file_key, b"", b"header"), header.encode("ascii"), hashlib.sha256).digest()
    nonce = os.urandom(16)
    stream = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    chunk = 64 * 1024
    pieces = [plaintext[i:i + chunk] for i in range(0, len(plaintext), chunk)] or [b""]
    payload = b"".join(
        stream.encrypt(counter.to_bytes(11, "big") + (b"\x01" if counter == len(pieces) - 1 else b"\x00"),
                       piece, None)
        for counter, piece in enumerate(pieces))
    return f"{header} {_b64raw(mac)}\n".encode("ascii") + nonce + payload


def age_armor(data: bytes) -> str:
    """age's ASCII armor: PEM-like, padded standard base64 in 64-column lines."""
    lines = _wrap(base64.b64encode(data).decode("ascii"))
    return "-----BEGIN AGE ENCRYPTED FILE-----\n" + "".join(f"{line}\n" for line in lines) + \
        "-----END AGE ENCRYPTED FILE-----\n"


# --------------------------------------------------------------------------------------------- SOPS


def _sops_value(value: str | int | bool, key: bytes, path: Sequence[str]) -> str:
    """One value as sops's AES256_GCM cipher writes it: a 32-byte random IV, the path joined with ':'
    (and a trailing ':') as additional data, the 16-byte tag apart. An empty string stays empty (sops
    does not encrypt it and reads it back as empty)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if value == "":
        return ""
    kind, text = _sops_typed(value)
    iv = os.urandom(32)
    sealed = AESGCM(key).encrypt(iv, text.encode("utf-8"), ("".join(f"{p}:" for p in path)).encode("utf-8"))
    b64 = base64.b64encode
    return (f"ENC[AES256_GCM,data:{b64(sealed[:-16]).decode()},iv:{b64(iv).decode()},"
            f"tag:{b64(sealed[-16:]).decode()},type:{kind}]")


def _sops_typed(value: str | int | bool) -> tuple[str, str]:
    """(type name, bytes sops hashes and encrypts) for a leaf, as sops's ToBytes and cipher do it."""
    if isinstance(value, bool):
        return "bool", "True" if value else "False"
    if isinstance(value, int):
        return "int", str(value)
    return "str", value


def _sops_walk(node: Any, path: tuple[str, ...], key: bytes, mac: Any, source: str | None) -> Any:
    """`node` with every value sops would encrypt encrypted, feeding `mac` in document order (sops hashes
    every non-null leaf, encrypted or not, the plaintext as its ToBytes renders it)."""
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for k, v in node.items():
            if not isinstance(k, str):
                raise InputError(f"key {k!r} is not a string", file=source, field=".".join(path))
            out[k] = _sops_walk(v, (*path, k), key, mac, source)
        return out
    if isinstance(node, (list, tuple)):
        return [_sops_walk(item, path, key, mac, source) for item in node]  # sops: a list adds no path part
    if node is None:
        return None
    if not isinstance(node, (str, int)):
        raise InputError(f"a {type(node).__name__} value cannot be written exactly for sops", file=source,
                         field=".".join(path), hint="use a string")
    mac.update(_sops_typed(node)[1].encode("utf-8"))
    if any(part in _ENCRYPTED_KEYS for part in path):
        return _sops_value(node, key, path)
    return node


def sops_encrypt(secret: Mapping[str, Any], recipients: Sequence[str], *, source: str | None = None,
                 now: dt.datetime | None = None) -> str:
    """The Secret as a SOPS-encrypted YAML document (AES256-GCM values, data key to each age recipient
    `age1...`), which `sops --decrypt` turns back into `secret`.

    `source` names the file errors are reported against (the profile that chose the recipients);
    `now` fixes `lastmodified` (tests). The output differs on every call (fresh data key and IVs)."""
    _secret_values(secret, source)
    if isinstance(recipients, str) or not recipients:
        raise InputError("SOPS needs at least one age recipient", file=source, field="recipients",
                         hint=_RECIPIENT_HINT)
    keys = [age_recipient_key(r, source=source) for r in recipients]
    if "sops" in secret:
        raise InputError("the Secret already has a top-level 'sops' key (already encrypted?)", file=source,
                         field="sops")
    data_key = os.urandom(32)
    mac = hashlib.sha512()
    tree = _sops_walk(secret, (), data_key, mac, source)
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = mac.hexdigest().upper()
    tree["sops"] = {  # keys in the order sops 3.13 writes them
        "age": [{"enc": age_armor(age_encrypt(data_key, [k])), "recipient": r.strip()}
                for r, k in zip(recipients, keys, strict=True)],
        "encrypted_regex": ENCRYPTED_REGEX,
        "lastmodified": stamp,
        "mac": _sops_mac(digest, data_key, stamp),
        "version": SOPS_VERSION,
    }
    return yamltext.dump(tree)


def _sops_mac(digest: str, key: bytes, stamp: str) -> str:
    """The MAC as sops stores it: the hex digest encrypted like a value, with `lastmodified` as the
    additional data (so the timestamp cannot be changed either)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    iv = os.urandom(32)
    sealed = AESGCM(key).encrypt(iv, digest.encode("ascii"), stamp.encode("ascii"))
    b64 = base64.b64encode
    return (f"ENC[AES256_GCM,data:{b64(sealed[:-16]).decode()},iv:{b64(iv).decode()},"
            f"tag:{b64(sealed[-16:]).decode()},type:str]")


# ------------------------------------------------------------------------------------- SealedSecret


def _load_cert(cert_pem: bytes, source: str | None, now: dt.datetime,
               warn: Callable[[str], None]) -> RSAPublicKey:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    hint = "fetch it with `kubeseal --fetch-cert > cert.pem`"
    try:
        cert = x509.load_pem_x509_certificate(cert_pem if isinstance(cert_pem, bytes) else bytes(cert_pem))
    except (ValueError, TypeError) as err:
        raise InputError(f"not a PEM certificate ({err})", file=source, field="cert", hint=hint) from None
    key = cert.public_key()
    if not isinstance(key, RSAPublicKey):
        from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519

        kinds = ((ec.EllipticCurvePublicKey, "an EC"), (ed25519.Ed25519PublicKey, "an Ed25519"),
                 (ed448.Ed448PublicKey, "an Ed448"))
        kind = next((name for cls, name in kinds if isinstance(key, cls)), "a non-RSA")
        raise InputError(f"the certificate holds {kind} key; the sealed-secrets controller seals to RSA",
                         file=source, field="cert", hint=hint)
    if key.key_size < 2048:
        raise InputError(f"the certificate's RSA key has {key.key_size} bits (below 2048)", file=source,
                         field="cert", hint=hint)
    if cert.not_valid_after_utc < now:
        warn(f"{source or 'cert'}: the sealing certificate expired on "
             f"{cert.not_valid_after_utc:%Y-%m-%d} (the controller still unseals with its old keys, but "
             f"has probably rotated: fetch the current one with `kubeseal --fetch-cert`)")
    return key


def _hybrid_encrypt(key: RSAPublicKey, plaintext: bytes, label: bytes) -> bytes:
    """sealed-secrets' hybrid scheme: a fresh AES-256 session key, RSA-OAEP(SHA-256, label)-encrypted,
    prefixed with its length (2 bytes, big endian), then the value AES-GCM-sealed with a zero nonce (the
    session key is used once)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    session = os.urandom(32)
    wrapped = key.encrypt(session, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                                                label=label or None))
    return len(wrapped).to_bytes(2, "big") + wrapped + AESGCM(session).encrypt(bytes(12), plaintext, None)


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def sealed_secret(secret: Mapping[str, Any], cert_pem: bytes, *, scope: str = "strict",
                  source: str | None = None, now: dt.datetime | None = None,
                  warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The Secret as a `bitnami.com/v1alpha1` SealedSecret encrypted to the controller's certificate;
    `scope` is strict (name+namespace bound), namespace-wide or cluster-wide, as kubeseal's --scope.

    `source` names the certificate file in errors; `warn` receives warnings (an expired certificate),
    default Python's `warnings`; `now` is the clock the expiry is checked against (tests)."""
    data, string_data = _secret_values(secret, source)
    if scope not in SCOPES:
        raise InputError(f"unknown SealedSecret scope {scope!r}", file=source, field="scope",
                         hint="one of: " + ", ".join(SCOPES))
    meta = dict(secret["metadata"])
    name = meta["name"]
    namespace = meta.get("namespace") or ""
    if scope != "cluster-wide" and not namespace:
        raise InputError(f"Secret {name}: a {scope} SealedSecret is bound to a namespace; the Secret has none",
                         file=source, field="metadata.namespace", hint="set it, or use scope cluster-wide")
    key = _load_cert(cert_pem, source, now or dt.datetime.now(dt.UTC), warn or _warn)
    label = {"strict": f"{namespace}/{name}", "namespace-wide": namespace, "cluster-wide": ""}[scope].encode()

    plain = {k: base64.b64decode(v) for k, v in data.items()}
    plain.update({k: v.encode("utf-8") for k, v in string_data.items()})  # stringData wins, as in the API
    encrypted = {k: base64.b64encode(_hybrid_encrypt(key, plain[k], label)).decode("ascii")
                 for k in sorted(plain)}

    annotations = {k: str(v) for k, v in (meta.get("annotations") or {}).items() if k not in _LAST_APPLIED}
    annotations.pop(ANNOTATION_NAMESPACE_WIDE, None)
    annotations.pop(ANNOTATION_CLUSTER_WIDE, None)
    scope_annotation = {"namespace-wide": {ANNOTATION_NAMESPACE_WIDE: "true"},
                        "cluster-wide": {ANNOTATION_CLUSTER_WIDE: "true"}}.get(scope, {})
    annotations.update(scope_annotation)
    template_meta: dict[str, Any] = {k: v for k, v in meta.items()
                                     if k not in ("annotations", "ownerReferences", "resourceVersion", "uid",
                                                  "creationTimestamp", "managedFields", "generation")}
    if annotations:
        template_meta["annotations"] = dict(sorted(annotations.items()))
    template: dict[str, Any] = {"metadata": template_meta}
    if secret.get("type"):
        template["type"] = secret["type"]
    if secret.get("immutable") is not None:
        template["immutable"] = secret["immutable"]
    sealed_meta: dict[str, Any] = {"name": name}
    if namespace:
        sealed_meta["namespace"] = namespace
    if scope_annotation:
        sealed_meta["annotations"] = scope_annotation
    return {"apiVersion": SEALED_API_VERSION, "kind": "SealedSecret", "metadata": sealed_meta,
            "spec": {"encryptedData": encrypted, "template": template}}
