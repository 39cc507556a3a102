"""The encrypted store: `.stackctl/secrets/<profile>.json`, safe to commit.

Layout (JSON; one line per recipient and per value version, keys sorted, newest version first, so a
rotation is a one-line diff plus the `current` and `mac` lines):

    {
      "stackctl_secrets": 1,
      "profile": "production",
      "cipher": "AES-256-GCM",
      "active_key": "k1",
      "store_id": "5b0e…",         # random, stable: names the store in this machine's memory of it
      "generation": 7,            # +1 on every write: an older copy put back is noticed
      "recipients": {
        "alice": {"public_key": "stackctl-pub-1:...", "added": "...", "wrapped": {"k1": {...}}}
      },
      "secrets": {
        "DB_PASSWORD": {
          "type": "password:24",
          "current": 2,
          "versions": [
            {"v": 2, "id": "9f2c...", "created": "...", "origin": "rotate", "key": "k1", "nonce": "...", "ct": "..."},
            {"v": 1, ...}
          ]
        }
      },
      "mac": "hmac-sha256:..."
    }

Cryptography (all from `cryptography`):
- a random 256-bit data key (DEK) per key generation (`k1`, `k2`, ... — `rekey` makes a new one);
- each value version is padded to a multiple of 32 bytes and sealed with AES-256-GCM under
  HKDF(DEK, "values"), a 96-bit random nonce, and associated data
  `stackctl/v1|<profile>|<name>|<version>|<id>`: a ciphertext moved to another key, version or
  profile does not decrypt;
- the DEK is wrapped per recipient: ephemeral X25519 ECDH with the recipient's public key → HKDF-SHA256
  → AES-256-GCM (associated data binds profile, key id and recipient), so adding a recipient never
  re-encrypts a value; removing one renews the data key (`SecretStore._renew_key`) in the same write;
- `mac` is HMAC-SHA256 under HKDF(active DEK, "mac|<profile>") over the canonical JSON of everything
  else, so a removed, added, reordered or edited entry (or a changed `current`) is detected.

Writes happen only inside `transaction()`: an exclusive lock on `<store>.lock`, load + verify, change,
then one `atomic_write` (temp file + fsync + rename): a crash leaves the old or the new file, never a mix.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import hmac
import json
import re
import secrets as _rand
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackctl.errors import InputError, SecretsError
from stackctl.fsutil import SECRET_MODE, TEMP_GLOB, atomic_write, file_lock, private_dir, remove_stale_temps
from stackctl.secrets.keys import Identity, identities, keys_dir, parse_public

FORMAT = 1
CIPHER = "AES-256-GCM"
MAC_PREFIX = "hmac-sha256:"
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RECIPIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")
_KEY_ID = re.compile(r"^k[1-9][0-9]*$")
_STORE_ID = re.compile(r"^[0-9a-f]{32}$")
_ORIGIN = re.compile(r"^(generate|rotate|set|import|rollback:v[0-9]+)$")


def now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _hkdf(secret: bytes, info: str, *, salt: bytes | None = None) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info.encode("utf-8")).derive(secret)


# ---------------------------------------------------------------------------------------------
# The document, typed
# ---------------------------------------------------------------------------------------------
@dataclass
class Version:
    v: int
    id: str  # random, stable across rekeys: identifies this value for digests
    created: str
    origin: str  # generate | rotate | set | import | rollback:vN
    key: str  # data key generation that sealed it
    nonce: str
    ct: str


@dataclass
class Entry:
    type: str  # a generator spec (`hex:32`) or `manual`
    current: int
    versions: list[Version]  # newest first

    def version(self, v: int) -> Version | None:
        return next((x for x in self.versions if x.v == v), None)

    @property
    def current_version(self) -> Version:
        found = self.version(self.current)
        assert found is not None  # load() validates this
        return found


@dataclass
class Wrap:
    epk: str
    nonce: str
    ct: str


@dataclass
class Recipient:
    public_key: str
    added: str
    wrapped: dict[str, Wrap]


@dataclass
class Document:
    profile: str
    active_key: str
    recipients: dict[str, Recipient] = field(default_factory=dict)
    secrets: dict[str, Entry] = field(default_factory=dict)
    mac: str = ""
    # a stable random id and a counter bumped by every write: this machine remembers the highest
    # generation it saw per store id (`_Seen`), so a store put back to an older copy is noticed. Both
    # absent in stores written before they existed (read as is, MAC unchanged; added on the next write).
    store_id: str | None = None
    generation: int | None = None

    def key_ids(self) -> list[str]:
        ids = {k for r in self.recipients.values() for k in r.wrapped} | {self.active_key}
        return sorted(ids, key=lambda k: int(k[1:]))

    def to_data(self, *, with_mac: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "stackctl_secrets": FORMAT,
            "profile": self.profile,
            "cipher": CIPHER,
            "active_key": self.active_key,
            **({"store_id": self.store_id, "generation": self.generation} if self.store_id is not None else {}),
            "recipients": {n: _recipient_data(r) for n, r in sorted(self.recipients.items())},
            "secrets": {n: _entry_data(e) for n, e in sorted(self.secrets.items())},
        }
        if with_mac:
            data["mac"] = self.mac
        return data


def _recipient_data(r: Recipient) -> dict[str, Any]:
    return {"public_key": r.public_key, "added": r.added,
            "wrapped": {k: {"epk": w.epk, "nonce": w.nonce, "ct": w.ct} for k, w in sorted(r.wrapped.items())}}


def _version_data(v: Version) -> dict[str, Any]:
    return {"v": v.v, "id": v.id, "created": v.created, "origin": v.origin, "key": v.key, "nonce": v.nonce,
            "ct": v.ct}


def _entry_data(e: Entry) -> dict[str, Any]:
    return {"type": e.type, "current": e.current, "versions": [_version_data(v) for v in e.versions]}


def dumps(doc: Document) -> str:
    """The file text: stable order, one line per recipient and per version (small, mergeable diffs)."""
    def one(obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=True, separators=(", ", ": "))

    data = doc.to_data()
    lines = ["{"]
    for k in ("stackctl_secrets", "profile", "cipher", "active_key", "store_id", "generation"):
        if k in data:
            lines.append(f"  {one(k)}: {one(data[k])},")
    rec = data["recipients"]
    lines.append('  "recipients": {' + ("" if rec else "},"))
    for i, (name, r) in enumerate(rec.items()):
        lines.append(f"    {one(name)}: {one(r)}" + ("," if i < len(rec) - 1 else ""))
    if rec:
        lines.append("  },")
    sec = data["secrets"]
    lines.append('  "secrets": {' + ("" if sec else "},"))
    for i, (name, e) in enumerate(sec.items()):
        lines.append(f"    {one(name)}: {{")
        lines.append(f'      "type": {one(e["type"])},')
        lines.append(f'      "current": {one(e["current"])},')
        lines.append('      "versions": [')
        for j, v in enumerate(e["versions"]):
            lines.append(f"        {one(v)}" + ("," if j < len(e["versions"]) - 1 else ""))
        lines.append("      ]")
        lines.append("    }" + ("," if i < len(sec) - 1 else ""))
    if sec:
        lines.append("  },")
    lines.append(f'  "mac": {one(data["mac"])}')
    lines.append("}")
    return "\n".join(lines) + "\n"


def canonical(doc: Document) -> bytes:
    return json.dumps(doc.to_data(with_mac=False), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode("ascii")


class _Corrupt(Exception):
    pass


def _req(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise _Corrupt(f"{where}: missing '{key}'")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Corrupt(f"{where}.{key}: wrong type")
    return value


def _only(obj: Any, allowed: tuple[str, ...], where: str) -> None:
    """Refuse a field this stackctl does not know: the MAC covers only what it reads, so an unknown
    field would travel unverified."""
    if isinstance(obj, dict):
        extra = sorted(set(obj) - set(allowed))
        if extra:
            raise _Corrupt(f"{where}: unknown field '{extra[0]}'")


def parse_document(text: str) -> Document:
    """Parse and structurally validate a store file; `_Corrupt` with a located reason otherwise."""
    from stackctl.compose import yaml as bounded

    if bounded.json_too_deep(text):  # json.loads recurses per level: a RecursionError past ~1,000
        raise _Corrupt(f"JSON nested more than {bounded.MAX_DEPTH} levels deep")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Corrupt(f"invalid JSON at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(data, dict):
        raise _Corrupt("not a JSON object")
    fmt = data.get("stackctl_secrets")
    if fmt != FORMAT:
        raise _Corrupt(f"unsupported store format {fmt!r} (this stackctl reads format {FORMAT})")
    if data.get("cipher") != CIPHER:
        raise _Corrupt(f"unsupported cipher {data.get('cipher')!r}")
    _only(data, ("stackctl_secrets", "profile", "cipher", "active_key", "store_id", "generation", "recipients",
                 "secrets", "mac"), "store")
    doc = Document(profile=_req(data, "profile", str, "store"), active_key=_req(data, "active_key", str, "store"),
                   mac=_req(data, "mac", str, "store"))
    if "store_id" in data or "generation" in data:  # both or neither (neither: written before they existed)
        doc.store_id = _req(data, "store_id", str, "store")
        doc.generation = _req(data, "generation", int, "store")
        if not _STORE_ID.match(doc.store_id):
            raise _Corrupt("store_id: malformed")
        if doc.generation < 1:
            raise _Corrupt("generation: not a positive number")
    if not _KEY_ID.match(doc.active_key):
        raise _Corrupt("active_key: malformed")
    for name, r in _req(data, "recipients", dict, "store").items():
        where = f"recipients.{name}"
        if not RECIPIENT_NAME.match(name):
            raise _Corrupt(f"recipients: invalid recipient name {name!r}")
        _only(r, ("public_key", "added", "wrapped"), where)
        wrapped = {}
        for kid, w in _req(r, "wrapped", dict, where).items():
            if not _KEY_ID.match(kid):
                raise _Corrupt(f"{where}.wrapped.{kid}: malformed key id")
            _only(w, ("epk", "nonce", "ct"), f"{where}.wrapped.{kid}")
            wrapped[kid] = Wrap(epk=_req(w, "epk", str, f"{where}.wrapped.{kid}"),
                                nonce=_req(w, "nonce", str, f"{where}.wrapped.{kid}"),
                                ct=_req(w, "ct", str, f"{where}.wrapped.{kid}"))
        doc.recipients[name] = Recipient(public_key=_req(r, "public_key", str, where),
                                         added=_req(r, "added", str, where), wrapped=wrapped)
    for name, e in _req(data, "secrets", dict, "store").items():
        where = f"secrets.{name}"
        if not SECRET_NAME.match(name):
            raise _Corrupt(f"{where}: invalid name")
        _only(e, ("type", "current", "versions"), where)
        versions = []
        for i, v in enumerate(_req(e, "versions", list, where)):
            w = f"{where}.versions[{i}]"
            _only(v, ("v", "id", "created", "origin", "key", "nonce", "ct"), w)
            versions.append(Version(v=_req(v, "v", int, w), id=_req(v, "id", str, w),
                                    created=_req(v, "created", str, w), origin=_req(v, "origin", str, w),
                                    key=_req(v, "key", str, w), nonce=_req(v, "nonce", str, w),
                                    ct=_req(v, "ct", str, w)))
        entry = Entry(type=_req(e, "type", str, where), current=_req(e, "current", int, where), versions=versions)
        if not versions or entry.version(entry.current) is None:
            raise _Corrupt(f"{where}: current version {entry.current} is not in its history")
        doc.secrets[name] = entry
    return doc


# ---------------------------------------------------------------------------------------------
# Crypto
# ---------------------------------------------------------------------------------------------
def _wrap_ad(profile: str, key_id: str, public_key: str) -> bytes:
    return f"stackctl/v1 wrap|{profile}|{key_id}|{public_key}".encode()


def wrap_key(dek: bytes, public_key: str, profile: str, key_id: str) -> Wrap:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    pub_raw = parse_public(public_key)
    eph = X25519PrivateKey.generate()
    epk = eph.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    shared = eph.exchange(X25519PublicKey.from_public_bytes(pub_raw))
    kek = _hkdf(shared, f"stackctl/v1 wrap|{profile}|{key_id}", salt=epk + pub_raw)
    nonce = _rand.token_bytes(12)
    ct = AESGCM(kek).encrypt(nonce, dek, _wrap_ad(profile, key_id, public_key))
    return Wrap(epk=_b64(epk), nonce=_b64(nonce), ct=_b64(ct))


def unwrap_key(w: Wrap, identity: Identity, profile: str, key_id: str) -> bytes:
    """The DEK, or ValueError (wrong key, tampered wrap)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    public_key = identity.public
    try:
        epk = _unb64(w.epk)
        priv = X25519PrivateKey.from_private_bytes(identity.private)
        shared = priv.exchange(X25519PublicKey.from_public_bytes(epk))
        kek = _hkdf(shared, f"stackctl/v1 wrap|{profile}|{key_id}", salt=epk + parse_public(public_key))
        dek = AESGCM(kek).decrypt(_unb64(w.nonce), _unb64(w.ct), _wrap_ad(profile, key_id, public_key))
    except (InvalidTag, ValueError, TypeError):
        raise ValueError("cannot unwrap") from None
    if len(dek) != 32:
        raise ValueError("cannot unwrap")
    return dek


