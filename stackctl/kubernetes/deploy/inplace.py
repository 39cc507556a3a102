"""`stackctl secrets rotate NAME --in-place -p PROFILE` on Kubernetes: the database password changed inside
the running database first, then stored; `promote` then rolls what uses it.

Our API client has no exec (`kubectl exec` speaks SPDY/WebSocket streams), so the change runs as a Job
of the database's own image (it has the database's client tools) in the release's namespace:

- the values travel in a temporary Secret (`STACKCTL_OLD_VALUE`, `STACKCTL_NEW_VALUE`, ...) the Job reads
  as environment variables, deleted with the Job afterwards, pass or fail;
- the Job's container has the database container's environment (its `POSTGRES_USER`, `MYSQL_USER`, ...)
  and security context, and reaches the database through its Service (`$STACKCTL_HOST`): the same
  scripts as locally (`stackctl.secrets.dbrotate`), over the network;
- its pod carries the database's labels, so the stack's NetworkPolicies admit it as they admit the
  database's peers, and a readiness probe that never passes, so the database's Service never routes to
  it; being owned by the Job, it is adopted by no StatefulSet.

Only when the Job succeeded for every target is the value stored (a new version, the old one kept);
a failure changes back the targets already switched and stores nothing.
"""

from __future__ import annotations

import base64
import contextlib
import secrets as _random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stackctl.errors import InputError
from stackctl.kubernetes import names as k
from stackctl.kubernetes.client import Cluster, Ref
from stackctl.kubernetes.labels import L_INSTANCE, L_MANAGED_BY, L_NAME
from stackctl.secrets.dbrotate import Target, exec_env, find_targets, switch_script

if TYPE_CHECKING:
    from stackctl.kubernetes.deploy.commands import Terminal
    from stackctl.profile.types import Profile

L_ROTATION = "stackctl.io/rotation"  # the run a temporary Secret and Job belong to
POLL = 1.0


