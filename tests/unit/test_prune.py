"""Which ApplySet members prune deletes (deploy/prune.select): what the new set lacks, except a
Namespace, an object annotated `stackctl.io/prune: "false"`, and everything under --no-prune but
what an --atomic rollback takes back."""

from __future__ import annotations

from typing import Any

from stackctl.kubernetes.client import Ref
from stackctl.kubernetes.deploy import prune
from stackctl.kubernetes.labels import A_PRUNE


def obj(kind: str, name: str, *, keep: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "" if kind == "Namespace" else "shop"}
    if keep:
        meta["annotations"] = {A_PRUNE: "false"}
    return {"apiVersion": "apps/v1" if kind == "Deployment" else "v1", "kind": kind, "metadata": meta}


MEMBERS = {Ref.of(o).key: o for o in [obj("Deployment", "old"), obj("Deployment", "web"), obj("Namespace", "shop"),
                                      obj("PersistentVolumeClaim", "data", keep=True), obj("Service", "old")]}
WEB = Ref.of(obj("Deployment", "web")).key


def names(refs: list[Ref]) -> list[str]:
    return [str(r) for r in refs]


def test_what_the_new_set_lacks_is_deleted_but_namespaces_and_claims_are_kept() -> None:
    deleted, kept = prune.select(MEMBERS, {WEB}, prune=True)
    assert names(deleted) == ["Deployment/old", "Service/old"]
    assert names(kept) == ["Namespace/shop", "PersistentVolumeClaim/data"]


def test_no_prune_keeps_everything_but_what_an_atomic_rollback_takes_back() -> None:
    old_service = Ref.of(obj("Service", "old")).key
    deleted, kept = prune.select(MEMBERS, {WEB}, prune=False, extra_delete={old_service})
    assert names(deleted) == ["Service/old"]
    assert names(kept) == ["Deployment/old", "Namespace/shop", "PersistentVolumeClaim/data"]