def _value_ad(profile: str, name: str, v: int, vid: str) -> bytes:
    return f"stackctl/v1|{profile}|{name}|{v}|{vid}".encode()


def seal(dek: bytes, profile: str, name: str, v: int, vid: str, value: str) -> tuple[str, str]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = _rand.token_bytes(12)
    ct = AESGCM(_hkdf(dek, "stackctl/v1 values")).encrypt(nonce, _pad(value.encode("utf-8")),
                                                         _value_ad(profile, name, v, vid))
    return _b64(nonce), _b64(ct)


def _pad(raw: bytes) -> bytes:
    """0x80 then zeros up to a multiple of 32 bytes: the file shows a value's length only roughly."""
    raw += b"\x80"
    return raw + b"\x00" * (-len(raw) % 32)


def _unpad(raw: bytes) -> bytes:
    body = raw.rstrip(b"\x00")
    if not body.endswith(b"\x80"):
        raise ValueError("bad padding")
    return body[:-1]


def unseal(dek: bytes, profile: str, name: str, ver: Version) -> str:
    """The plaintext, or ValueError (wrong key, moved or tampered ciphertext). Never shows the value."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        raw = AESGCM(_hkdf(dek, "stackctl/v1 values")).decrypt(_unb64(ver.nonce), _unb64(ver.ct),
                                                              _value_ad(profile, name, ver.v, ver.id))
        return _unpad(raw).decode("utf-8")
    except (InvalidTag, ValueError, TypeError, UnicodeDecodeError):
        raise ValueError("does not decrypt") from None


def compute_mac(doc: Document, dek: bytes) -> str:
    key = _hkdf(dek, f"stackctl/v1 mac|{doc.profile}")
    return MAC_PREFIX + hmac.new(key, canonical(doc), hashlib.sha256).hexdigest()


def version_digest(profile: str, name: str, ver: Version) -> str:
    """A digest naming one value version without revealing anything about the value (no key needed)."""
    text = f"stackctl/v1 digest|{profile}|{name}|{ver.v}|{ver.id}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# ---------------------------------------------------------------------------------------------
# The store as the rest of stackctl sees it
# ---------------------------------------------------------------------------------------------
class SecretStore:
    """A loaded store. With a key (`unlocked`) it decrypts and, inside a transaction, changes values.

    Without a key it still lists names, types, versions and ages (that metadata is not secret) —
    unverified, since the MAC needs the data key.
    """

    def __init__(self, path: Path, display: str, doc: Document, deks: Mapping[str, bytes] | None,
                 me: str | None, history: int = 10) -> None:
        self.path = path
        self.display = display
        self.doc = doc
        self._deks: dict[str, bytes] = dict(deks or {})
        self.me = me  # the recipient name whose key opened the store
        self.history = history
        self.dirty = False
        self._writable = False
        self.seen = _Seen()  # what this machine remembered of this store before it was opened

    def __repr__(self) -> str:
        return f"SecretStore({self.display!r}, unlocked={self.unlocked})"

    # -- reading ------------------------------------------------------------------------------
    @property
    def profile(self) -> str:
        return self.doc.profile

    @property
    def unlocked(self) -> bool:
        return self.doc.active_key in self._deks

    @property
    def names(self) -> list[str]:
        return sorted(self.doc.secrets)

    def __contains__(self, name: object) -> bool:
        return name in self.doc.secrets

    def entry(self, name: str) -> Entry:
        try:
            return self.doc.secrets[name]
        except KeyError:
            raise SecretsError(f"no secret named {name!r} in this store", file=self.display,
                               hint=f"known: {', '.join(self.names) or 'none'}") from None

    def value(self, name: str, version: int | None = None) -> str:
        """The plaintext of `name` (current version unless `version`)."""
        entry = self.entry(name)
        v = entry.current if version is None else version
        ver = entry.version(v)
        if ver is None:
            raise SecretsError(f"{name} has no version {v} (kept: {', '.join(str(x.v) for x in entry.versions)})",
                               file=self.display)
        return self._unseal(name, ver)

    def values(self) -> dict[str, str]:
        """Every current value, by name."""
        return {n: self.value(n) for n in self.names}

    def digest(self, name: str) -> str:
        return version_digest(self.profile, name, self.entry(name).current_version)

    def _dek(self, key_id: str) -> bytes:
        if not self._deks:
            raise SecretsError("the store is locked: no private key for it was found", file=self.display)
        try:
            return self._deks[key_id]
        except KeyError:
            raise SecretsError(f"a value is sealed with data key {key_id!r}, which no recipient holds",
                               file=self.display, hint="the file is corrupt; restore it from git") from None

    def _unseal(self, name: str, ver: Version) -> str:
        try:
            return unseal(self._dek(ver.key), self.profile, name, ver)
        except ValueError:
            raise SecretsError(f"{name} v{ver.v} does not decrypt: the file was tampered with or is corrupt",
                               file=self.display, hint="restore it from git") from None

    def verify_all(self) -> int:
        """Decrypt every kept version (each bound to its name, version and profile); the count."""
        n = 0
        for name in self.names:
            for ver in self.doc.secrets[name].versions:
                self._unseal(name, ver)
                n += 1
        return n

    # -- changing (inside transaction() only) -------------------------------------------------
    def _check_writable(self) -> None:
        if not self._writable:
            raise RuntimeError("store changes must happen inside stackctl.secrets.store.transaction()")

    def put(self, name: str, value: str, *, type: str, origin: str) -> Version:
        """Store `value` as a new current version of `name` (created if needed); prune history."""
        self._check_writable()
        if not SECRET_NAME.match(name):
            raise InputError(f"invalid secret name {name!r} (letters, digits and '_', not starting with a digit)")
        if "\x00" in value:
            raise InputError(f"{name}: a value cannot contain a NUL byte")
        entry = self.doc.secrets.get(name)
        # after the file was put back to an older copy (or a secret deleted and made again), the numbers
        # above what it holds may already have existed: continue above the highest this machine saw
        v = max([x.v for x in entry.versions] if entry else [0]) + 1
        v = max(v, self.seen.versions.get(name, 0) + 1)
        vid = _rand.token_hex(8)
        key_id = self.doc.active_key
        nonce, ct = seal(self._dek(key_id), self.profile, name, v, vid, value)
        ver = Version(v=v, id=vid, created=now(), origin=origin, key=key_id, nonce=nonce, ct=ct)
        if entry is None:
            entry = Entry(type=type, current=v, versions=[])
            self.doc.secrets[name] = entry
        entry.type = type
        entry.versions.insert(0, ver)
        entry.current = v
        del entry.versions[max(self.history, 1):]
        self.dirty = True
        return ver

    def rollback(self, name: str, to: int | None = None) -> Version:
        """Make an earlier value current again, as a new version (history stays linear)."""
        self._check_writable()
        entry = self.entry(name)
        if to is None:
            older = [x for x in entry.versions if x.v < entry.current]
            if not older:
                raise SecretsError(f"{name} has no version before v{entry.current} to roll back to",
                                   file=self.display)
            target = older[0]
        else:
            found = entry.version(to)
            if found is None:
                raise InputError(f"{name} has no version {to} (kept: {', '.join(str(x.v) for x in entry.versions)})",
                                 field="--to")
            if found.v == entry.current:
                raise InputError(f"v{to} is already the current version of {name}", field="--to")
            target = found
        return self.put(name, self._unseal(name, target), type=entry.type, origin=f"rollback:v{target.v}")

    def delete(self, name: str) -> None:
        self._check_writable()
        self.entry(name)
        del self.doc.secrets[name]
        self.dirty = True

    def add_recipient(self, name: str, public_key: str) -> None:
        self._check_writable()
        if not RECIPIENT_NAME.match(name):
            raise InputError(f"invalid recipient name {name!r} (letters, digits, '.', '_', '-', '@')", field="NAME")
        parse_public(public_key, field="PUBLIC_KEY")
        for other, r in self.doc.recipients.items():
            if other == name:
                raise InputError(f"recipient {name!r} already exists", field="NAME",
                                 hint="remove it first to change its key")
            if r.public_key == public_key.strip():
                raise InputError(f"this public key is already recipient {other!r}", field="PUBLIC_KEY")
        self.doc.recipients[name] = Recipient(
            public_key=public_key.strip(), added=now(),
            wrapped={kid: wrap_key(self._dek(kid), public_key.strip(), self.profile, kid) for kid in self._deks})
        self.dirty = True

    def remove_recipient(self, name: str, *, allow_self: bool = False) -> None:
        self._check_writable()
        if name not in self.doc.recipients:
            raise InputError(f"no recipient named {name!r} (recipients: {', '.join(sorted(self.doc.recipients))})",
                             field="NAME")
        if len(self.doc.recipients) == 1:
            raise SecretsError(f"{name!r} is the last recipient: removing it would lock everyone out",
                               file=self.display)
        if name == self.me and not allow_self:
            raise SecretsError(f"{name!r} is your own key: removing it locks you out of this store",
                               file=self.display, hint="pass --force if another recipient can still open it")
        del self.doc.recipients[name]
        # The removed key still unwraps every data key it held: renew it now, in this same write, so
        # it neither reads a value written from now on nor forges one under a MAC it can compute.
        self._renew_key()
        self.dirty = True

    def _renew_key(self) -> str:
        """A fresh data key sealed only to the current recipients; every kept version re-sealed under
        it and every other key dropped (a pending one from a half-done rekey too: the removed
        recipient may hold it)."""
        key_ids = self.doc.key_ids()
        new_id = f"k{int(key_ids[-1][1:]) + 1}"
        dek = _rand.token_bytes(32)
        for r in self.doc.recipients.values():
            r.wrapped[new_id] = wrap_key(dek, r.public_key, self.profile, new_id)
        self._deks[new_id] = dek
        self._switch_to(new_id)
        return new_id

    # -- rekey, two steps (see rekey()) ---------------------------------------------------------
    def _add_pending_key(self) -> str:
        key_ids = self.doc.key_ids()
        pending = [k for k in key_ids if k != self.doc.active_key and k in self._deks]
        if pending:  # an earlier rekey stopped between its two steps: finish with its key
            return pending[-1]
        new_id = f"k{int(key_ids[-1][1:]) + 1}"
        dek = _rand.token_bytes(32)
        for r in self.doc.recipients.values():
            r.wrapped[new_id] = wrap_key(dek, r.public_key, self.profile, new_id)
        self._deks[new_id] = dek
        self.dirty = True
        return new_id

    def _switch_to(self, key_id: str) -> None:
        dek = self._deks[key_id]
        for name, entry in self.doc.secrets.items():
            for i, ver in enumerate(entry.versions):
                plain = self._unseal(name, ver)
                nonce, ct = seal(dek, self.profile, name, ver.v, ver.id, plain)
                entry.versions[i] = Version(v=ver.v, id=ver.id, created=ver.created, origin=ver.origin,
                                            key=key_id, nonce=nonce, ct=ct)
        self.doc.active_key = key_id
        for r in self.doc.recipients.values():
            for kid in list(r.wrapped):
                if kid != key_id:
                    del r.wrapped[kid]
        for kid in list(self._deks):
            if kid != key_id:
                del self._deks[kid]
        self.dirty = True


# ---------------------------------------------------------------------------------------------
# Opening, creating, transactions
# ---------------------------------------------------------------------------------------------
def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _read(path: Path, display: str, profile: str) -> Document:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretsError(f"no secrets store for profile {profile!r} yet", file=display,
                           hint=f"create it with `stackctl secrets generate -p {profile}` "
                                f"or `stackctl secrets init -p {profile}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretsError(f"cannot read the store: {type(exc).__name__}", file=display) from None
    try:
        doc = parse_document(text)
    except _Corrupt as exc:
        raise SecretsError(f"not a valid secrets store: {exc}", file=display,
                           hint="the file is corrupt or was edited by hand; restore it from git") from None
    if doc.profile != profile:
        raise SecretsError(f"this store belongs to profile {doc.profile!r}, not {profile!r}", file=display,
                           hint="a store file cannot be copied between profiles")
    return doc


def _unusable_key(ids: list[Identity]) -> None:
    """No usable key opens the store: a key file that could not be used may be the one it needs."""
    problems = getattr(ids, "problems", [])
    if problems:
        raise problems[0]


def _unlock(doc: Document, display: str, ids: list[Identity]) -> tuple[dict[str, bytes], str]:
    names = ", ".join(sorted(doc.recipients)) or "none"
    if not ids:
        _unusable_key(ids)
        raise SecretsError(
            f"no private key found to open this store (its recipients: {names})", file=display,
            hint="create a key with `stackctl secrets keygen` and ask a recipient to run "
                 "`stackctl secrets recipients add <name> <your public key>`; in CI set STACKCTL_SECRET_KEY")
    by_public = {r.public_key: n for n, r in doc.recipients.items()}
    for ident in ids:
        name = by_public.get(ident.public)
        if name is None:
            continue
        rec = doc.recipients[name]
        deks = {}
        for kid, w in rec.wrapped.items():
            try:
                deks[kid] = unwrap_key(w, ident, doc.profile, kid)
            except ValueError:
                raise SecretsError(f"cannot unwrap the data key for recipient {name!r} with {ident.source}: "
                                   "wrong key or the file was tampered with", file=display,
                                   hint="restore the store from git") from None
        if doc.active_key not in deks:
            raise SecretsError(f"recipient {name!r} has no wrapped copy of the active data key",
                               file=display, hint="the file is corrupt; restore it from git")
        return deks, name
    _refuse_altered_recipient(doc, display, ids)
    _unusable_key(ids)
    mine = "; ".join(f"{i.source} ({i.public[:28]}…)" for i in ids)
    raise SecretsError(
        f"none of your keys is a recipient of this store (recipients: {names}; your keys: {mine})",
        file=display, hint="ask a recipient to run `stackctl secrets recipients add <name> <your public key>`")


def _refuse_altered_recipient(doc: Document, display: str, ids: list[Identity]) -> None:
    """None of our public keys is a recipient: if one of our keys still opens a recipient's wrapped data
    key, that recipient's public key in the file was changed (without a key nothing else would tell)."""
    for name, rec in sorted(doc.recipients.items()):
        wrap = rec.wrapped.get(doc.active_key)
        if wrap is None:
            continue
        for ident in ids:
            if ident.public == rec.public_key:
                continue
            try:
                unwrap_key(wrap, ident, doc.profile, doc.active_key)
            except ValueError:
                continue
            raise SecretsError(f"recipient {name!r} is your key ({ident.source}), but its public key in the file "
                               "was changed: the file was tampered with", file=display,
                               hint="restore it from git; nothing was read or written")


