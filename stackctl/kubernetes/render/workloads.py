"""Workloads: one Compose service → its Deployment, StatefulSet, DaemonSet, Job, CronJob or Argo
Rollout, with its update strategy, and the Services, autoscaler, disruption budget and Ingress around it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackctl.kubernetes import names as k
from stackctl.kubernetes.labels import (
    A_CANARY_STEPS,
    A_CONFIG_HASH,
    A_KEEP_PREVIOUS,
    A_SECRET_HASH,
    A_SERVICE,
    A_STRATEGY,
    A_WAIT,
    L_COLOUR,
)
from stackctl.kubernetes.render import config, mapping, network, podspec, scaling, storage
from stackctl.kubernetes.render.context import WAVE_WORKLOADS, Context, EnvEntry, Plan
from stackctl.profile.types import Canary

# A rolling update without settings of its own starts a new pod before it stops an old one: the
# served capacity never drops (Kubernetes' own default, 25 % each, takes pods away from 4 replicas on).
DEFAULT_ROLLING_UPDATE = {"maxSurge": 1, "maxUnavailable": 0}


# An annotation is plain text to anyone who may read the object (and kept in `kubectl apply`'s
# last-applied copy): a label a secret flows into is not carried over.
_SECRET_ANNOTATION = "holds a secret, which an annotation would show to anyone who can read the object; dropped"


def render_service(ctx: Context, plan: Plan, env: list[EnvEntry], files: Mapping[tuple[str, str], tuple[str, str, str]],
                   claims: Mapping[str, str]) -> None:
    wave = WAVE_WORKLOADS + plan.level
    config_sums: dict[str, str] = {}
    secret_sums: dict[str, str] = {}
    pod = podspec.pod(ctx, plan, env, files, claims, config_sums, secret_sums)
    pod_annotations: dict[str, str] = {}
    for key, value in sorted(plan.svc.labels.items()):
        if config.secret_flows_into(ctx, value):
            ctx.warn(f"{plan.where}.labels.{key}", _SECRET_ANNOTATION)
        elif k.annotation_key_ok(key):
            pod_annotations[key] = value
        else:
            ctx.warn(f"{plan.where}.labels.{key}", "is not a valid Kubernetes annotation key; dropped")
    if config_sums:
        pod_annotations[A_CONFIG_HASH] = k.sha256(k.canonical(config_sums))
    if secret_sums:
        pod_annotations[A_SECRET_HASH] = k.sha256(k.canonical(secret_sums))
    template = {"metadata": {"labels": {**ctx.labels(plan.name), **ctx.pod_selector(plan, workload=True)}},
                "spec": pod}
    if pod_annotations:
        template["metadata"]["annotations"] = dict(sorted(pod_annotations.items()))
    annotations = {A_SERVICE: plan.svc.name}
    for key, value in sorted(plan.svc.deploy.labels.items()):  # Swarm labels of the service itself
        if config.secret_flows_into(ctx, value):
            ctx.warn(f"{plan.where}.deploy.labels.{key}", _SECRET_ANNOTATION)
        elif k.annotation_key_ok(key) and not key.startswith("stackctl.io/"):
            annotations[key] = value
        else:
            ctx.warn(f"{plan.where}.deploy.labels.{key}", "is not a valid Kubernetes annotation key; dropped")
    strategy = plan.settings.strategy
    if strategy in ("blue-green", "canary"):
        annotations[A_STRATEGY] = strategy
    blue_green = plan.settings.blue_green  # only set with strategy: blue-green (kubernetes.settings)
    if ctx.colour(plan):
        if plan.settings.autoscaling is not None:
            raise ctx.profile_error(f"{plan.where}.autoscaling", "cannot be combined with strategy: "
                                                                  "blue-green (the autoscaler targets one "
                                                                  "Deployment, blue-green has two)")
        if blue_green is not None and not blue_green.keep_previous:
            annotations[A_KEEP_PREVIOUS] = "false"
    elif strategy == "blue-green" and not ctx.argo(plan):
        ctx.warn(f"{plan.where}.strategy", f"blue-green applies to Deployments; this {plan.kind} rolls "
                                            "as usual")
    if plan.settings.job is not None and plan.kind not in ("Job", "CronJob"):
        raise ctx.profile_error(f"{plan.where}.job", f"only applies to a Job or CronJob (this service is a "
                                                      f"{plan.kind})")
    canary = plan.settings.canary  # only set with strategy: canary
    if ctx.canary(plan):
        if plan.settings.autoscaling is not None:
            raise ctx.profile_error(f"{plan.where}.autoscaling", "cannot be combined with strategy: canary "
                                                                  "(the canary is sized from replicas)")
        steps = (canary or Canary()).steps
        annotations[A_CANARY_STEPS] = ",".join(f"{st.weight}:{st.pause}" for st in steps)
    elif strategy == "canary" and not ctx.argo(plan):
        ctx.warn(f"{plan.where}.strategy", f"canary applies to Deployments; this {plan.kind} rolls as usual")
    _workload(ctx, plan, template, wave, annotations, claims)
    if plan.kind not in ("Job", "CronJob"):
        network.services(ctx, plan)
    elif plan.ports and plan.svc.ports:
        ctx.warn(f"{plan.where}.ports", f"a {plan.kind} gets no Service: its ports are not reachable")
    scaling.autoscaling(ctx, plan, wave)
    scaling.pdb(ctx, plan, wave)
    network.ingress(ctx, plan, wave)


def _replicated_database(ctx: Context, plan: Plan) -> None:
    """A database image with more than one replica renders N independent databases (each its own
    data) behind one Service that spreads connections over them: not what a replica count means."""
    svc = plan.svc
    count = plan.settings.autoscaling.min_replicas if plan.settings.autoscaling else svc.deploy.replicas
    if not count or count <= 1 or not mapping.is_database_image(svc.image):
        return
    where = (f"{plan.where}.autoscaling.min" if plan.settings.autoscaling else f"{plan.where}.replicas"
             if "replicas" in plan.settings.own else f"{plan.where}.deploy.replicas")
    ctx.warn(where, f"{svc.image} is a database image: {count} replicas are {count} independent databases, each "
                    "with its own data, behind one Service that spreads connections over them; set 1 (replication "
                    "needs the image's own cluster setup or an operator)")


def _workload(ctx: Context, plan: Plan, template: dict[str, Any], wave: int, annotations: dict[str, str],
              claims: Mapping[str, str]) -> None:
    svc, kind = plan.svc, plan.kind
    autoscaling = plan.settings.autoscaling
    replicas = svc.deploy.replicas
    spec: dict[str, Any] = {}
    if kind in ("Deployment", "StatefulSet"):
        if autoscaling is None and replicas is not None:
            spec["replicas"] = replicas
        elif autoscaling is not None and replicas is not None:
            ctx.note(f"{plan.where}.replicas", "autoscaling owns the replica count; replicas is not rendered")
        _replicated_database(ctx, plan)
    if kind in ("Deployment", "StatefulSet", "DaemonSet"):
        spec["selector"] = {"matchLabels": ctx.pod_selector(plan, workload=True)}
    if kind == "Deployment":
        spec.update(_deployment_strategy(ctx, plan, claims))
    elif kind == "StatefulSet":
        spec["serviceName"] = network.headless_name(ctx, plan)
        templates = [v for v, how in sorted(plan.claims.items()) if how == "template"]
        if templates:
            spec["volumeClaimTemplates"] = [
                {"metadata": {"name": storage.volume_name(ctx, v), "labels": ctx.selector(plan.name)},
                 "spec": storage.claim_spec(ctx, v)} for v in templates]
            for vol in templates:
                if vol in ctx.volumes:
                    storage.volume_driver_warnings(ctx, ctx.volumes[vol])
    uc = svc.deploy.update_config
    if kind in ("StatefulSet", "DaemonSet") and uc is not None and (uc.parallelism is not None or uc.order
                                                                    or uc.delay):
        # Only a Deployment's strategy takes Swarm's parallelism/order/delay: never silently lost.
        how = ("replaces its pods one at a time, stop-first, in order" if kind == "StatefulSet"
               else "rolls one pod per node unless the profile sets `update:`")
        ctx.warn(f"{plan.where}.deploy.update_config", f"a {kind} {how}; parallelism, order and delay are not "
                                                         "carried over")
    if kind == "DaemonSet":
        update = plan.settings.update
        if update is not None:
            rolling = {}
            if update.max_surge is not None:
                rolling["maxSurge"] = update.max_surge
            if update.max_unavailable is not None:
                rolling["maxUnavailable"] = update.max_unavailable
            spec["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": rolling}
    name = plan.name
    if kind in ("Job", "CronJob"):
        job = _job_spec(ctx, plan, template)
        if kind == "Job":
            spec.update(job)
            # A Job's pod template is immutable: a changed Job is a new Job (a new name), and the
            # old one is pruned. An unchanged Job keeps its name and does not run again.
            name = k.with_suffix(plan.name, k.short_hash(k.canonical(job)))
            if plan.awaited:
                annotations[A_WAIT] = "complete"
        else:
            spec.update(_cron_spec(ctx, plan, job))
    else:
        spec["template"] = template
    if kind == "CronJob" and len(name) > 52:  # the controller appends 11 characters per run
        name = f"{name[:43].rstrip('-')}-{k.short_hash(name)}"
    colour = ctx.colour(plan)
    if colour:
        name = k.with_suffix(name, colour)
    if ctx.argo(plan):
        kind = "Rollout"
        spec["strategy"] = _argo_strategy(ctx, plan, spec.pop("strategy", None))
        # The Argo controller writes the template back with `resources: {}` on every container
        # (argoproj/argo-rollouts#3281); rendering it so keeps the next apply a no-op.
        pod_spec = template["spec"]
        for group in ("initContainers", "containers"):
            for container in pod_spec.get(group) or []:
                container.setdefault("resources", {})
    if kind != "Job":
        name = ctx.claim_name(kind, name, plan.where)
    obj = ctx.emit(kind, name, {"spec": spec}, wave=wave, label_name=plan.name, annotations=annotations)
    if colour:
        obj["metadata"]["labels"] = dict(sorted({**obj["metadata"]["labels"], L_COLOUR: colour}.items()))


def _deployment_strategy(ctx: Context, plan: Plan, claims: Mapping[str, str]) -> dict[str, Any]:
    svc = plan.svc
    strategy = plan.settings.strategy
    rwo = [v for v, how in plan.claims.items() if how in ("claim", "external")
           and storage.volume_settings(ctx, v)[2] in ("ReadWriteOnce", "ReadWriteOncePod")]
    out: dict[str, Any] = {}
    if rwo:
        if strategy == "rolling" or plan.settings.update is not None:
            ctx.warn(f"{plan.where}.strategy", f"Recreate is used instead of a rolling update: the "
                                                f"ReadWriteOnce volume {rwo[0]} cannot be mounted by old and "
                                                "new pods on different nodes at once")
        out["strategy"] = {"type": "Recreate"}
        return out
    if strategy == "recreate":
        out["strategy"] = {"type": "Recreate"}
        return out
    rolling: dict[str, Any] = {}
    update = plan.settings.update
    uc = svc.deploy.update_config
    if update is not None:
        if update.max_surge is not None:
            rolling["maxSurge"] = update.max_surge
        if update.max_unavailable is not None:
            rolling["maxUnavailable"] = update.max_unavailable
    elif uc is not None and (uc.parallelism is not None or uc.order):
        # Swarm: parallelism 1 unless set, 0 = all at once
        pods: int | str = "100%" if uc.parallelism == 0 else (uc.parallelism or 1)
        if uc.order == "start-first":
            rolling = {"maxSurge": pods, "maxUnavailable": 0}
        else:  # Swarm's default order is stop-first
            rolling = {"maxSurge": 0, "maxUnavailable": pods}
    else:
        # Whatever the replica count: with 1 to 3 it is what Kubernetes' 25 % rounds to anyway (now
        # explicit), from 4 on it keeps every replica serving, and an autoscaled count is unknown here.
        rolling = dict(DEFAULT_ROLLING_UPDATE)
    if uc is not None and uc.delay:
        out["minReadySeconds"] = mapping.seconds(uc.delay)
    if uc is not None and uc.failure_action not in (None, "pause"):
        ctx.note(f"{plan.where}.deploy.update_config.failure_action",
                  f"{uc.failure_action}: a failed rollout stops; `stackctl promote` handles rollback")
    if rolling:
        out["strategy"] = {"type": "RollingUpdate", "rollingUpdate": rolling}
    return out


def _argo_strategy(ctx: Context, plan: Plan, deployment: Mapping[str, Any] | None) -> dict[str, Any]:
    """An Argo Rollouts canary (setWeight and pause steps, weights by replica ratio: no traffic
    router is configured; the surge/unavailable settings of the rolling update) or blue-green
    (the service's Service is the active one, switched once the new ReplicaSet is ready)."""
    blue_green = plan.settings.strategy == "blue-green"
    field = "blue_green" if blue_green else "canary"
    if deployment is not None and deployment.get("type") == "Recreate":
        raise ctx.profile_error(f"{plan.where}.{field}.controller",
                                 f"{'blue-green' if blue_green else 'a canary'} needs old and new pods side by "
                                 "side, and this service must be recreated (strategy: recreate, or a "
                                 "ReadWriteOnce volume)")
    if blue_green:
        if not plan.ports:
            raise ctx.profile_error(f"{plan.where}.blue_green.controller",
                                     "Argo Rollouts switches the service's Service, and it has no ports (no "
                                     "Service); give it `expose:` or `ports:`")
        aliases = [a for net in plan.svc.networks for a in net.aliases if k.service_name(a) not in (None, plan.name)]
        if aliases:
            raise ctx.profile_error(f"{plan.where}.blue_green.controller",
                                     f"Argo Rollouts switches one Service, and the network aliases "
                                     f"({', '.join(aliases)}) would each get one that sees both versions; drop "
                                     "them or use controller: stackctl")
        settings = plan.settings.blue_green
        out: dict[str, Any] = {"activeService": plan.name, "autoPromotionEnabled": True}
        if settings is not None and not settings.keep_previous:
            out["scaleDownDelaySeconds"] = 0  # else Argo's default: the old ReplicaSet goes 30 s after
        return {"blueGreen": out}
    steps: list[dict[str, Any]] = []
    for step in (plan.settings.canary or Canary()).steps:
        steps.append({"setWeight": step.weight})
        if step.pause:
            steps.append({"pause": {"duration": f"{step.pause}s"}})
    canary: dict[str, Any] = dict((deployment or {}).get("rollingUpdate") or {})
    canary["steps"] = steps
    return {"canary": canary}


def _job_spec(ctx: Context, plan: Plan, template: dict[str, Any]) -> dict[str, Any]:
    svc = plan.svc
    restart = svc.restart or ""
    policy = svc.deploy.restart_policy or {}
    attempts = policy.get("max_attempts")
    backoff = 0
    if restart.startswith("on-failure"):
        _, _, count = restart.partition(":")
        backoff = int(count) if count.isdigit() else 6
    elif restart in ("always", "unless-stopped"):
        backoff = 6
        ctx.note(f"{plan.where}.restart", f"{restart} on a one-shot service: the Job retries a failed run "
                                           "(backoffLimit 6) and stops after a success")
    if policy.get("condition") in ("on-failure", "any"):
        backoff = 6
    if isinstance(attempts, int) and policy.get("condition") != "none":
        backoff = attempts
    template["spec"]["restartPolicy"] = "Never"
    settings = plan.settings.job
    if settings is not None and settings.backoff_limit is not None:
        backoff = settings.backoff_limit
    spec: dict[str, Any] = {"backoffLimit": backoff}
    if settings is not None and settings.active_deadline is not None:
        spec["activeDeadlineSeconds"] = settings.active_deadline
    if settings is not None and settings.ttl_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = settings.ttl_after_finished
    replicas = svc.deploy.replicas
    if replicas is not None and replicas > 1:
        spec["completions"] = replicas
        spec["parallelism"] = replicas
    spec["template"] = template
    return spec


def _cron_spec(ctx: Context, plan: Plan, job: dict[str, Any]) -> dict[str, Any]:
    o = plan.settings
    spec: dict[str, Any] = {"schedule": o.schedule, "concurrencyPolicy": o.concurrency_policy or "Forbid"}
    if o.time_zone:
        spec["timeZone"] = o.time_zone
    if o.job is not None and o.job.successful_history is not None:
        spec["successfulJobsHistoryLimit"] = o.job.successful_history
    if o.job is not None and o.job.failed_history is not None:
        spec["failedJobsHistoryLimit"] = o.job.failed_history
    spec["jobTemplate"] = {"metadata": {"labels": ctx.selector(plan.name)}, "spec": job}
    return spec
