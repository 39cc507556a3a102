"""The pod: main container, native sidecars, dependency waits and init containers, probes, placement,
security context and the drain delay."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from stackctl.errors import InputError
from stackctl.kubernetes import names as k
from stackctl.kubernetes.render import config, mapping, refs, storage
from stackctl.kubernetes.render.context import SERVED_KINDS, Context, EnvEntry, Plan

# Seconds a served pod keeps serving once it is told to stop (a preStop sleep; profile `shutdown_delay`).
# The endpoint is removed as the kubelet starts stopping the pod, and every node's kube-proxy drops it from
# its rules a moment later: connections opened meanwhile still reach the pod. A few seconds cover that
# propagation on a healthy cluster, as production charts assume.
DEFAULT_SHUTDOWN_DELAY = 5
COMPOSE_STOP_GRACE = 10  # s: Compose's default stop_grace_period, the app's own time to stop after SIGTERM
GPU_RESOURCE = "nvidia.com/gpu"  # the NVIDIA device plugin's extended resource
SLEEP_ACTION_SINCE = (1, 30)  # the preStop `sleep` action: beta and on by default in 1.30, GA in 1.34
SWARM_CONSTRAINT = re.compile(r"^\s*(?P<attr>[A-Za-z][\w.\-/]*)\s*(?P<op>==|!=)\s*(?P<value>\S+)\s*$")
NODE_ATTRIBUTE_LABELS = {"node.hostname": "kubernetes.io/hostname", "node.platform.os": "kubernetes.io/os",
                         "node.platform.arch": "kubernetes.io/arch"}
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armhf": "arm"}
# The sysctls a default kubelet (and the baseline Pod Security Standard) allows; any other needs the
# kubelet's --allowed-unsafe-sysctls.
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
})


# Seconds between startup probes during a healthcheck's start_period when it sets no start_interval.
START_INTERVAL = 2.0


def pod(ctx: Context, plan: Plan, env: list[EnvEntry], files: Mapping[tuple[str, str], tuple[str, str, str]],
        claims: Mapping[str, str], config_sums: dict[str, str], secret_sums: dict[str, str]) -> dict[str, Any]:
    svc = plan.svc
    container: dict[str, Any] = {"name": plan.name, "image": _image(ctx, plan)}
    pull = _pull_policy(ctx, plan)
    if pull:
        container["imagePullPolicy"] = pull
    needed: dict[str, str] = {}  # container variable → secret, for a `$(VAR)` in command/args
    if svc.entrypoint is not None:
        container["command"] = config.command_args(ctx, env, svc.entrypoint, needed)
    if svc.command is not None:
        container["args"] = config.command_args(ctx, env, svc.command, needed)
    if svc.working_dir:
        container["workingDir"] = svc.working_dir
    probes = _probes(ctx, plan, env, needed) if plan.kind not in ("Job", "CronJob") else {}
    config.container_env(ctx, plan, env, container, config_sums, secret_sums, needed)
    if plan.ports:
        container["ports"] = [{"name": p.name, "containerPort": p.target, "protocol": p.protocol}
                              for p in plan.ports]
    resources = _resources(ctx, plan)
    _gpu_limits(ctx, plan, resources)
    if resources:
        container["resources"] = resources
    container.update(probes)
    delay = _shutdown_delay(ctx, plan)
    if delay and svc.pre_stop:
        ctx.note(f"{plan.where}.pre_stop", f"the Compose pre_stop hook is the pod's preStop handler (a container "
                                           f"has one), instead of the {delay} s drain delay: add a sleep to the "
                                           "hook if the pod must keep serving while its endpoint is removed")
        delay = 0
    lifecycle = _lifecycle(ctx, plan)
    if delay:
        # Kubernetes' own sleep action: the kubelet waits, so the image needs no `sleep` binary.
        lifecycle["preStop"] = {"sleep": {"seconds": delay}}
    if lifecycle:
        container["lifecycle"] = lifecycle
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    storage.mounts(ctx, plan, claims, volumes, mounts, config_sums)
    storage.file_mounts(ctx, plan, files, volumes, mounts, config_sums, secret_sums)
    if mounts:
        container["volumeMounts"] = mounts
    security = _container_security(ctx, plan)
    if security:
        container["securityContext"] = security
    pod: dict[str, Any] = {"automountServiceAccountToken": False, "enableServiceLinks": False}
    if svc.hostname and plan.kind != "StatefulSet":
        if k.DNS1123_LABEL.match(svc.hostname) and len(svc.hostname) <= 63:
            pod["hostname"] = svc.hostname
        else:
            ctx.warn(f"{plan.where}.hostname", f"{svc.hostname!r} is not a DNS label; dropped")
    if svc.init:
        # The pause container becomes PID 1 and reaps zombies, which is what `init: true` is for.
        pod["shareProcessNamespace"] = True
    if ctx.kube.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": n} for n in ctx.kube.image_pull_secrets]
    # native sidecars first (a proxy or log forwarder is up before the rest starts), then the
    # dependency waits, then the profile's init containers
    inits = [_extra(ctx, plan, c, "sidecars", i, sidecar=True) for i, c in enumerate(plan.settings.sidecars)]
    inits += _waits(ctx, plan)
    inits += [_extra(ctx, plan, c, "init_containers", i, sidecar=False)
              for i, c in enumerate(plan.settings.init_containers)]
    seen = {plan.name}
    for c in inits:
        if c["name"] in seen:
            field_name = "sidecars" if c.get("restartPolicy") else "init_containers"
            raise ctx.profile_error(f"{plan.where}.{field_name}", f"container name {c['name']!r} is already "
                                                                    "used in the pod")
        seen.add(c["name"])
    if inits:
        pod["initContainers"] = inits
    pod["containers"] = [container]
    pod.update(_placement(ctx, plan))
    pod_security = _pod_security(ctx, plan, volumes)
    if pod_security:
        pod["securityContext"] = pod_security
    if delay:
        # The grace period counts from the start of the preStop hook: the app keeps its own time
        # to stop (stop_grace_period, else Compose's 10 s) after the delay.
        own = (mapping.seconds(svc.stop_grace_period, minimum=0) if svc.stop_grace_period is not None
               else COMPOSE_STOP_GRACE)
        pod["terminationGracePeriodSeconds"] = delay + own
    elif svc.stop_grace_period is not None:
        pod["terminationGracePeriodSeconds"] = mapping.seconds(svc.stop_grace_period, minimum=0)
    if volumes:
        pod["volumes"] = volumes
    return pod


def _shutdown_delay(ctx: Context, plan: Plan) -> int:
    """The preStop sleep of the service's main container, in seconds (0: none). Only pods that a
    Service sends traffic to get one: a long-running workload with ports."""
    chosen = plan.settings.shutdown_delay
    own = chosen if "shutdown_delay" in plan.settings.own else None
    where = plan.settings.where("shutdown_delay")
    if plan.kind not in SERVED_KINDS or not plan.ports:
        if own:  # asked for this very service, where nothing would drain
            why = (f"this {plan.kind} gets no Service" if plan.kind not in SERVED_KINDS
                   else "the service has no ports, so no Service sends it traffic")
            raise ctx.profile_error(where, f"delays the stop of pods behind a Service; {why}")
        return 0
    delay = DEFAULT_SHUTDOWN_DELAY if chosen is None else int(chosen)
    if delay and not _sleep_action(ctx):
        since = "{}.{}".format(*SLEEP_ACTION_SINCE)
        if chosen is not None:
            raise ctx.profile_error(where, f"needs Kubernetes {since} or later (the preStop sleep action); "
                                            f"the target is {ctx.kube.version}")
        if not ctx.old_version_noted:
            ctx.old_version_noted = True
            ctx.note("kubernetes.version", f"{ctx.kube.version}: no preStop drain delay (the sleep action "
                                            f"needs {since}): a stopping pod may still get new connections "
                                            "until every node has dropped its endpoint")
        return 0
    return delay


def _sleep_action(ctx: Context) -> bool:
    """Whether the target version runs a preStop `sleep` (an unreadable version: assume current)."""
    match = re.match(r"^v?(\d+)\.(\d+)", ctx.kube.version)
    return match is None or (int(match.group(1)), int(match.group(2))) >= SLEEP_ACTION_SINCE


def _extra(ctx: Context, plan: Plan, c: Any, field_name: str, index: int, *, sidecar: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": c.name, "image": c.image}
    if sidecar:
        out["restartPolicy"] = "Always"  # a native sidecar: started before, runs beside the main container
    if c.command is not None:
        out["command"] = [mapping.escape_dollar(a) for a in c.command]
    if c.args is not None:
        out["args"] = [mapping.escape_dollar(a) for a in c.args]
    if c.env:
        out["env"] = [{"name": key, "value": value} for key, value in c.env.items()]
    if c.ports:
        out["ports"] = [{"containerPort": port, "protocol": "TCP"} for port in c.ports]
    return out


def _placement(ctx: Context, plan: Plan) -> dict[str, Any]:
    """Where the pods may run: Compose's `deploy.placement` (Swarm constraints become required node
    affinity, `spread` preferences soft topology spread) and the profile's `placement` (spread,
    anti-affinity), which wins where both say something."""
    placement = plan.settings.placement
    swarm = plan.svc.deploy.placement
    if placement is not None and plan.kind not in ("Deployment", "StatefulSet"):
        raise ctx.profile_error(f"{plan.where}.placement", f"spreads replicas of a Deployment or StatefulSet "
                                                            f"(this service is a {plan.kind})")
    selector = {"matchLabels": ctx.pod_selector(plan, workload=True)}
    out: dict[str, Any] = {}
    affinity: dict[str, Any] = {}
    where = f"{plan.where}.deploy.placement"
    if swarm is not None:
        terms = [t for i, c in enumerate(swarm.constraints)
                 if (t := _node_constraint(ctx, c, f"{where}.constraints[{i}]")) is not None]
        if terms:
            affinity["nodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": terms}]}}
    spread = list(placement.spread) if placement is not None else []
    if swarm is not None and swarm.preferences:
        if plan.kind in ("Deployment", "StatefulSet"):
            for i, pref in enumerate(swarm.preferences):
                key = pref.removeprefix("node.labels.")
                if not pref.startswith("node.labels.") or not k.annotation_key_ok(key):
                    ctx.warn(f"{where}.preferences[{i}]", f"spread over {pref!r} has no Kubernetes "
                                                           "equivalent (only node labels); dropped")
                elif key not in spread:
                    spread.append(key)
        else:
            ctx.warn(f"{where}.preferences", f"spreading applies to replicas; a {plan.kind} has none to spread")
    if spread:
        skew = placement.max_skew if placement is not None else 1
        unsatisfiable = placement.when_unsatisfiable if placement is not None else "ScheduleAnyway"
        out["topologySpreadConstraints"] = [
            {"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": unsatisfiable, "labelSelector": selector}
            for key in spread]
    anti = placement.anti_affinity if placement is not None else None
    if anti is None and swarm is not None and swarm.max_replicas_per_node is not None:
        if swarm.max_replicas_per_node == 1 and plan.kind in ("Deployment", "StatefulSet"):
            anti = "required"  # one per node, exactly
        else:
            ctx.warn(f"{where}.max_replicas_per_node", f"{swarm.max_replicas_per_node} per node has no "
                                                        "Kubernetes equivalent but 1 (anti-affinity); dropped")
    if anti == "required":
        affinity["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"}]}
    elif anti == "preferred":
        affinity["podAntiAffinity"] = {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"labelSelector": selector,
                                                "topologyKey": "kubernetes.io/hostname"}}]}
    if affinity:
        out["affinity"] = affinity
    return out


def _node_constraint(ctx: Context, text: str, where: str) -> dict[str, Any] | None:
    """One Swarm constraint as a node selector requirement, or None (with a warning)."""
    match = SWARM_CONSTRAINT.match(text)
    if match is None:
        ctx.warn(where, f"{text!r} is not a Swarm constraint (`node.labels.KEY == VALUE`); dropped")
        return None
    attr, op, value = match.group("attr"), match.group("op"), match.group("value")
    equal = op == "=="
    if attr == "node.role":
        if value not in ("manager", "worker"):
            ctx.warn(where, f"{text!r}: a node role is manager or worker; dropped")
            return None
        on_control_plane = equal == (value == "manager")
        ctx.note(where, f"{text!r}: {'on' if on_control_plane else 'off'} control-plane nodes "
                         "(node-role.kubernetes.io/control-plane)")
        return {"key": "node-role.kubernetes.io/control-plane",
                "operator": "Exists" if on_control_plane else "DoesNotExist"}
    if attr.startswith("node.labels."):
        key = attr.removeprefix("node.labels.")
        if not k.annotation_key_ok(key):
            ctx.warn(where, f"{text!r}: {key!r} is not a valid Kubernetes label key; dropped")
            return None
    elif attr in NODE_ATTRIBUTE_LABELS:
        key = NODE_ATTRIBUTE_LABELS[attr]
        if attr == "node.platform.arch":
            value = ARCHITECTURES.get(value.lower(), value.lower())
        elif attr == "node.platform.os":
            value = value.lower()
    else:
        ctx.warn(where, f"{text!r}: {attr} has no Kubernetes node label; dropped")
        return None
    if len(value) > 63 or not k.LABEL_VALUE.match(value):
        ctx.warn(where, f"{text!r}: {value!r} is not a valid label value; dropped")
        return None
    return {"key": key, "operator": "In" if equal else "NotIn", "values": [value]}


def _image(ctx: Context, plan: Plan) -> str:
    svc = plan.svc
    if svc.build is None:
        if not svc.image:
            raise InputError("has neither image nor build", field=plan.where)
        built = ctx.built_images.get(svc.image)
        # A service that runs the image another service builds (a migration next to its app)
        # runs what that service pushes.
        return built if built is not None else svc.image
    image = k.built_image(ctx.stack.name, svc.name, svc.image, ctx.kube.registry, ctx.kube.image_tag)
    if not ctx.kube.registry:
        ctx.warn(f"{plan.where}.build", f"is built locally and the profile sets no kubernetes.registry: the "
                                         f"cluster must already have the image {image}")
    if image.endswith(":latest"):
        ctx.note(f"{plan.where}.image", "uses the tag latest; pin kubernetes.image_tag so a rollout is "
                                         "repeatable")
    return image


def _pull_policy(ctx: Context, plan: Plan) -> str | None:
    policy = plan.settings.pull_policy or ctx.kube.image_pull_policy
    if policy:
        return str(policy)
    return {"always": "Always", "never": "Never", "missing": "IfNotPresent",
            "if_not_present": "IfNotPresent"}.get(plan.svc.pull_policy or "")


def _fit_heap(ctx: Context, plan: Plan, limits: dict[str, float | int | None]) -> None:
    """A memory limit below the heap the service declares (`-Xmx2g`, `--max-old-space-size`) plus
    what its runtime needs beside it (`mapping.Heap.needs`) gets the container OOM-killed once the
    heap fills. A limit that only the profile's `defaults.resources` gave is raised to fit (a note);
    one set for this service (Compose `deploy.resources`, `services.<name>.resources`) is kept, with
    a warning that says what it needs."""
    limit = limits["memory"]
    svc = plan.svc
    if not limit:
        return
    heap = mapping.declared_heap(svc.environment, svc.command, svc.entrypoint)
    if heap is None or limit >= heap.needs:
        return
    where = f"{plan.where}.deploy.resources.limits.memory"
    shown, needs = mapping.memory_quantity(int(limit)), mapping.memory_quantity(heap.needs)
    declared = f"{heap.flag} ({heap.source})"
    rule = f"a {heap.runtime} heap needs heap × {mapping.HEAP_FACTOR:g} + {mapping.HEAP_OVERHEAD // 2**20} MiB"
    # `defaults.resources` applies only to a service whose Compose file sets no resources, so the
    # merged resources are exactly the defaults' when they gave them (a Compose file that sets exactly
    # the defaults' values is taken for them: the same numbers written twice).
    d, deploy = plan.settings.defaults_resources, svc.deploy
    from_defaults = ("resources" not in plan.settings.own and d.limits.memory == limit
                     and (d.limits.cpus, d.requests.cpus, d.requests.memory)
                     == (deploy.limits.cpus, deploy.reservations.cpus, deploy.reservations.memory))
    if from_defaults:
        limits["memory"] = heap.needs
        ctx.note(where, f"{declared}: raised from {shown} (defaults.resources) to {needs}, as {rule}; set "
                        f"services.{svc.name}.resources.limits.memory to choose another")
        return
    ctx.warn(where, f"{shown} is below what {declared} needs: at least {needs} ({rule}); the container is "
                    "OOM-killed once the heap fills. Raise the limit or lower the heap")


def _resources(ctx: Context, plan: Plan) -> dict[str, Any]:
    deploy = plan.svc.deploy
    limits = {"cpu": deploy.limits.cpus, "memory": deploy.limits.memory}
    requests = {"cpu": deploy.reservations.cpus, "memory": deploy.reservations.memory}
    _fit_heap(ctx, plan, limits)
    for key in ("cpu", "memory"):
        limit, request = limits[key], requests[key]
        if limit is not None and request is not None and request > limit:
            # The API server refuses a container whose request exceeds its limit.
            shown = [mapping.cpu_quantity(v) if key == "cpu" else mapping.memory_quantity(int(v))
                     for v in (request, limit)]
            ctx.warn(f"{plan.where}.deploy.resources.reservations.{'cpus' if key == 'cpu' else 'memory'}",
                     f"the request {shown[0]} is above the limit {shown[1]}, which Kubernetes refuses; "
                     f"lowered to {shown[1]}")
            requests[key] = limit
    out: dict[str, Any] = {}
    for part_name, values in (("limits", limits), ("requests", requests)):
        part = {}
        if values["cpu"]:
            part["cpu"] = mapping.cpu_quantity(values["cpu"])
        if values["memory"]:
            part["memory"] = mapping.memory_quantity(int(values["memory"]))
        if part:
            out[part_name] = part
    if deploy.limits.pids or deploy.reservations.pids:
        ctx.warn(f"{plan.where}.deploy.resources.limits.pids", "per-pod PID limits are a kubelet setting; "
                                                                "not carried over")
    return out


def _lifecycle(ctx: Context, plan: Plan) -> dict[str, Any]:
    """Compose `post_start` / `pre_stop` hooks as the container's `postStart` / `preStop` exec handlers.

    Kubernetes runs a handler in the container as its own user, directory and environment, one handler
    per hook: several Compose hooks run one after the other in a shell (a note: the image needs
    /bin/sh); a hook's own user, privileges, directory or environment cannot be carried over (a warning).
    The `develop` section is noted here too: it is the dev loop, on purpose for no deployed pod."""
    svc = plan.svc
    if "develop" in svc.fields:
        ctx.note(f"{plan.where}.develop", "the dev loop (`develop.watch`) is for a local stack only; not rendered")
    out: dict[str, Any] = {}
    for key, hooks, handler in (("post_start", svc.post_start, "postStart"), ("pre_stop", svc.pre_stop, "preStop")):
        for i, hook in enumerate(hooks):
            where = f"{plan.where}.{key}[{i}]"
            lost = [name for name, differs in (
                ("user", hook.user is not None and hook.user != svc.user),
                ("privileged", bool(hook.privileged) and not svc.privileged),
                ("working_dir", hook.working_dir is not None and hook.working_dir != svc.working_dir),
                ("environment", bool(hook.environment))) if differs]
            if lost:
                ctx.warn(where, f"{', '.join(lost)} of the hook not carried over: a Kubernetes {handler} handler "
                                "runs as the container does (its user, privileges, directory and environment)")
        commands = [hook.command for hook in hooks if hook.command]
        if len(commands) == 1:
            out[handler] = {"exec": {"command": list(commands[0])}}
        elif commands:
            ctx.note(f"{plan.where}.{key}", f"{len(commands)} hooks run one after the other in one {handler} "
                                            "handler (/bin/sh -c; the image needs a shell)")
            out[handler] = {"exec": {"command": ["/bin/sh", "-c", " && ".join(shlex.join(c) for c in commands)]}}
    return out


def _gpu_limits(ctx: Context, plan: Plan, resources: dict[str, Any]) -> None:
    """`gpus` and GPU device reservations as an `nvidia.com/gpu` limit (an extended resource: the request
    equals the limit). Kubernetes counts GPUs: `all` becomes 1 and named device IDs their number, each with
    a warning; other drivers, capabilities and options cannot be carried over (a warning)."""
    svc = plan.svc
    requests = [(f"{plan.where}.gpus", d, True) for d in svc.gpus]
    requests += [(f"{plan.where}.deploy.resources.reservations.devices[{i}]", d, "gpu" in d.capabilities)
                 for i, d in enumerate(svc.deploy.reservations.devices)]
    total = 0
    for where, device, is_gpu in requests:
        if not is_gpu:
            ctx.warn(where, f"a device reservation with capabilities {list(device.capabilities)} has no Kubernetes "
                            "counterpart (only GPUs become a resource limit); not carried over")
            continue
        if device.driver not in (None, "nvidia"):
            ctx.warn(where, f"GPU driver {device.driver!r}: only nvidia GPUs (`{GPU_RESOURCE}`) are rendered; "
                            "not carried over")
            continue
        if device.count == -1:
            ctx.warn(where, f"all GPUs of the host: Kubernetes needs a number, {GPU_RESOURCE}: 1 rendered (set "
                            "`count` for more)")
            total += 1
        elif device.device_ids:
            ctx.warn(where, f"device_ids {list(device.device_ids)}: Kubernetes picks the GPUs, "
                            f"{GPU_RESOURCE}: {len(device.device_ids)} rendered")
            total += len(device.device_ids)
        else:
            total += device.count or 0
        if device.options:
            ctx.warn(f"{where}.options", "driver options have no Kubernetes counterpart; not carried over")
    if total:
        resources.setdefault("limits", {})[GPU_RESOURCE] = total


def _container_security(ctx: Context, plan: Plan) -> dict[str, Any]:
    svc = plan.svc
    out: dict[str, Any] = {}
    caps = {key: names for key, names in (("add", capabilities(svc.cap_add)), ("drop", capabilities(svc.cap_drop)))
            if names}
    if caps:
        out["capabilities"] = caps
    if svc.privileged:
        out["privileged"] = True
        ctx.warn(f"{plan.where}.privileged", "the container runs privileged; namespaces that enforce the baseline "
                                              "or restricted Pod Security Standard reject the pod")
    if svc.read_only:
        out["readOnlyRootFilesystem"] = True
    return out


def _pod_security(ctx: Context, plan: Plan, volumes: list[dict[str, Any]]) -> dict[str, Any]:
    out = _run_as(ctx, plan, volumes)
    sysctls = _sysctls(ctx, plan)
    if sysctls:
        out["sysctls"] = sysctls
    return out


def _sysctls(ctx: Context, plan: Plan) -> list[dict[str, str]]:
    out = []
    for name, value in sorted(plan.svc.sysctls.items()):
        if name not in SAFE_SYSCTLS:
            ctx.warn(f"{plan.where}.sysctls.{name}", "is not a safe sysctl: the kubelet must allow it with "
                                                      "--allowed-unsafe-sysctls, else the pod is rejected (as it "
                                                      "is in namespaces that enforce the baseline or restricted "
                                                      "Pod Security Standard)")
        out.append({"name": name, "value": value})
    return out


def _run_as(ctx: Context, plan: Plan, volumes: list[dict[str, Any]]) -> dict[str, Any]:
    user = plan.svc.user
    if not user:
        return {}
    uid, _, gid = user.partition(":")
    out: dict[str, Any] = {}
    if uid.isdigit():
        out["runAsUser"] = int(uid)
    else:
        ctx.warn(f"{plan.where}.user", f"{uid!r} is a user name; Kubernetes needs a numeric UID (set "
                                        "user: \"<uid>:<gid>\" or a numeric USER in the image)")
    if gid.isdigit():
        out["runAsGroup"] = int(gid)
    elif gid:
        ctx.warn(f"{plan.where}.user", f"group {gid!r} is a name; Kubernetes needs a numeric GID")
    if "runAsUser" in out and out["runAsUser"] != 0:
        out["runAsNonRoot"] = True
        if any("persistentVolumeClaim" in v or "emptyDir" in v for v in volumes) or any(
                how == "template" for how in plan.claims.values()):
            # Volumes are created root-owned; a non-root process can write them only via fsGroup.
            out["fsGroup"] = out.get("runAsGroup", out["runAsUser"])
            out["fsGroupChangePolicy"] = "OnRootMismatch"
    return out


def _probes(ctx: Context, plan: Plan, env: list[EnvEntry], needed: dict[str, str]) -> dict[str, Any]:
    hc = plan.svc.healthcheck
    liveness = plan.settings.liveness
    out: dict[str, Any] = {}
    handler = None
    if hc is not None and hc.argv is not None:
        handler = _probe_handler(ctx, hc.argv, plan, env, needed)
        timing = {"periodSeconds": mapping.seconds(hc.interval), "timeoutSeconds": mapping.seconds(hc.timeout),
                  "failureThreshold": max(1, hc.retries)}
        out["readinessProbe"] = {**handler, **timing, "successThreshold": 1}
        if hc.start_period > 0:
            # During start_period the probe runs every start_interval (Compose spec; Docker 25+). Left
            # unset, it runs every START_INTERVAL here rather than every `interval`: a pod is Ready
            # within ~2 s of its app answering, not ~interval later, and a rolling update or rollback
            # of N pods waits N times that (measured on the real node: 11 s → 3 s per api pod).
            period = min(mapping.seconds(hc.interval), mapping.seconds(hc.start_interval or START_INTERVAL))
            budget = -(-mapping.seconds(hc.start_period) // period) + max(1, hc.retries)
            out["startupProbe"] = {**handler, "periodSeconds": period, "timeoutSeconds": mapping.seconds(hc.timeout),
                                   "failureThreshold": budget}
    if liveness is not None:
        if liveness.path is not None:
            port = liveness.port or (plan.ports[0].target if plan.ports else None)
            if port is None:
                raise ctx.profile_error(f"services.{plan.svc.name}.liveness.port",
                                         "is required: the service has no ports")
            live = {"httpGet": {"path": liveness.path, "port": port}}
        elif handler is not None:
            live = handler
        else:
            raise ctx.profile_error(f"services.{plan.svc.name}.liveness", "the service has no health check; "
                                     "give liveness a path (and port)")
        period = mapping.seconds(hc.interval) if hc else 10
        timeout = mapping.seconds(hc.timeout) if hc else 1
        out["livenessProbe"] = {**live, "periodSeconds": period, "timeoutSeconds": timeout,
                                "failureThreshold": max(3, hc.retries if hc else 3)}
    return {key: out[key] for key in ("livenessProbe", "readinessProbe", "startupProbe") if key in out}


def _probe_handler(ctx: Context, argv: tuple[str, ...], plan: Plan, env: list[EnvEntry],
                   needed: dict[str, str]) -> dict[str, Any]:
    argv = _probe_hosts(ctx, plan, argv)
    if any(config.secrets_in(ctx, arg) for arg in argv):
        # Kubernetes expands no variables in a probe: a shell reads the secret from the environment.
        ctx.note(f"{plan.where}.healthcheck", "uses a secret: the probe runs through sh, which reads it from the "
                                               "container's environment (the image needs a shell)")
        return {"exec": {"command": config.shell_command(ctx, env, argv, needed)}}
    http = mapping.http_check(argv)
    if http is not None:
        get: dict[str, Any] = {"path": http.path, "port": http.port}
        if http.scheme != "HTTP":
            get["scheme"] = http.scheme
        if http.headers:
            get["httpHeaders"] = [{"name": n, "value": v} for n, v in http.headers]
        return {"httpGet": get}
    return {"exec": {"command": list(argv)}}


def _probe_hosts(ctx: Context, plan: Plan, argv: tuple[str, ...]) -> tuple[str, ...]:
    """A health check that calls the service by its own name (`curl -f http://api:8080/health`,
    `pg_isready -h db`) reaches it in Kubernetes through its Service, which routes only to ready
    pods, and readiness is this very check: it could never pass. It calls 127.0.0.1 instead (a
    note; the name resolves to the container itself in Compose, so nothing changes). A check that
    calls another service still works, so a note says what it costs; two services whose checks call
    each other can never become ready (a warning)."""
    svc, where = plan.svc, f"{plan.where}.healthcheck"

    def hits(words: Sequence[str]) -> list[refs.Hit]:  # a host inside a secret is never found (as unrendered)
        text = " ".join(words)
        return refs.find(refs.masked(text, config.secrets_in(ctx, text)), ctx.hostnames, command=True)

    own = {svc.name.lower(): svc.name}
    own.update({a.lower(): svc.name for n in svc.networks for a in n.aliases
                if ctx.hostnames.get(a.lower()) == svc.name})
    argv, changed = refs.to_local(argv, own)
    if changed:
        ctx.note(where, f"calls the service by its own name ({', '.join(changed)}), which in Kubernetes goes "
                         "through its Service, and a Service routes only to ready pods: the probe calls "
                         f"{refs.LOCAL} instead")
    others: dict[str, str] = {}
    for hit in hits(argv):
        owner = ctx.hostnames[hit.host.lower()]
        if owner != svc.name:
            others.setdefault(owner, hit.host)
    for owner, host in sorted(others.items()):
        theirs = ctx.plans[owner].svc.healthcheck
        back = theirs is not None and theirs.argv is not None and any(
            ctx.hostnames[h.host.lower()] == svc.name for h in hits(theirs.argv))
        if back:
            ctx.warn(where, f"calls {host}, whose own health check calls {svc.name}: each readiness probe "
                             "passes only once the other service is ready, so neither ever becomes ready; "
                             "check the service itself (127.0.0.1)")
        else:
            ctx.note(where, f"calls {host}: the readiness probe depends on services.{owner}, so while that is "
                             f"not ready (down, restarting) {svc.name} is not ready either (out of its Service, a "
                             "rollout waits)")
    return argv


def _waits(ctx: Context, plan: Plan) -> list[dict[str, Any]]:
    """An init container per `service_healthy` dependency, waiting until its Service accepts a
    TCP connection: a ClusterIP Service only forwards to ready pods, and readiness is the
    dependency's health check, so an open port means the dependency is healthy."""
    out = []
    for dep in plan.svc.depends_on:
        if dep.condition != "service_healthy":
            continue
        other = ctx.plans.get(dep.service)
        where = f"{plan.where}.depends_on.{dep.service}"
        if other is None:
            continue
        if not dep.required:
            ctx.note(where, "optional dependency (required: false): not waited for")
            continue
        if other.kind in ("Job", "CronJob") or not other.ports:
            why = "it runs as a " + other.kind if other.kind in ("Job", "CronJob") else "it has no port"
            ctx.warn(where, f"service_healthy cannot be waited for ({why}); {plan.name} starts without "
                             "waiting and relies on restarts")
            continue
        port = next((p for p in other.ports if p.protocol == "TCP"), None)
        if port is None:
            ctx.warn(where, f"service_healthy cannot be waited for (it has no TCP port); {plan.name} starts "
                             "without waiting and relies on restarts")
            continue
        target = f"{other.name}:{port.target}"
        script = (f"until nc -z -w 2 {other.name} {port.target}; do echo 'waiting for {target}'; "
                  "sleep 2; done")
        out.append({
            "name": k.with_suffix("wait-for", other.name),
            "image": ctx.kube.wait_image,
            "command": ["sh", "-c", script],
            "resources": {"limits": {"cpu": "100m", "memory": "32Mi"},
                          "requests": {"cpu": "10m", "memory": "16Mi"}},
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": 65534},
        })
    return out


def capabilities(names: Sequence[str]) -> list[str]:
    """Compose capability names → Kubernetes ones (`cap_sys_time` → `SYS_TIME`), first occurrence kept."""
    out: list[str] = []
    for name in names:
        cap = name.strip().upper().removeprefix("CAP_")
        if cap and cap not in out:
            out.append(cap)
    return out