@dataclass
class KubeInPlace:
    name: str
    version: int
    was: int
    targets: list[Target]
    switched: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def job_objects(target: Target, *, namespace: str, run: str, pod: Mapping[str, Any], host: str,
                env: Mapping[str, str], timeout: float, script: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The temporary Secret with the values and the Job that runs `script` against the database (pure)."""
    base = f"stackctl-rotate-{run}-{k.dns_label(target.service) or 'db'}"[:52].rstrip("-")
    labels = {**{key: v for key, v in (pod.get("metadata", {}).get("labels") or {}).items()
                 if key in (L_INSTANCE, L_NAME)}, L_MANAGED_BY: "stackctl", L_ROTATION: run}
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": base, "namespace": namespace, "labels": {L_MANAGED_BY: "stackctl",
                                                                            L_ROTATION: run}},
              "data": {key: base64.b64encode(value.encode("utf-8")).decode("ascii") for key, value in env.items()}}
    spec = pod.get("spec", {})
    db = (spec.get("containers") or [{}])[0]
    container: dict[str, Any] = {
        "name": "rotate", "image": db.get("image"), "command": ["sh", "-c", script],
        "env": [*(e for e in db.get("env") or () if not str(e.get("name", "")).startswith("STACKCTL_")),
                {"name": "STACKCTL_HOST", "value": host},
                *({"name": key, "valueFrom": {"secretKeyRef": {"name": base, "key": key}}} for key in env)],
        # never Ready: the database's Service, whose selector these labels match, never routes to it
        "readinessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 3600},
    }
    for key in ("envFrom", "securityContext", "imagePullPolicy", "workingDir"):
        if db.get(key):
            container[key] = db[key]
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container],
                                "automountServiceAccountToken": False}
    for key in ("securityContext", "imagePullSecrets", "serviceAccountName", "nodeSelector", "tolerations"):
        if spec.get(key):
            pod_spec[key] = spec[key]
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": base, "namespace": namespace, "labels": labels},
           "spec": {"backoffLimit": 0, "activeDeadlineSeconds": int(timeout), "ttlSecondsAfterFinished": 600,
                    "template": {"metadata": {"labels": labels}, "spec": pod_spec}}}
    return secret, job


def rotate_in_place(prof: Profile, name: str, *, requested: str | None, yes: bool, term: Terminal,
                    timeout: float = 300.0) -> KubeInPlace:
    """Change the value inside the running database(s) with a Job each, then store it."""
    from stackctl.kubernetes.deploy import commands
    from stackctl.secrets import ops

    template = ops.template_if_any(prof)
    targets = find_targets(prof, template, [name])[name]
    if not targets:
        raise InputError(f"{name} initialises no data volume that stackctl knows of: a plain rotation is safe",
                         field="NAME", hint=f"run `stackctl secrets rotate {name} -p {prof.name}`, then promote")
    for t in targets:
        switch_script(t)  # fails now, before anything changed, when there is no way to do it
    cluster, ctx = commands.connect(prof, requested)
    try:
        release = commands.release_of(prof, commands.stack_name(prof))
        services = ", ".join(dict.fromkeys(t.service for t in targets))
        commands.confirm(prof, ctx, cluster.server, yes, term,
                         action=f"change {name} inside {services}, then promote")
        pods = {t.service: _running_pod(cluster, release.namespace, release.stack, t.service, prof) for t in targets}
        run = _random.token_hex(3)
        attempts = iter(range(2 * len(targets)))  # one Job name per switch and per switch back

        def switch(t: Target, undo: bool, old: str, new: str) -> tuple[bool, str, str]:
            ok, output = _run_job(cluster, t, release.namespace, f"{run}{'u' if undo else ''}{next(attempts)}",
                                  pods[t.service], exec_env(t, name, old, new), timeout=timeout)
            return ok, output, ""

        stored = ops.switch_then_store(
            prof, name, targets, template, switch=switch,
            announce=lambda t: term.info(f"changing {name} inside {t.service} ({t.how}, a Job of its image)"))
        switched = stored.switched
        result = KubeInPlace(name, stored.version, stored.was, targets, switched)
        for t in targets:
            if switched.get(t.service) == "retained" and t.kind in ("mysql", "mariadb"):
                result.notes.append(f"the old value of {name} stays valid in {t.service} (RETAIN CURRENT PASSWORD) "
                                    "until `ALTER USER ... DISCARD OLD PASSWORD` there (not automated on "
                                    "Kubernetes yet)")
        return result
    finally:
        cluster.close()


def _running_pod(cluster: Cluster, namespace: str, stack: str, service: str, prof: Profile) -> dict[str, Any]:
    pods, _ = cluster.list(cluster.kind("v1", "Pod"), namespace,
                           selector=f"{L_INSTANCE}={stack},{L_NAME}={k.label_value(k.dns_label(service) or service)}")
    ready = [p for p in pods if not p["metadata"].get("deletionTimestamp")
             and p.get("status", {}).get("phase") == "Running"
             and not (p["metadata"].get("labels") or {}).get(L_ROTATION)]
    if not ready:
        raise InputError(f"{service} has no running pod in namespace {namespace}: the value can only be changed "
                         "inside the running database", field="NAME",
                         hint=f"promote it first (`stackctl promote {prof.name}`), then rotate again; nothing was "
                              "changed")
    return ready[0]


def _run_job(cluster: Cluster, target: Target, namespace: str, run: str, pod: Mapping[str, Any],
             env: Mapping[str, str], *, timeout: float, script: str | None = None) -> tuple[bool, str]:
    """Create the Secret and the Job, wait for the Job, return (succeeded, its log); both deleted after."""
    host = k.dns_label(target.service) or target.service
    secret, job = job_objects(target, namespace=namespace, run=run, pod=pod, host=host, env=env, timeout=timeout,
                              script=script or switch_script(target))
    refs = [Ref.of(job), Ref.of(secret)]
    try:
        cluster.apply(secret)
        cluster.apply(job)
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            current = cluster.get(refs[0]) or {}
            status = current.get("status") or {}
            if status.get("succeeded") or status.get("failed"):
                break
            time.sleep(POLL)
        log = _job_log(cluster, namespace, job["metadata"]["name"])
        if status.get("succeeded"):
            return True, log
        what = "failed" if status.get("failed") else f"did not finish within {timeout:g}s"
        return False, f"Job {job['metadata']['name']} {what}: {log}"
    finally:
        for ref in refs:
            with contextlib.suppress(Exception):  # best effort: the Job's TTL removes it (and its pod) anyway
                cluster.delete(ref)


def _job_log(cluster: Cluster, namespace: str, job: str) -> str:
    pods, _ = cluster.list(cluster.kind("v1", "Pod"), namespace, selector=f"job-name={job}")
    for pod in pods:
        text = cluster.pod_log(namespace, pod["metadata"]["name"], "rotate", tail=40)
        if text:
            return text
    return ""


__all__ = ["KubeInPlace", "job_objects", "rotate_in_place"]
