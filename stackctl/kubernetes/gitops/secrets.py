"""A profile's Secrets as files that are safe to commit: SOPS-encrypted, SealedSecret or ExternalSecret.

The plaintext Secret objects only live in memory. SOPS and SealedSecret encryption is randomised (a
new data key, a new nonce every time): a file whose Secret did not change is kept byte for byte, so
a Git diff shows only the Secrets that really changed. What tells "did not change" is a salted scrypt
digest of the Secret and the provider's parameters, recorded in the layout's marker file: it reveals
no value (a slow, salted hash, not a checksum an attacker can run a dictionary through cheaply).
"""

from __future__ import annotations

import hashlib
import json
import secrets as random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stackctl.errors import InputError, ProfileError
from stackctl.kubernetes.labels import A_VALUES
from stackctl.profile.types import Profile, SecretProvider

SCRYPT_N = 2**14  # ~15 ms a digest here: a few Secrets per render, and slow enough for a guesser


@dataclass(frozen=True)
class Sealed:
    """One provider file: its path under the overlay, its text, and its digest record (for sops and
    sealed-secrets; None for ExternalSecret, which holds no value and is rewritten deterministically)."""

    path: str
    text: str
    record: dict[str, str] | None = None


def digest(secret: Mapping[str, Any], params: Mapping[str, Any], salt: str) -> str:
    canonical = json.dumps({"secret": secret, "provider": params}, sort_keys=True, ensure_ascii=False)
    return hashlib.scrypt(canonical.encode("utf-8"), salt=bytes.fromhex(salt), n=SCRYPT_N, r=8, p=1,
                          dklen=32).hex()


def params(profile: Profile, provider: SecretProvider) -> dict[str, Any]:
    """What, besides the Secret, decides the encrypted file: a new recipient or certificate re-encrypts."""
    if provider.provider == "sops":
        return {"provider": "sops", "recipients": list(provider.recipients)}
    return {"provider": "sealed-secrets", "scope": provider.scope,
            "cert": hashlib.sha256(cert_pem(profile, provider)).hexdigest()}


def cert_pem(profile: Profile, provider: SecretProvider) -> bytes:
    assert provider.cert is not None
    try:
        data = provider.cert.read_bytes()
    except OSError as exc:
        raise ProfileError(f"cannot read the sealed-secrets certificate {provider.cert_display}: "
                           f"{exc.strerror or exc}", file=profile.display_path, field="gitops.secrets.cert",
                           hint="`kubeseal --fetch-cert > FILE` writes the controller's certificate") from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ProfileError(f"{provider.cert_display} is not a PEM certificate", file=profile.display_path,
                           field="gitops.secrets.cert",
                           hint="`kubeseal --fetch-cert > FILE` writes the controller's certificate")
    return data


def seal(profile: Profile, provider: SecretProvider, secret: dict[str, Any], *, stack: str,
         previous: Mapping[str, str] | None, previous_text: str | None,
         warn: Callable[[str], None]) -> Sealed:
    """The Secret as the provider's file; the previous file's text kept when the digest still matches.
    A problem with the recipients or the certificate is an error naming the profile's field."""
    from stackctl.kubernetes.write import to_yaml

    path = seal_path(provider.provider, secret["metadata"]["name"])
    if provider.provider == "external-secrets":
        return Sealed(path, to_yaml(external_secret(profile, provider, secret, stack=stack)))
    from stackctl.secrets import sealing

    p = params(profile, provider)
    if previous is not None and previous_text is not None and "salt" in previous \
            and digest(secret, p, previous["salt"]) == previous.get("digest"):
        return Sealed(path, previous_text, dict(previous))
    salt = random.token_hex(16)
    try:
        if provider.provider == "sops":
            text = sealing.sops_encrypt(secret, provider.recipients, source=profile.display_path)
        else:
            text = to_yaml(sealing.sealed_secret(secret, cert_pem(profile, provider), scope=provider.scope,
                                                 source=profile.display_path,
                                                 warn=lambda message: warn(f"gitops.secrets.cert: {message}")))
    except InputError as exc:
        if exc.field not in ("recipients", "cert", "scope"):
            raise
        raise ProfileError(exc.message, file=profile.display_path, field=f"gitops.secrets.{exc.field}",
                           hint=exc.hint) from None
    return Sealed(path, text, {"salt": salt, "digest": digest(secret, p, salt)})


def seal_path(provider: str, name: str) -> str:
    """The provider file of Secret `name`, relative to its overlay."""
    from stackctl.kubernetes.gitops.layout import file_stem

    if provider == "sops":
        return f"secrets/{name}.sops.yaml"
    kind = "ExternalSecret" if provider == "external-secrets" else "SealedSecret"
    return f"secrets/{file_stem(kind, name)}.yaml"


def external_secret(profile: Profile, provider: SecretProvider, secret: Mapping[str, Any], *,
                    stack: str) -> dict[str, Any]:
    """An ExternalSecret whose target is the Secret the workloads reference: same name, same keys, same
    labels and annotations; each key read from the user's store at the profile's key pattern."""
    meta = secret["metadata"]
    name, namespace = meta["name"], meta.get("namespace", "")
    fields = {"stack": stack, "profile": profile.name,
              "namespace": namespace, "secret": name}
    keys = sorted({*(secret.get("data") or {}), *(secret.get("stringData") or {})})
    data = []
    for key in keys:
        ref: dict[str, str] = {"key": provider.key.format(**fields, key=key)}
        if provider.property is not None:
            ref["property"] = provider.property.format(**fields, key=key)
        data.append({"secretKey": key, "remoteRef": ref})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != A_VALUES}
    template_meta: dict[str, Any] = {}
    if meta.get("labels"):
        template_meta["labels"] = dict(meta["labels"])
    if annotations:
        template_meta["annotations"] = annotations
    template: dict[str, Any] = {"type": secret.get("type", "Opaque")}
    if template_meta:
        template["metadata"] = template_meta
    out_meta: dict[str, Any] = {"name": name}
    if namespace:
        out_meta["namespace"] = namespace
    if meta.get("labels"):
        out_meta["labels"] = dict(meta["labels"])
    return {
        "apiVersion": provider.api_version,
        "kind": "ExternalSecret",
        "metadata": out_meta,
        "spec": {
            "refreshInterval": provider.refresh_interval,
            "secretStoreRef": {"name": provider.store, "kind": provider.store_kind},
            "target": {"name": name, "creationPolicy": "Owner", "template": template},
            "data": data,
        },
    }