def _verify_mac(doc: Document, dek: bytes, display: str) -> None:
    if not hmac.compare_digest(compute_mac(doc, dek), doc.mac):
        raise SecretsError("integrity check failed: the file was changed outside stackctl (an entry edited, "
                           "removed, reordered or copied from elsewhere) or is corrupt", file=display,
                           hint="restore it from git; nothing was written")


def load(path: Path, profile: str, *, display: str | None = None, need_key: bool = True,
         history: int = 10, ids: list[Identity] | None = None) -> SecretStore:
    """Open a store. With `need_key` (default) it must unlock and verify, else SecretsError.

    Without `need_key` it unlocks and verifies when a key is available and otherwise returns a locked,
    unverified store (metadata only).
    """
    shown = display or str(path)
    doc = _read(path, shown, profile)
    if ids is None:
        ids = identities()
    if not need_key:
        by_public = {r.public_key for r in doc.recipients.values()}
        if not any(i.public in by_public for i in ids):
            _refuse_altered_recipient(doc, shown, ids)
            return SecretStore(path, shown, doc, None, None, history)
    deks, me = _unlock(doc, shown, ids)
    _verify_mac(doc, deks[doc.active_key], shown)
    store = SecretStore(path, shown, doc, deks, me, history)
    _check_generation(store)
    return store


