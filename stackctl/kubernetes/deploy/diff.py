"""`promote --diff` and what `rollback` shows before it asks: every object against the live cluster,
as a server-side dry run would leave it, plus the objects prune would delete; Secret values masked."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from stackctl.kubernetes.apply import normalized
from stackctl.kubernetes.client import Cluster, Ref
from stackctl.kubernetes.deploy import argo, bluegreen, canary
from stackctl.kubernetes.deploy import history as kh
from stackctl.kubernetes.deploy.deployer import Deployer, Options
from stackctl.kubernetes.deploy.prune import select
from stackctl.kubernetes.write import to_yaml


def _masked(obj: Mapping[str, Any] | None, other: Mapping[str, Any] | None) -> Any:
    """A Secret with its values hidden: `***` where both sides agree, `*** (changed)` where not."""
    if obj is None or obj.get("kind") != "Secret":
        return obj
    out = dict(obj)
    mine = obj.get("data") or {}
    theirs = (other or {}).get("data") or {}
    out["data"] = {k: ("***" if theirs.get(k) == v else "*** (changed)") for k, v in sorted(mine.items())}
    out.pop("stringData", None)
    return out


def _yaml(obj: Any) -> list[str]:
    if obj is None:
        return []
    return to_yaml(obj).splitlines(keepends=True)


def diff(cluster: Cluster, release: kh.Release, objects: Sequence[Mapping[str, Any]], *, prune: bool = True,
         force_conflicts: bool = False, label: str = "promote") -> tuple[list[str], int]:
    """Unified diffs of every object against the live cluster (a server-side dry run), the objects
    prune would delete included; `label` names the new side (`promote/Deployment/web`). Returns
    (diff lines, number of objects that differ)."""
    desired = [kh.member(o, release) for o in objects]
    exists = cluster.namespace_exists(release.namespace)
    deployer = Deployer(cluster, release, options=Options(dry_run=True, force_conflicts=force_conflicts))
    try:
        live, members = deployer.snapshot(desired, kh.parent_group_kinds(kh.read_parent(cluster, release))) \
            if exists else ({}, {})
        bg = bluegreen.plan(desired, live)
        desired = canary.plan(bg.objects, live).objects  # a canary's stable Deployment: its final state

        def after_of(obj: dict[str, Any]) -> dict[str, Any]:
            if obj["kind"] != "Namespace" and not exists:
                return obj
            return cluster.apply(argo.for_live(obj, live.get(Ref.of(obj).key)), force=force_conflicts, dry_run=True)

        afters = list(deployer.pool.map(after_of, desired))
    finally:
        deployer.close()
    out: list[str] = []
    differ = 0
    for obj, after in zip(desired, afters, strict=True):
        ref = Ref.of(obj)
        before = live.get(ref.key) if ref.kind != "Namespace" else (cluster.get(ref) if exists else None)
        a, b = normalized(before), normalized(after)
        if a == b:
            continue
        differ += 1
        name = f"{ref.kind}/{ref.name}" + (f" -n {ref.namespace}" if ref.namespace else "")
        out += difflib.unified_diff(_yaml(_masked(a, b)), _yaml(_masked(b, a)), fromfile=f"live/{name}",
                                    tofile=f"{label}/{name}")
    # what promote would prune, chosen by the same rule (never a Namespace, nor a protected object)
    pruned, _ = select(members, {Ref.of(o).key for o in desired} | set(bg.keep), prune=prune)
    for ref in pruned:
        differ += 1
        out += difflib.unified_diff(_yaml(_masked(normalized(members[ref.key]), None)), [],
                                    fromfile=f"live/{ref.kind}/{ref.name}", tofile="/dev/null (pruned)")
    return out, differ
