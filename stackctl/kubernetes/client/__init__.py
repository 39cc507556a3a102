"""The Kubernetes API client: the kubeconfig reader, the HTTPS transport and `Cluster`, the one
object through which stackctl talks to an API server (promote, history, rollback, doctor)."""

from __future__ import annotations

from stackctl.kubernetes.client.cluster import (
    BY_GROUP_KIND,
    KINDS,
    ApiError,
    Cluster,
    ConflictError,
    FieldConflict,
    Kind,
    Ref,
    connect,
    connect_in_background,
)
from stackctl.kubernetes.client.kubeconfig import Contexts, contexts, kubeconfig_path
from stackctl.kubernetes.client.transport import TransportError

__all__ = [
    "BY_GROUP_KIND",
    "KINDS",
    "ApiError",
    "Cluster",
    "ConflictError",
    "Contexts",
    "FieldConflict",
    "Kind",
    "Ref",
    "TransportError",
    "connect",
    "connect_in_background",
    "contexts",
    "kubeconfig_path",
]
