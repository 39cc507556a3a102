"""The objects that make a GitOps controller apply a profile's overlay: an Argo CD `Application`, or a
Flux `GitRepository` + `Kustomization` (with SOPS decryption when the profile's Secrets are SOPS files).

They live beside the overlays (`clusters/<profile>/`), not in them: an overlay is exactly the
profile's stack, and these are applied once, into the controller's namespace, by whoever sets it up.
"""

from __future__ import annotations

from typing import Any

from stackctl.kubernetes.names import dns_label
from stackctl.profile.types import ArgoCDApp, FluxSync


def _name(stack: str, profile: str) -> str:
    return dns_label(f"{stack}-{profile}") or profile


def argocd_application(app: ArgoCDApp, *, stack: str, profile: str, namespace: str, path: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "project": app.project,
        "source": {"repoURL": app.repo, "targetRevision": app.revision, "path": app.path or path},
        "destination": {"server": app.server, "namespace": namespace},
    }
    if app.automated:
        spec["syncPolicy"] = {"automated": {"prune": True, "selfHeal": True}}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": _name(stack, profile), "namespace": app.namespace}, "spec": spec}


def flux_objects(flux: FluxSync, *, stack: str, profile: str, path: str,
                 sops: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    name = _name(stack, profile)
    repo = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": name, "namespace": flux.namespace},
            "spec": {"interval": flux.interval, "url": flux.repo, "ref": {"branch": flux.branch}}}
    spec: dict[str, Any] = {"interval": flux.interval, "path": f"./{flux.path or path}", "prune": True,
                            "sourceRef": {"kind": "GitRepository", "name": name}}
    if sops:
        spec["decryption"] = {"provider": "sops", "secretRef": {"name": flux.decryption_secret}}
    kustomization = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                     "metadata": {"name": name, "namespace": flux.namespace}, "spec": spec}
    return repo, kustomization