def create(path: Path, profile: str, identity: Identity, recipient: str, *, display: str | None = None,
           history: int = 10) -> SecretStore:
    """Write a new, empty store with one recipient (`identity`). Refuses to replace an existing one."""
    shown = display or str(path)
    with file_lock(lock_path(path)):
        if path.exists():
            raise SecretsError("a secrets store already exists here", file=shown)
        _ignore_lock_files(path.parent)
        dek = _rand.token_bytes(32)
        doc = Document(profile=profile, active_key="k1")
        store = SecretStore(path, shown, doc, {"k1": dek}, recipient, history)
        store._writable = True
        store.add_recipient(recipient, identity.public)
        _commit(store)
        store._writable = False
        return store


@contextlib.contextmanager
def transaction(path: Path, profile: str, *, display: str | None = None, history: int = 10,
                ids: list[Identity] | None = None) -> Iterator[SecretStore]:
    """Lock, load + verify, yield the store for changes, then write it once (if changed).

    An exception inside the block writes nothing. Parallel transactions on one store run one at a time.
    """
    with file_lock(lock_path(path)):
        store = load(path, profile, display=display, history=history, ids=ids)
        store._writable = True
        yield store
        store._writable = False
        if store.dirty:
            _commit(store)


def _commit(store: SecretStore) -> None:
    doc = store.doc
    if doc.store_id is None:  # a store written before ids: it gets one now (migration on write)
        doc.store_id = _rand.token_hex(16)
    doc.generation = max(doc.generation or 0, store.seen.generation) + 1
    dek = store._dek(store.doc.active_key)
    store.doc.mac = compute_mac(store.doc, dek)
    remove_stale_temps(store.path)  # left by a killed writer; we hold the lock
    atomic_write(store.path, dumps(store.doc), mode=SECRET_MODE)
    store.dirty = False
    _remember(store.doc)


