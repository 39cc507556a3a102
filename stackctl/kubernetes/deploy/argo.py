"""Argo Rollouts: the `Rollout` a service becomes with `canary.controller: argo-rollouts` or
`blue_green.controller: argo-rollouts`.

What stackctl needs to know about the kind, and nothing more:

* `SCHEMA`: a strict JSON Schema for the Rollouts stackctl renders, so `render` checks them even
  where the CRD is not installed (written for stackctl from the v1alpha1 API; the pod template,
  selector and metadata reuse the Kubernetes definitions `validate` already loads). Unknown fields
  are errors, as for the built-in kinds;
* `semantic()`: the rules the Argo controller enforces beyond the schema (weights that only grow,
  surge and unavailable not both zero, a selector);
* `status_fields()`: whether a Rollout has rolled out, as the Argo controller reports it
  (`status.phase` Healthy for the current generation; Degraded or aborted is a failure);
* `served()` / `fields()`: promote's pre-flight, a located error when the cluster lacks the kind;
* `for_live()`: the active Service of a blue-green Rollout, once the controller owns its selector;
* `abort()`: `promote --abort` for these services, the `status.abort` flag the Argo CLI sets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from stackctl.kubernetes.client import ApiError, Cluster, Ref
from stackctl.kubernetes.labels import A_SERVICE, ARGO_CONTROLLER_MANAGER

API_VERSION = "argoproj.io/v1alpha1"
KIND = "Rollout"

_DEFS = "https://kubernetes.io/api/_definitions.json#/$defs/"
_INT_OR_PERCENT = {"oneOf": [{"type": "integer", "minimum": 0},
                             {"type": "string", "pattern": r"^(100|[1-9]?[0-9])%$"}]}
_DURATION = {"oneOf": [{"type": "integer", "minimum": 0},
                       {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"}]}
_NAME = {"type": "string", "minLength": 1, "maxLength": 253}


def _strict(properties: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": dict(properties), **extra}


_STEP = _strict({
    "setWeight": {"type": "integer", "minimum": 0, "maximum": 100},
    "pause": _strict({"duration": _DURATION}),
}, minProperties=1, maxProperties=1)
_CANARY = _strict({
    "steps": {"type": "array", "items": _STEP},
    "maxSurge": _INT_OR_PERCENT,
    "maxUnavailable": _INT_OR_PERCENT,
    "stableService": _NAME,
    "canaryService": _NAME,
    "dynamicStableScale": {"type": "boolean"},
    "abortScaleDownDelaySeconds": {"type": "integer", "minimum": 0},
})
_BLUE_GREEN = _strict({
    "activeService": _NAME,
    "previewService": _NAME,
    "autoPromotionEnabled": {"type": "boolean"},
    "autoPromotionSeconds": {"type": "integer", "minimum": 0},
    "scaleDownDelaySeconds": {"type": "integer", "minimum": 0},
    "previewReplicaCount": {"type": "integer", "minimum": 0},
}, required=["activeService"])
SCHEMA: dict[str, Any] = _strict({
    "apiVersion": {"const": API_VERSION},
    "kind": {"const": KIND},
    "metadata": {"$ref": _DEFS + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
    "spec": _strict({
        "replicas": {"type": "integer", "minimum": 0},
        "selector": {"$ref": _DEFS + "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"},
        "template": {"$ref": _DEFS + "io.k8s.api.core.v1.PodTemplateSpec"},
        "minReadySeconds": {"type": "integer", "minimum": 0},
        "revisionHistoryLimit": {"type": "integer", "minimum": 0},
        "progressDeadlineSeconds": {"type": "integer", "minimum": 1},
        "progressDeadlineAbort": {"type": "boolean"},
        "paused": {"type": "boolean"},
        "strategy": _strict({"canary": _CANARY, "blueGreen": _BLUE_GREEN}, minProperties=1, maxProperties=1),
    }, required=["selector", "template", "strategy"]),
    "status": {"type": "object"},
}, required=["apiVersion", "kind", "metadata", "spec"])


def semantic(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(path, message) for what the Argo controller refuses that the schema lets through."""
    out: list[tuple[str, str]] = []
    spec = obj.get("spec") or {}
    strategy = spec.get("strategy") or {}
    canary = strategy.get("canary")
    if isinstance(canary, Mapping):
        if canary.get("maxSurge") in (0, "0%") and canary.get("maxUnavailable") in (0, "0%"):
            out.append(("spec.strategy.canary", "maxSurge and maxUnavailable cannot both be 0"))
        last = -1
        for i, step in enumerate(canary.get("steps") or []):
            weight = step.get("setWeight") if isinstance(step, Mapping) else None
            if isinstance(weight, int):
                if weight < last:
                    out.append((f"spec.strategy.canary.steps[{i}].setWeight",
                                f"{weight} is less than an earlier step's {last} (the canary would shrink)"))
                last = weight
    if not (spec.get("selector") or {}).get("matchLabels") and not (spec.get("selector") or {}).get(
            "matchExpressions"):
        out.append(("spec.selector", "must select the pods (an empty selector would select every pod)"))
    return out


