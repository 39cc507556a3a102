"""How a secret looks where its value was not asked for: `<secret:DB_PASSWORD>`.

No command prints a secret's value without `--reveal` (or a flag that writes values on purpose,
such as `render --include-secrets`). Rather than find the values in output after the fact, the
commands that show the resolved stack (`config`, `render` without values) let Compose interpolate
with a marker in place of each secret (`pipeline.load_stack(secrets="masked")`): every place a
secret flows into — a whole variable (`${DB_PASSWORD}`), part of one
(`postgres://app:${DB_PASSWORD}@db/app`), a command, a healthcheck, a label — then shows the
marker and nothing else, and no private key is needed to compute it. A key-pair's derived `@public`
half shows as `<public:SIGNING_KEY>` (not secret, but unknown without the key).
"""

from __future__ import annotations

import re

_MARKER = re.compile(r"<(secret|public):([A-Za-z_][A-Za-z0-9_]*)>")
_SECRET_MARKER = re.compile(r"<secret:[A-Za-z_][A-Za-z0-9_]*>")


def marker(name: str) -> str:
    """What a secret's value is shown as."""
    return f"<secret:{name}>"


def public_marker(name: str) -> str:
    """What the derived public half of the key-pair secret `name` is shown as."""
    return f"<public:{name}>"


def is_masked(value: str) -> bool:
    """True when `value` holds a marker (a secret flows into it)."""
    return _MARKER.search(value) is not None


def holds_secret(value: str) -> bool:
    """True when `value` holds a secret's marker (a derived public key's does not count)."""
    return _SECRET_MARKER.search(value) is not None
