"""Secret manifests that are safe to commit: SOPS (age recipients) and Bitnami SealedSecret.

Interface shared by `render gitops` (the caller) and this module (the encryption). Both work on a plain
v1 Secret object (a dict with `metadata.name`, `metadata.namespace` and `stringData` or base64 `data`)
that never leaves memory; what they return holds no plaintext value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def sops_encrypt(secret: Mapping[str, Any], recipients: Sequence[str]) -> str:
    """The Secret as a SOPS-encrypted YAML document (AES256-GCM values, data key to each age recipient
    `age1...`), which `sops --decrypt` turns back into `secret`."""
    raise NotImplementedError


def sealed_secret(secret: Mapping[str, Any], cert_pem: bytes, *, scope: str = "strict") -> dict[str, Any]:
    """The Secret as a `bitnami.com/v1alpha1` SealedSecret encrypted to the controller's certificate;
    `scope` is strict (name+namespace bound), namespace-wide or cluster-wide, as kubeseal's --scope."""
    raise NotImplementedError
