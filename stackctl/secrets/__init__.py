"""Secrets: the `.env.example` template, the encrypted per-profile store, generation and rotation.

User documentation: docs/secrets.md. Modules:

    template    `.env.example` + annotations (`# @secret hex:32`, `@optional`, `@public KEY`)
    generators  generator specs (`hex:N`, `password:N`, `ed25519`, `rsa:N`, ...)
    keys        X25519 identities (key files under $XDG_CONFIG_HOME/stackctl/keys, STACKCTL_SECRET_KEY)
    store       the encrypted file format, AEAD, recipients, MAC, locked atomic transactions, rekey
    ops         what each `stackctl secrets` command does
    envfile     `env render` / `env check`
    usage       which Compose services use which keys

API for the rest of stackctl (`up`, the Kubernetes renderer). Every function takes a loaded `Profile`;
none prints, and no error message contains a value.

    secret_keys(profile) -> frozenset[str]
        Keys the template marks `@secret` (Kubernetes: these go to a Secret; the rest to a ConfigMap).
    secret_values(profile) -> dict[str, str]
        Current plaintext of every stored secret plus the derived `@public` keys. Needs a private key
        (SecretsError exit 1 naming the store and the recipients otherwise); verifies the file MAC.
    env_values(profile) -> dict[str, str]
        The whole env as `stackctl env render` would write it and Compose would read it (template +
        env file + profile env.values + store), without writing anything.
    open_store(profile, need_key=True) -> SecretStore
        The store itself (`.names`, `.value(name, version)`, `.entry(name)`, `.digest(name)`).
    digests(profile, keys=None) -> dict[str, str]
        Per-key digest of the current version (`@public` keys: their source's). Changes exactly when
        the value is rotated / set / rolled back, not on `rekey`; reveals nothing about the value and
        needs no private key (it hashes the version's random id), so CI can render manifests without one.
    checksum(profile, keys) -> str
        One sha256 over the digests of `keys` — the `checksum/secrets` pod-template annotation.
    services_using(profile, keys) -> dict[str, frozenset[str]]
        For each key, the Compose services that use it (interpolation in `services.<svc>.*`, through
        anchors too; `env_file:` of the rendered env file; keys whose values refer to it; derived
        public keys) — what `up` recreates after a rotation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackctl.profile.types import Profile
    from stackctl.secrets.store import SecretStore

__all__ = ["checksum", "digests", "env_values", "open_store", "secret_keys", "secret_values", "services_using"]


def secret_keys(profile: Profile) -> frozenset[str]:
    from stackctl.secrets import ops

    template = ops.template_if_any(profile)
    return template.secret_names if template is not None else frozenset()


def open_store(profile: Profile, *, need_key: bool = True) -> SecretStore:
    from stackctl.secrets import ops

    return ops.open_store(profile, need_key=need_key)


def secret_values(profile: Profile) -> dict[str, str]:
    from stackctl.secrets import ops
    from stackctl.secrets.generators import public_pem

    values = open_store(profile).values()
    template = ops.template_if_any(profile)
    for key in (template.public_keys if template else []):
        if key.public_of in values:
            values[key.name] = public_pem(values[key.public_of])
    return values


def env_values(profile: Profile) -> dict[str, str]:
    from stackctl import dotenv
    from stackctl.errors import SecretsError
    from stackctl.secrets import envfile

    src = envfile._read_sources(profile, need_secrets=True)
    plan = envfile.plan(profile, src)
    if plan.missing:
        raise SecretsError(f"no value for required {', '.join(plan.missing)}",
                           hint=f"run `stackctl env check -p {profile.name}`")
    return dotenv.parse(plan.text, filename=str(profile.env.file))


def digests(profile: Profile, keys: Iterable[str] | None = None) -> dict[str, str]:
    from stackctl.secrets import ops

    store = open_store(profile, need_key=False) if profile.secrets.store.exists() else None
    template = ops.template_if_any(profile)
    source = {k.name: k.public_of for k in (template.public_keys if template else []) if k.public_of}
    wanted = list(keys) if keys is not None else [*(store.names if store else []), *source]
    out: dict[str, str] = {}
    for name in wanted:
        real = source.get(name, name)
        if store is not None and real in store:
            out[name] = store.digest(real)
    return out


def checksum(profile: Profile, keys: Iterable[str]) -> str:
    names = sorted(set(keys))
    found = digests(profile, names)
    text = "".join(f"{k}={found.get(k, '-')}\n" for k in names)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def services_using(profile: Profile, keys: Iterable[str]) -> dict[str, frozenset[str]]:
    from stackctl.secrets.usage import services_using as _using

    return _using(profile, keys)
