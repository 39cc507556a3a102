"""Canary at promote time, natively: a stable and a canary Deployment behind one Service.

The renderer emits the stable Deployment (`<svc>`, selector and pods labelled `stackctl.io/track:
stable`) and its steps (`stackctl.io/canary-steps: "10:30,50:30"`, weight:pause seconds); the
Service selects the service's pods whatever their track. When the stable Deployment runs another
spec than the one rendered (`stackctl.io/template-hash`), promote holds it back and, step by step,
applies `<svc>-canary` (the new spec, track `canary`) with the replicas that give the step's weight
beside the unchanged stable replicas, waits until it is ready and keeps it ready through the pause.
After the last step the stable Deployment rolls to the new spec and the canary is deleted. A canary
that fails or stops being ready ends the promote (diagnosed) and is deleted: the stable version never
changed. `stackctl promote --abort` deletes the canaries of a stack the same way.

The functions here are pure apart from `abort`, which deletes through `Cluster`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stackctl.kubernetes.client import Cluster, Ref
from stackctl.kubernetes.deploy import history as kh
from stackctl.kubernetes.deploy.bluegreen import template_hash
from stackctl.kubernetes.labels import (
    A_CANARY_STEPS,
    A_TEMPLATE_HASH,
    L_APPLYSET_PART_OF,
    L_TRACK,
)

Key = tuple[str, str, str]


@dataclass(frozen=True)
class Step:
    weight: int
    pause: int


@dataclass
class Canary:
    """One canary service: the stable Deployment to apply at the end, and the steps before it."""

    stable: dict[str, Any]
    steps: tuple[Step, ...]

    @property
    def name(self) -> str:
        return f"{self.stable['metadata']['name']}-canary"

    @property
    def replicas(self) -> int:
        return int(self.stable["spec"].get("replicas", 1))

    def canary_replicas(self, step: Step) -> int:
        """Replicas beside the stable ones so that the canary's share of pods is about `step.weight`."""
        n = self.replicas
        return max(1, math.ceil(n * step.weight / (100 - step.weight) - 1e-9)) if n else 0

    def canary(self, step: Step) -> dict[str, Any]:
        """The canary Deployment for `step`: the new spec, track `canary`, not a stack member's wave."""
        out = copy.deepcopy(self.stable)
        meta = out["metadata"]
        meta["name"] = self.name
        meta["labels"] = {**meta.get("labels", {}), L_TRACK: "canary"}
        meta["annotations"] = {k: v for k, v in meta.get("annotations", {}).items() if k != A_CANARY_STEPS}
        out["spec"]["replicas"] = self.canary_replicas(step)
        out["spec"]["selector"]["matchLabels"][L_TRACK] = "canary"
        out["spec"]["template"]["metadata"]["labels"][L_TRACK] = "canary"
        return out


@dataclass
class CanaryPlan:
    objects: list[dict[str, Any]]  # everything to record, stable Deployments with their template hash
    held: set[Key] = field(default_factory=set)  # stable Deployments applied only after their steps
    canaries: list[Canary] = field(default_factory=list)


def steps_of(obj: Mapping[str, Any]) -> tuple[Step, ...] | None:
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(A_CANARY_STEPS)
    if obj.get("kind") != "Deployment" or not text:
        return None
    out = []
    for part in text.split(","):
        weight, _, pause = part.partition(":")
        out.append(Step(weight=int(weight), pause=int(pause or 0)))
    return tuple(out)


def plan(desired: Sequence[dict[str, Any]], live: Mapping[Key, Mapping[str, Any]]) -> CanaryPlan:
    out = CanaryPlan(objects=list(desired))
    for i, obj in enumerate(desired):
        steps = steps_of(obj)
        if steps is None:
            continue
        stamped = copy.deepcopy(obj)
        meta = stamped["metadata"]
        meta["annotations"] = dict(sorted({**meta.get("annotations", {}), A_TEMPLATE_HASH: template_hash(obj)}.items()))
        out.objects[i] = stamped
        running = live.get(Ref.of(obj).key)
        if running is None:  # first promote: nothing to compare the new version with
            continue
        if ((running.get("metadata") or {}).get("annotations") or {}).get(A_TEMPLATE_HASH) == template_hash(obj):
            continue  # unchanged, or only scaled
        out.held.add(Ref.of(obj).key)
        out.canaries.append(Canary(stable=stamped, steps=steps))
    return out


def abort(cluster: Cluster, release: kh.Release) -> list[Ref]:
    """Delete the stack's canary Deployments (the stable ones were never changed); what was deleted."""
    kind = cluster.kind_of({"apiVersion": "apps/v1", "kind": "Deployment"})
    items, _ = cluster.list(kind, release.namespace,
                            selector=f"{L_TRACK}=canary,{L_APPLYSET_PART_OF}={release.applyset_id}")
    refs = [Ref(kind="Deployment", name=o["metadata"]["name"], namespace=release.namespace, api_version="apps/v1")
            for o in items]
    for ref in refs:
        cluster.delete(ref)
    return refs
