"""`stackctl run-job`: a Job from a CronJob, now (what `kubectl create job --from=cronjob/NAME` makes),
followed with promote's watches until it completes or fails; a failure is diagnosed.

The Job is owned by the CronJob (deleted with it, not a member of the stack's ApplySet, so prune
leaves it to the CronJob's history limits and `ttlSecondsAfterFinished`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stackctl.errors import InputError, OperationError
from stackctl.kubernetes import names as k
from stackctl.kubernetes.client import Cluster, Ref
from stackctl.kubernetes.deploy import diagnose
from stackctl.kubernetes.deploy import history as kh
from stackctl.kubernetes.deploy.watch import QuietView, View, Watcher
from stackctl.kubernetes.labels import A_SERVICE, L_INSTANCE, L_NAME


@dataclass
class JobRun:
    job: Ref
    cronjob: Ref
    ok: bool
    elapsed: float
    report: list[str] = field(default_factory=list)
    message: str = ""

    def as_data(self) -> dict[str, Any]:
        return {"job": str(self.job), "cronjob": str(self.cronjob), "ok": self.ok, "message": self.message,
                "elapsed_seconds": round(self.elapsed, 2), "report": self.report}


def find_cronjob(cluster: Cluster, release: kh.Release, name: str) -> dict[str, Any]:
    """The stack's CronJob for a Compose service or CronJob name."""
    kind = cluster.kind_of({"apiVersion": "batch/v1", "kind": "CronJob"})
    items, _ = cluster.list(kind, release.namespace, selector=release.member_selector)
    for item in items:
        meta = item.get("metadata") or {}
        if name in (meta.get("name"), (meta.get("annotations") or {}).get(A_SERVICE)):
            return {"apiVersion": "batch/v1", "kind": "CronJob", **item}
    names = sorted((i.get("metadata") or {}).get("annotations", {}).get(A_SERVICE) or i["metadata"]["name"]
                   for i in items)
    raise InputError(f"no CronJob {name!r} of stack {release.stack} in namespace {release.namespace} "
                     f"(CronJobs: {', '.join(names) or 'none'})", hint="promote the stack first, or check the name")


def job_from(cronjob: Mapping[str, Any], *, now: float) -> dict[str, Any]:
    """The Job `kubectl create job --from=cronjob/<name>` would create (named after the time)."""
    meta = cronjob["metadata"]
    template = cronjob["spec"]["jobTemplate"]
    suffix = f"manual-{int(now * 1000) % 10**9}"
    name = k.with_suffix(meta["name"], suffix)
    tmeta = template.get("metadata") or {}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": meta.get("namespace", ""),
                         "labels": dict(tmeta.get("labels") or {}),
                         "annotations": {**(tmeta.get("annotations") or {}),
                                         "cronjob.kubernetes.io/instantiate": "manual"},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": meta["name"],
                                              "uid": meta["uid"], "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": template["spec"]}


def run(cluster: Cluster, release: kh.Release, name: str, *, timeout: float, view: View | None = None) -> JobRun:
    view = view or QuietView()
    t0 = time.monotonic()
    cron = find_cronjob(cluster, release, name)
    job = job_from(cron, now=time.time())
    labels = job["metadata"]["labels"]
    if not labels.get(L_INSTANCE) or not labels.get(L_NAME):
        raise OperationError(f"{Ref.of(cron)} has no stackctl labels on its job template; promote it again")
    selector = f"{L_INSTANCE}={labels[L_INSTANCE]},{L_NAME}={labels[L_NAME]}"  # the Job and its pods
    watcher = Watcher(cluster, release.namespace, selector=selector, view=view, event_names=[job["metadata"]["name"]])
    try:
        watcher.start_events()
        watcher.ensure({"Job", "Pod"})
        created = cluster.apply(job)
        ref = Ref.of(job)
        view.note(f"created {ref} from {Ref.of(cron)}")
        generation = int((created.get("metadata") or {}).get("generation") or 0)
        outcome = watcher.wait([ref], time.monotonic() + timeout, generations={ref.key: generation})
        if outcome.ok:
            return JobRun(job=ref, cronjob=Ref.of(cron), ok=True, elapsed=time.monotonic() - t0, message="complete")
        stuck = outcome.failed + outcome.pending
        messages = {s.ref.key: s.failed or (f"{s.message} (timed out after {timeout:g}s)" if outcome.timed_out
                                            else s.message) for s in stuck}
        objs = [watcher.objects[s.ref.key] for s in stuck if s.ref.key in watcher.objects]
        report = diagnose.explain(cluster, objs, messages)
        what = "failed" if outcome.failed else f"did not finish within {timeout:g}s"
        return JobRun(job=ref, cronjob=Ref.of(cron), ok=False, elapsed=time.monotonic() - t0, report=report,
                      message=what)
    finally:
        watcher.close()