# ---------------------------------------------------------------------------------------------
# What this machine saw: rollback of a store, version numbers
# ---------------------------------------------------------------------------------------------
@dataclass
class _Seen:
    generation: int = 0
    versions: dict[str, int] = field(default_factory=dict)  # secret name → highest version number


def warn(message: str) -> None:
    """How the store tells the user something without failing (stderr, like the CLI's warnings)."""
    sys.stderr.write(f"Warning: {message}\n")
    sys.stderr.flush()


def state_path() -> Path:
    """`<config dir>/stackctl/stores.json`, next to the key directory: per store id, the highest
    generation and version numbers this machine saw. Advisory: unreadable or unwritable, it is skipped."""
    return keys_dir().parent / "stores.json"


def _read_state() -> dict[str, Any]:
    try:
        data = json.loads(state_path().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return {}
    stores = data.get("stores") if isinstance(data, dict) else None
    return stores if isinstance(stores, dict) else {}


def _seen(doc: Document, state: dict[str, Any]) -> _Seen:
    rec = state.get(doc.store_id or "")
    if not isinstance(rec, dict):
        return _Seen()
    gen = rec.get("generation")
    versions = rec.get("versions")
    return _Seen(generation=gen if isinstance(gen, int) and not isinstance(gen, bool) else 0,
                 versions={k: v for k, v in versions.items() if isinstance(v, int) and not isinstance(v, bool)}
                 if isinstance(versions, dict) else {})


_told: set[tuple[str, int | None]] = set()


def _check_generation(store: SecretStore) -> None:
    """A verified store older than the one this machine last saw was put back (a rollback of the file):
    say so, and remember the highest numbers so no version number is handed out twice."""
    doc = store.doc
    if doc.store_id is None:
        return
    store.seen = _seen(doc, _read_state())
    told = (doc.store_id, doc.generation)
    if doc.generation is not None and doc.generation < store.seen.generation and told not in _told:
        _told.add(told)  # once per process: a command may open the store several times
        warn(f"{store.display}: this store is at generation {doc.generation}, but this machine already saw "
             f"generation {store.seen.generation}: an older copy was put back (a git revert or checkout?). "
             "Values rotated since then are gone from it; check `git log` of the file")
    _remember(doc)


def _remember(doc: Document) -> None:
    if doc.store_id is None or doc.generation is None:
        return
    path = state_path()
    try:
        private_dir(path.parent)
        with file_lock(path.with_name(path.name + ".lock")):
            state = _read_state()
            seen = _seen(doc, state)
            versions = dict(seen.versions)
            for name, entry in doc.secrets.items():
                versions[name] = max(versions.get(name, 0), *(v.v for v in entry.versions))
            if seen.generation >= doc.generation and versions == seen.versions:
                return
            state[doc.store_id] = {"generation": max(seen.generation, doc.generation), "versions": versions}
            atomic_write(path, json.dumps({"stores": state}, indent=1, sort_keys=True) + "\n", mode=SECRET_MODE)
    except OSError:
        return  # advisory (a read-only home): the store itself is fine


def _ignore_lock_files(directory: Path) -> None:
    ignore = directory / ".gitignore"
    if not ignore.exists():
        atomic_write(ignore, f"# written by stackctl: lock and temp files of the secrets stores\n*.lock\n{TEMP_GLOB}\n")


def rekey(path: Path, profile: str, *, display: str | None = None, history: int = 10,
          ids: list[Identity] | None = None) -> tuple[str, str]:
    """New data key for the store, in two committed steps so no one is ever locked out:

    1. wrap a new DEK for every recipient next to the old one (values untouched) — written;
    2. re-seal every kept version under the new DEK, make it active, drop the old wraps — written.

    A crash after step 1 leaves a valid store holding both keys; the next `rekey` finishes it.
    Returns (old key id, new key id).
    """
    with transaction(path, profile, display=display, history=history, ids=ids) as store:
        old = store.doc.active_key
        new = store._add_pending_key()
    with transaction(path, profile, display=display, history=history, ids=ids) as store:
        if new not in store._deks:  # a concurrent rekey already finished
            return old, store.doc.active_key
        store._switch_to(new)
        # prove every recipient can still open the result before it is written
        for name, r in store.doc.recipients.items():
            if new not in r.wrapped:
                raise SecretsError(f"recipient {name!r} has no wrapped copy of the new key; nothing changed",
                                   file=store.display)
    return old, new


def age(created: str, *, at: _dt.datetime | None = None) -> str:
    """`3d`, `5h`, `12m`, `40s` since an ISO timestamp."""
    try:
        then = _dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC)
    except ValueError:
        return "?"
    secs = int(((at or _dt.datetime.now(_dt.UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{max(secs, 0)}s"