def _steps(obj: Mapping[str, Any]) -> list[Any]:
    return list((((obj.get("spec") or {}).get("strategy") or {}).get("canary") or {}).get("steps") or [])


def pauses(obj: Mapping[str, Any]) -> int:
    """Seconds a Rollout's canary steps pause in total (promote's deadline grows by as much)."""
    return sum(_seconds((step.get("pause") or {}).get("duration")) for step in _steps(obj)
               if isinstance(step, Mapping))


def _seconds(duration: Any) -> int:
    """Whole seconds (rounded up) of a pause duration: an integer of seconds or a Go duration."""
    if isinstance(duration, int):
        return duration
    parts = _GO_DURATION.findall(duration) if isinstance(duration, str) else []
    return math.ceil(sum(float(n) * _UNITS[u] for n, u in parts))


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def status_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The Argo controller's view of one Rollout: done, failed (why), message, counts."""
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    generation = str(int((obj.get("metadata") or {}).get("generation") or 0))
    desired = int(spec.get("replicas", 1))
    updated, ready = int(st.get("updatedReplicas") or 0), int(st.get("readyReplicas") or 0)
    out: dict[str, Any] = {"desired": desired, "updated": updated, "ready": ready, "done": False, "failed": None,
                           "message": ""}
    if str(st.get("observedGeneration") or "") != generation:
        out["message"] = "waiting for the Argo Rollouts controller to see the new spec"
        return out
    phase = str(st.get("phase") or "")
    message = str(st.get("message") or "")
    if st.get("abort"):
        out["failed"] = f"aborted{': ' + message if message else ''}"
        return out
    if phase == "Degraded":
        out["failed"] = message or "Degraded"
        return out
    if phase == "Healthy":
        out["done"] = True
        return out
    total = len(_steps(obj))
    index = st.get("currentStepIndex")
    where = f"step {min(int(index), total)}/{total}" if total and index is not None else ""
    weight = ((st.get("canary") or {}).get("weights") or {}).get("canary", {}).get("weight")
    parts = [p for p in (phase or "waiting for the Argo Rollouts controller", where,
                         f"canary weight {weight}%" if weight is not None else "", message) if p]
    out["message"] = ", ".join(parts)
    return out


def served(cluster: Cluster) -> bool:
    """Whether the cluster serves argoproj.io/v1alpha1 Rollout (Argo Rollouts' CRD is installed)."""
    try:
        listing = cluster.request("GET", f"/apis/{API_VERSION}")
    except ApiError as exc:
        if exc.not_found:
            return False
        raise
    return any(r.get("kind") == KIND and r.get("name") == "rollouts" for r in (listing or {}).get("resources") or [])


def _service(obj: Mapping[str, Any]) -> str:
    """The Compose service a Rollout was rendered for (its `stackctl.io/service` annotation)."""
    return str(((obj.get("metadata") or {}).get("annotations") or {}).get(A_SERVICE)
               or obj["metadata"]["name"])


def services(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """The Compose services rendered as Rollouts."""
    return [_service(o) for o in objects if o.get("kind") == KIND]


def for_live(obj: dict[str, Any], live: Mapping[str, Any] | None) -> dict[str, Any]:
    """What to apply for `obj`, given what is live. The active Service of a blue-green Rollout has a
    selector the Argo controller rewrites (it adds the ReplicaSet's `rollouts-pod-template-hash`) and,
    a selector being one atomic value, then owns whole: applying ours again would either conflict or,
    forced, make the Service select both versions. Once the controller owns it, the Service is
    applied without its selector (the revision still records the full object)."""
    if obj.get("kind") != "Service" or live is None or not _selector_owned_by_argo(live):
        return obj
    return {**obj, "spec": {k: v for k, v in (obj.get("spec") or {}).items() if k != "selector"}}


def _selector_owned_by_argo(live: Mapping[str, Any]) -> bool:
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") != ARGO_CONTROLLER_MANAGER:
            continue
        spec = ((entry.get("fieldsV1") or {}).get("f:spec") or {})
        if "f:selector" in spec:
            return True
    return False


def fields(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """The profile fields that made Rollouts of `objects` (`services.web.canary.controller`)."""
    return [f"services.{_service(o)}.{'blue_green' if 'blueGreen' in o['spec']['strategy'] else 'canary'}.controller"
            for o in objects if o.get("kind") == KIND]


def abort(cluster: Cluster, namespace: str, selector: str) -> list[Ref]:
    """Abort every Rollout of the stack that is not Healthy (the Argo controller then scales its
    canary down and keeps the stable ReplicaSet); the Refs of the Rollouts aborted."""
    kind = cluster.kind(API_VERSION, KIND)
    items, _ = cluster.list(kind, namespace, selector=selector)
    aborted = []
    for obj in items:
        if (obj.get("status") or {}).get("phase") == "Healthy" and status_fields(obj)["done"]:
            continue
        ref = Ref.of(obj)
        cluster.request("PATCH", cluster.path_of(ref) + "/status", body={"status": {"abort": True}},
                        content_type="application/merge-patch+json")
        aborted.append(ref)
    return aborted
