"""Identities: each developer / CI system has its own X25519 key pair.

The private key lives outside the repository, in `$XDG_CONFIG_HOME/stackctl/keys/<name>.key`
(default `~/.config/stackctl/keys/`), mode 0600 — a key file readable by group or others is refused —
or comes from the `STACKCTL_SECRET_KEY` environment variable (CI). The public key is what a store
lists as a recipient; it is safe to share and commit.

Text forms:  private  `STACKCTL-KEY-1:<base64url 32 bytes>`
             public   `stackctl-pub-1:<base64url 32 bytes>`
"""

from __future__ import annotations

import base64
import datetime as _dt
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from stackctl.errors import InputError, SecretsError
from stackctl.fsutil import SECRET_MODE, atomic_write, file_lock, private_dir

PRIVATE_PREFIX = "STACKCTL-KEY-1:"
PUBLIC_PREFIX = "stackctl-pub-1:"
ENV_KEY = "STACKCTL_SECRET_KEY"
ENV_KEY_FILE = "STACKCTL_SECRET_KEY_FILE"
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")
_B64_32 = re.compile(r"^[A-Za-z0-9_\-]{43}=?$")


@dataclass(frozen=True)
class Identity:
    """A private key we hold. `source` says where it came from (a path or the env var), for messages."""

    name: str
    private: bytes = b""
    source: str = ""

    @property
    def public(self) -> str:
        return public_from_private(self.private)

    def __repr__(self) -> str:  # never show key material, even in a traceback
        return f"Identity(name={self.name!r}, source={self.source!r})"


def keys_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "stackctl" / "keys"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_from_private(private: bytes) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    pub = X25519PrivateKey.from_private_bytes(private).public_key()
    return PUBLIC_PREFIX + _b64(pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def parse_public(text: str, *, field: str = "public key") -> bytes:
    """`stackctl-pub-1:...` → 32 raw bytes; InputError naming `field` otherwise."""
    body = text.strip()
    if not body.startswith(PUBLIC_PREFIX) or not _B64_32.match(body[len(PUBLIC_PREFIX):]):
        raise InputError(f"not a stackctl public key (expected {PUBLIC_PREFIX}<43 characters>)", field=field,
                         hint="print yours with `stackctl secrets keygen`")
    return _unb64(body[len(PUBLIC_PREFIX):])


def parse_private(text: str, *, source: str) -> bytes:
    body = text.strip()
    if not body.startswith(PRIVATE_PREFIX) or not _B64_32.match(body[len(PRIVATE_PREFIX):]):
        raise SecretsError(f"not a stackctl private key (expected a line {PRIVATE_PREFIX}...)", file=source)
    return _unb64(body[len(PRIVATE_PREFIX):])


def _key_text(private: bytes) -> str:
    created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (f"# stackctl secret key (X25519), created {created}. Keep it private (mode 0600); never commit it.\n"
            f"# public key: {public_from_private(private)}\n"
            f"{PRIVATE_PREFIX}{_b64(private)}\n")


def keygen(name: str = "default") -> tuple[Identity, bool]:
    """Create `<keys_dir>/<name>.key` unless it exists. Returns (identity, created)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    if not KEY_NAME.match(name):
        raise InputError(f"invalid key name {name!r} (letters, digits, '.', '_', '-', '@'; at most 64)",
                         field="--name")
    path = keys_dir() / f"{name}.key"
    if path.exists():
        return load_key_file(path), False
    private_dir(path.parent)
    # two first-time commands at once must not both write a key: the second would replace the first,
    # locking out the store the first one just created
    with file_lock(path.parent / ".keygen.lock"):
        if path.exists():
            return load_key_file(path), False
        private = X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        atomic_write(path, _key_text(private), mode=SECRET_MODE)
    return Identity(name=name, private=private, source=str(path)), True


class Identities(list[Identity]):
    """The usable keys, plus `problems`: key-directory files that could not be used (loose mode, not a
    key, a group/other-writable directory). A problem matters only when no usable key opens the store —
    one stray file must not block a command that `STACKCTL_SECRET_KEY` (or another file) serves."""

    def __init__(self, found: list[Identity], problems: list[SecretsError]) -> None:
        super().__init__(found)
        self.problems = problems


def load_key_file(path: Path) -> Identity:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SecretsError("key file not found", file=str(path)) from None
    except OSError as exc:
        raise SecretsError(f"cannot read key file: {type(exc).__name__}", file=str(path)) from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a device, pipe or socket"
        raise SecretsError(f"not a key file: {kind}, not a regular file", file=str(path),
                           hint=f"point {ENV_KEY_FILE} (or the key directory entry) at a key file made by "
                                "`stackctl secrets keygen`")
    if st.st_mode & 0o077:
        raise SecretsError(
            f"refusing a private key file readable by others (mode {stat.S_IMODE(st.st_mode):04o})",
            file=str(path), hint=f"run `chmod 600 {path}`")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretsError(f"cannot read key file: {type(exc).__name__}", file=str(path)) from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) != 1:
        raise SecretsError(f"expected one {PRIVATE_PREFIX}... line", file=str(path))
    return Identity(name=path.stem, private=parse_private(lines[0], source=str(path)), source=str(path))


def _check_keys_dir(directory: Path) -> None:
    """A key directory others can write to lets them swap or plant a key: refused, with the fix."""
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o022:
        raise SecretsError(f"refusing keys from a directory writable by group or others (mode {mode:04o})",
                           file=str(directory), hint=f"run `chmod 700 {directory}`")


def identities() -> Identities:
    """Every private key available to this process: env var(s) first, then the key directory.

    `$STACKCTL_SECRET_KEY` and `$STACKCTL_SECRET_KEY_FILE` are asked for by name: a bad one is an error at
    once. A bad file in the key directory is kept in `problems` (see `Identities`)."""
    found: list[Identity] = []
    problems: list[SecretsError] = []
    env = os.environ.get(ENV_KEY, "")
    for i, token in enumerate(t for t in re.split(r"[\s,]+", env) if t):
        found.append(Identity(name=f"{ENV_KEY}[{i}]" if i else ENV_KEY,
                              private=parse_private(token, source=f"${ENV_KEY}"), source=f"${ENV_KEY}"))
    env_file = os.environ.get(ENV_KEY_FILE)
    if env_file:
        found.append(load_key_file(Path(env_file)))
    directory = keys_dir()
    if directory.is_dir():
        paths = sorted(directory.glob("*.key"))
        try:
            if paths:
                _check_keys_dir(directory)
        except SecretsError as exc:
            problems.append(exc)
            paths = []
        for path in paths:
            try:
                found.append(load_key_file(path))
            except SecretsError as exc:
                problems.append(exc)
    return Identities(found, problems)


def default_identity() -> Identity | None:
    """The key `secrets init` enrols: the env var, else `default.key`, else the only key file."""
    ids = identities()
    if not ids:
        if ids.problems:  # a key is there but unusable: say why rather than make another one
            raise ids.problems[0]
        return None
    if ids[0].source.startswith("$"):
        return ids[0]
    for ident in ids:
        if ident.source.endswith("/default.key"):
            return ident
    return ids[0]
