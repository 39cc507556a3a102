"""Server-side apply of many objects, in a safe order.

Each object goes through `Cluster.apply` (`PATCH ... application/apply-patch+yaml`, field manager
`stackctl`, strict field validation); a field owned by another manager is a conflict, reported
with who owns it, unless `force` (`--force-conflicts`). `phases()` gives the safe order: Namespace
→ Secrets and ConfigMaps → PersistentVolumeClaims → Services → workloads wave by wave (the Jobs a
wave waits for are applied first and must complete) → HPA/PDB/Ingress/NetworkPolicy.
`apply_objects()` applies one phase in parallel and says what each apply did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from stackctl.errors import OperationError
from stackctl.kubernetes.client import Cluster, ConflictError, Ref
from stackctl.kubernetes.labels import A_WAIT, A_WAVE, CONFIG_KINDS, WORKLOAD_KINDS


@dataclass
class Phase:
    """Objects applied together (in parallel); `await_jobs` must complete before the next phase."""

    name: str
    objects: list[dict[str, Any]] = field(default_factory=list)
    await_jobs: list[Ref] = field(default_factory=list)


def _wave(obj: Mapping[str, Any]) -> int:
    try:
        return int((obj.get("metadata", {}).get("annotations") or {}).get(A_WAVE, "0"))
    except ValueError:
        return 0


def phases(objects: Iterable[dict[str, Any]]) -> list[Phase]:
    """The safe apply order (see the module docstring); within a phase, the input order is kept."""
    fixed = {"Namespace": 0, **{k: 1 for k in CONFIG_KINDS}, "PersistentVolumeClaim": 2, "Service": 3}
    early: dict[int, Phase] = {0: Phase("namespace"), 1: Phase("config"), 2: Phase("volumes"), 3: Phase("services")}
    waves: dict[int, Phase] = {}
    late = Phase("policies")
    for obj in objects:
        kind = obj["kind"]
        if kind in fixed:
            early[fixed[kind]].objects.append(obj)
        elif kind in WORKLOAD_KINDS:
            wave = _wave(obj)
            phase = waves.setdefault(wave, Phase(f"workloads-{wave}"))
            phase.objects.append(obj)
            if kind == "Job" and (obj["metadata"].get("annotations") or {}).get(A_WAIT) == "complete":
                phase.await_jobs.append(Ref.of(obj))
        else:
            late.objects.append(obj)  # HPA, PDB, Ingress, NetworkPolicy and kinds stackctl does not know
    ordered = [early[i] for i in sorted(early)] + [waves[w] for w in sorted(waves)] + [late]
    for i, phase in enumerate(ordered):  # a wave's awaited Jobs go first within it
        if phase.await_jobs:
            jobs = [o for o in phase.objects if Ref.of(o) in phase.await_jobs]
            phase.objects = jobs + [o for o in phase.objects if Ref.of(o) not in phase.await_jobs]
        ordered[i] = phase
    return [p for p in ordered if p.objects]


# ---------------------------------------------------------------------------------------------
# Applying many objects
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Applied:
    ref: Ref
    action: str  # created | configured | unchanged
    result: dict[str, Any]


def apply_objects(cluster: Cluster, objects: Sequence[dict[str, Any]], live: Mapping[tuple[str, str, str], Any], *,
                  force: bool = False, dry_run: bool = False, pool: ThreadPoolExecutor | None = None,
                  on_applied: Callable[[Applied], None] | None = None) -> list[Applied]:
    """Apply `objects` in parallel (one phase). `live` holds what existed before (by `Ref.key`), to
    say created/configured/unchanged. Every conflict of the phase is reported together."""

    def one(obj: dict[str, Any]) -> Applied:
        ref = Ref.of(obj)
        result = cluster.apply(obj, force=force, dry_run=dry_run)
        before = live.get(ref.key)
        # compared without the resourceVersion: a controller's status update bumps it too
        action = "created" if before is None else ("unchanged" if _same(before, result) else "configured")
        applied = Applied(ref=ref, action=action, result=result)
        if on_applied is not None:
            on_applied(applied)
        return applied

    if pool is None or len(objects) <= 1:
        results: list[Any] = []
        for obj in objects:
            try:
                results.append(one(obj))
            except OperationError as exc:
                results.append(exc)
    else:
        futures = [pool.submit(one, obj) for obj in objects]
        results = []
        for fut in futures:
            try:
                results.append(fut.result())
            except OperationError as exc:
                results.append(exc)
    conflicts = [c for r in results if isinstance(r, ConflictError) for c in r.conflicts]
    if conflicts:
        raise ConflictError(conflicts)
    for r in results:
        if isinstance(r, OperationError):
            raise r
    return results


_VOLATILE_META = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid")


def normalized(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An object as diff and no-op checks compare it: no status, no server bookkeeping."""
    if obj is None:
        return None
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _VOLATILE_META}
    out["metadata"] = meta
    return out


def _same(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    return normalized(before) == normalized(after)
