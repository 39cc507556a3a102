"""What the Kubernetes renderer takes besides the stack model: plain, typed, immutable inputs.

The renderer reads no file, no store and no environment; `stackctl.kubernetes.gather` collects
these from the profile, the secrets store and the disk, and tests build them by hand.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from stackctl.profile.types import KubernetesSettings, Profile, ServiceOverride


@dataclass(frozen=True)
class Target:
    """The profile's Kubernetes side: where to render for and the per-service settings."""

    profile: str  # profile name: part of every object's identity labels
    profile_file: str  # the profile as errors show it (`profiles/production.yaml`)
    kubernetes: KubernetesSettings
    services: Mapping[str, ServiceOverride] = field(default_factory=dict)
    defaults: ServiceOverride = field(default_factory=ServiceOverride)

    @classmethod
    def from_profile(cls, profile: Profile, *, stack: str | None = None) -> Target:
        kube = profile.kubernetes
        if kube is None:
            # A profile without a `kubernetes:` section still renders (to try it out): the
            # namespace is named after the stack.
            base = re.sub(r"[^a-z0-9-]+", "-", (stack or profile.stack or profile.name).lower()).strip("-")
            kube = KubernetesSettings(namespace=base[:63].rstrip("-") or "default")
        return cls(profile=profile.name, profile_file=profile.display_path, kubernetes=kube,
                   services=dict(profile.services), defaults=profile.defaults)


@dataclass(frozen=True)
class SecretInputs:
    """Which environment values are secret, and (only when writing for apply) what they are.

    `keys`: variables annotated `@secret` in `.env.example`.
    `digests`: per key, the store's digest of the current version: it names the value without
    revealing anything, so checksum annotations can be printed safely.
    `values`: None renders every Secret with empty values (safe to print; the default). A mapping
    (decrypted from the store) fills them; a key missing from it falls back to the value Compose
    resolved.
    `templates`: (service, VARIABLE) → the value as written in the Compose file (`${DB_PASSWORD}`,
    `postgres://app:${DB_PASSWORD}@db/app`), so a value that only embeds a secret is found too.
    """

    keys: frozenset[str] = frozenset()
    digests: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, str] | None = None
    templates: Mapping[tuple[str, str], str] = field(default_factory=dict)


HostKind = Literal["file", "dir", "host", "missing", "too_large"]


@dataclass(frozen=True)
class HostPath:
    """What a bind-mount source (or a Compose secret/config `file:`) is on disk.

    `file`/`dir`: inside the project, with its content (`files`: relative path → bytes; a file has
    the single key ""). `host`: a path outside the project (a socket, /var/log, /proc): only a
    DaemonSet can mount it, as hostPath. `missing` and `too_large` carry a `reason`.
    `secret`: an env file (`./.env:/app/.env:ro`): mounted from a Secret, its content being the
    profile's own env as `env render` would write it (markers unless values were asked for).
    `modes`: the permission bits of each file in `files` (same keys; a missing key is 0644), so a
    mounted script keeps its executable bit.
    `source_tree`: a `too_large` directory that holds `.git`/`node_modules`/...: code to build into
    the image, not data the service writes.
    """

    kind: HostKind
    display: str  # as warnings show it: relative to the project root when inside it
    files: Mapping[str, bytes] = field(default_factory=dict)
    reason: str | None = None
    secret: bool = False
    modes: Mapping[str, int] = field(default_factory=dict)
    source_tree: bool = False
