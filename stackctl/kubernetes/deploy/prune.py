"""Prune: delete the objects of a stack's ApplySet that the new set no longer has.

Apart from apply, as kubectl keeps it (`kubectl apply --prune --applyset`): the members are the
live objects labelled `applyset.kubernetes.io/part-of=<the stack's ApplySet id>`, listed by the
kinds the ApplySet parent records (`history.read_parent`). A Namespace is never deleted, nor an
object annotated `stackctl.io/prune: "false"` (PersistentVolumeClaims: data); with `--no-prune`
nothing is, except what an `--atomic` rollback must take back (`extra_delete`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from stackctl.kubernetes.client import Cluster, Ref
from stackctl.kubernetes.labels import A_PRUNE

Key = tuple[str, str, str]  # `Ref.key`


def protected(obj: Mapping[str, Any]) -> bool:
    """Whether the object asks never to be pruned (`stackctl.io/prune: "false"`)."""
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(A_PRUNE) == "false"


def select(members: Mapping[Key, Mapping[str, Any]], keep: Collection[Key], *, prune: bool,
           extra_delete: Collection[Key] = ()) -> tuple[list[Ref], list[Ref]]:
    """(the members to delete, the members kept although the new set lacks them), in key order."""
    deleted: list[Ref] = []
    kept: list[Ref] = []
    for key, obj in sorted(members.items()):
        if key in keep:
            continue
        ref = Ref.of(obj)
        if ref.kind == "Namespace" or protected(obj) or not (prune or key in extra_delete):
            kept.append(ref)
        else:
            deleted.append(ref)
    return deleted, kept


def delete(cluster: Cluster, refs: Sequence[Ref], *, pool: ThreadPoolExecutor, dry_run: bool = False) -> None:
    """Delete `refs` in parallel (dependents in the background); those already gone are fine."""
    list(pool.map(lambda r: cluster.delete(r, dry_run=dry_run), refs))
