"""Secrets: the `.env.example` template, the encrypted per-profile store, generation and rotation.

User documentation: docs/secrets.md. Modules:

    template    `.env.example` + annotations (`# @secret hex:32`, `@optional`, `@public KEY`)
    generators  generator specs (`hex:N`, `password:N`, `ed25519`, `rsa:N`, ...)
    keys        X25519 identities (key files under $XDG_CONFIG_HOME/stackctl/keys, STACKCTL_SECRET_KEY)
    store       the encrypted file format, AEAD, recipients, MAC, locked atomic transactions, rekey
    ops         what each `stackctl secrets` command does
    envfile     `env render` / `env check`; `in_memory`: that env, never written (config, render)
    mask        `<secret:NAME>`: what a secret looks like where its value was not asked for
    usage       which Compose services use which keys

API for the rest of stackctl (`up`, `promote`, `stackctl secrets`). Every function takes a loaded
`Profile`; none prints, and no error message contains a value.

    secret_values(profile) -> dict[str, str]
        Current plaintext of every stored secret plus the derived `@public` keys. Needs a private key
        (SecretsError exit 1 naming the store and the recipients otherwise); verifies the file MAC.
    env_values(profile) -> dict[str, str]
        The whole env as `stackctl env render` would write it and Compose would read it (template +
        env file + profile env.values + store), without writing anything.
    open_store(profile, need_key=True) -> SecretStore
        The store itself (`.names`, `.value(name, version)`, `.entry(name)`, `.digest(name)`). A
        digest names the current version (it hashes the version's random id): it changes when the
        value is rotated / set / rolled back, not on `rekey`, reveals nothing about the value and
        needs no private key — the Kubernetes renderer's `stackctl.io/secret-hash` is built on it
        (stackctl/kubernetes/gather.py), so CI can render manifests without a key.
    services_using(profile, keys) -> dict[str, frozenset[str]]
        For each key, the Compose services that use it (interpolation in `services.<svc>.*`, through
        anchors too; `env_file:` of the rendered env file; keys whose values refer to it; derived
        public keys) — what `stackctl secrets rotate` reports as affected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackctl.profile.types import Profile
    from stackctl.secrets.store import SecretStore

__all__ = ["env_values", "open_store", "secret_values", "services_using"]


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


def env_values(profile: Profile, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """`overrides`: secret values used instead of the store's (a preview's own generated ones), so
    values that embed them (`postgres://app:${DB_PASSWORD}@db`) follow too."""
    import dataclasses

    from stackctl.compose import dotenv
    from stackctl.errors import SecretsError
    from stackctl.secrets import envfile

    src = envfile._read_sources(profile, need_secrets=True)
    if overrides:
        src = dataclasses.replace(src, store_values={**(src.store_values or {}), **overrides})
    plan = envfile.plan(profile, src)
    if plan.missing:
        raise SecretsError(f"no value for required {', '.join(plan.missing)}",
                           hint=f"run `stackctl env check -p {profile.name}`")
    return dotenv.parse(plan.text, filename=str(profile.env.file))


def services_using(profile: Profile, keys: Iterable[str]) -> dict[str, frozenset[str]]:
    from stackctl.secrets.usage import services_using as _using

    return _using(profile, keys)
