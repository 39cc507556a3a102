"""Scaling objects: the HorizontalPodAutoscaler and the PodDisruptionBudget of a service."""

from __future__ import annotations

from typing import Any

from stackctl.kubernetes.render.context import API_VERSIONS, Context, Plan


def autoscaling(ctx: Context, plan: Plan, wave: int) -> None:
    hpa = plan.settings.autoscaling
    if hpa is None:
        return
    where = f"services.{plan.svc.name}.autoscaling"
    if plan.kind not in ("Deployment", "StatefulSet"):
        raise ctx.profile_error(where, f"only a Deployment or StatefulSet can autoscale (this service is a "
                                        f"{plan.kind})")
    deploy = plan.svc.deploy
    metrics = []
    cpu = hpa.cpu if hpa.cpu is not None or hpa.memory is not None else 80
    for resource, target, request in (("cpu", cpu, deploy.reservations.cpus or deploy.limits.cpus),
                                      ("memory", hpa.memory, deploy.reservations.memory or deploy.limits.memory)):
        if target is None:
            continue
        if not request:
            explicit = hpa.memory if resource == "memory" else hpa.cpu
            raise ctx.profile_error(f"{where}.{resource}" if explicit is not None else where,
                                     f"utilization is measured against the {resource} request, and the service "
                                     f"has none (set services.{plan.svc.name}.resources.requests)")
        metrics.append({"type": "Resource", "resource": {"name": resource, "target": {
            "type": "Utilization", "averageUtilization": target}}})
    scaled = ({"apiVersion": API_VERSIONS["Rollout"], "kind": "Rollout"} if ctx.argo(plan)
              else {"apiVersion": "apps/v1", "kind": plan.kind})
    spec: dict[str, Any] = {
        "scaleTargetRef": {**scaled, "name": plan.name},
        "minReplicas": hpa.min_replicas, "maxReplicas": hpa.max_replicas, "metrics": metrics}
    behavior = {}
    for key, rules in (("scaleUp", hpa.scale_up), ("scaleDown", hpa.scale_down)):
        if rules is None:
            continue
        part: dict[str, Any] = {}
        if rules.stabilization_seconds is not None:
            part["stabilizationWindowSeconds"] = rules.stabilization_seconds
        if rules.select_policy:
            part["selectPolicy"] = rules.select_policy
        if rules.policies:
            part["policies"] = [{"type": p.type, "value": p.value, "periodSeconds": p.period_seconds}
                                for p in rules.policies]
        behavior[key] = part
    if behavior:
        spec["behavior"] = behavior
    ctx.emit("HorizontalPodAutoscaler", plan.name, {"spec": spec}, wave=wave, label_name=plan.name)


def pdb(ctx: Context, plan: Plan, wave: int) -> None:
    pdb = plan.settings.pdb
    if pdb is None:
        return
    where = f"services.{plan.svc.name}.pdb"
    if plan.kind not in ("Deployment", "StatefulSet"):
        raise ctx.profile_error(where, f"a disruption budget needs a Deployment or StatefulSet (this service "
                                        f"is a {plan.kind})")
    spec: dict[str, Any] = {}
    if pdb.min_available is not None:
        spec["minAvailable"] = pdb.min_available
        floor = plan.settings.autoscaling.min_replicas if plan.settings.autoscaling else (
            plan.svc.deploy.replicas if plan.svc.deploy.replicas is not None else 1)
        if isinstance(pdb.min_available, int) and pdb.min_available >= floor:
            ctx.warn(f"{where}.min_available", f"{pdb.min_available} with {floor} replica(s) blocks every "
                                                 "voluntary eviction: node drains will hang")
    else:
        spec["maxUnavailable"] = pdb.max_unavailable
        if pdb.max_unavailable in (0, "0%"):
            ctx.warn(f"{where}.max_unavailable", "0 blocks every voluntary eviction: node drains will hang")
    spec["selector"] = {"matchLabels": ctx.selector(plan.name)}
    ctx.emit("PodDisruptionBudget", plan.name, {"spec": spec}, wave=wave, label_name=plan.name)
