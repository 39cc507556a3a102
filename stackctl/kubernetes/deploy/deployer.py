"""Promote: apply a rendered stack to a cluster, wait for it, prune, record a revision; diff; rollback.

The steps of one deploy (`Deployer.deploy`), shared by promote, rollback and `--atomic`:

1. the Namespace (phase 0), then start watching the namespace's workloads and events;
2. read the ApplySet parent, the revisions and the live objects (one list per kind);
3. write the ApplySet parent with the union of old and new group-kinds (so an interrupted run can
   still be pruned later), then apply phase by phase (`apply.phases`), waiting for the Jobs a
   later wave depends on before that wave;
4. wait for every workload (watches; `--timeout` covers steps 3-4), stopping early when a pod of
   the new revision cannot become ready by itself (`rollout.blocker`, unless `fail_fast` is off);
5. prune: delete the objects labelled as this stack's ApplySet that the new set no longer has —
   except those annotated `stackctl.io/prune: "false"` (PersistentVolumeClaims: data);
6. shrink the parent's group-kinds, record the revision (none when nothing changed).

Blue-green and canary services change steps 3-5 (`bluegreen`, `canary`): a blue-green service's
Services switch colour only after step 4 and its other colour is not pruned; a canary service's
stable Deployment is applied only after its canary steps, between steps 4 and 5.

On failure the stuck workloads are diagnosed (`diagnose`), the attempt is recorded as a failed
revision, and with `atomic` the previous good revision is deployed again (objects the failed attempt
created are deleted), which is recorded too. Everything talks to the cluster through `Cluster`.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from stackctl.errors import InputError, OperationError
from stackctl.kubernetes import apply as ka
from stackctl.kubernetes import argo, bluegreen, canary
from stackctl.kubernetes import history as kh
from stackctl.kubernetes.apply import Applied, Cluster, Ref
from stackctl.kubernetes.labels import A_PRUNE, COLOURS, L_APPLYSET_PART_OF, L_STACK
from stackctl.kubernetes.rollout import QuietView, View, Watcher

WAITED = ("Deployment", "StatefulSet", "DaemonSet", "Job", "Rollout")
PARALLEL = 8


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    prune: bool = True
    atomic: bool = False
    timeout: float = 300.0
    force_conflicts: bool = False
    finalize: bool = False  # blue-green: remove the previous colour (see `bluegreen`)
    fail_fast: bool = True  # stop waiting once a pod cannot become ready by itself (see `rollout.blocker`)


@dataclass
class Result:
    release: kh.Release
    applied: list[Applied] = field(default_factory=list)
    deleted: list[Ref] = field(default_factory=list)
    kept: list[Ref] = field(default_factory=list)
    revision: int | None = None
    changed: bool = False
    elapsed: float = 0.0
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for a in self.applied if a.action == action)

    def summary(self) -> dict[str, Any]:
        return {"created": self.count("created"), "configured": self.count("configured"),
                "unchanged": self.count("unchanged"), "pruned": len(self.deleted), "kept": len(self.kept)}

    def as_data(self) -> dict[str, Any]:
        return {"stack": self.release.stack, "namespace": self.release.namespace, "revision": self.revision,
                "changed": self.changed, "dry_run": self.dry_run, "elapsed_seconds": round(self.elapsed, 2),
                **self.summary(),
                "objects": [{"ref": str(a.ref), "action": a.action} for a in self.applied],
                "pruned_objects": [str(r) for r in self.deleted], "kept_objects": [str(r) for r in self.kept]}


class RolloutFailed(OperationError):
    """Workloads did not roll out: `report` says why (the diagnosis), `result` what was applied."""

    def __init__(self, message: str, report: list[str], result: Result, *, rolled_back_to: int | None = None) -> None:
        self.report = report
        self.result = result
        self.rolled_back_to = rolled_back_to
        super().__init__(message)


# ---------------------------------------------------------------------------------------------
# Guard rails
# ---------------------------------------------------------------------------------------------
def choose_context(*, requested: str | None, profile_context: str | None, protected: bool, current: str | None,
                   profile_file: str) -> str:
    """The kubeconfig context to use. A protected profile goes only to the context it names."""
    if protected:
        target = requested or profile_context
        if target != profile_context:
            raise InputError(f"the profile is protected: it promotes only to context {profile_context!r}, "
                             f"not {target!r}", file=profile_file, field="kubernetes.context",
                             hint="drop --context, or use another profile")
        assert target is not None
        return target
    target = requested or profile_context or current
    if not target:
        raise InputError("no kubeconfig context: the profile names none and the kubeconfig has no current-context",
                         file=profile_file, field="kubernetes.context", hint="pass --context or set kubernetes.context")
    return target


# ---------------------------------------------------------------------------------------------
# Deploying
# ---------------------------------------------------------------------------------------------
def _annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


class Deployer:
    def __init__(self, cluster: Cluster, release: kh.Release, *, view: View | None = None,
                 options: Options = Options(), context: str = "") -> None:
        self.cluster = cluster
        self.release = release
        self.view: View = view or QuietView()
        self.options = options
        self.context = context or cluster.context
        self.pool = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="apply")

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    # -- reading the cluster -----------------------------------------------------------------------
    def snapshot(self, desired: Sequence[Mapping[str, Any]], parent_kinds: Sequence[str]
                 ) -> tuple[dict[tuple[str, str, str], dict[str, Any]], dict[tuple[str, str, str], dict[str, Any]]]:
        """(every live object of the kinds involved, by key; those of them in this stack's ApplySet)."""
        ns = self.release.namespace
        kinds: dict[str, ka.Kind] = {}
        for obj in desired:
            if obj["kind"] != "Namespace":
                k = self.cluster.kind_of(obj)
                kinds[k.group_kind] = k
        for gk in parent_kinds:
            if gk not in kinds and gk in ka.BY_GROUP_KIND:
                kinds[gk] = ka.BY_GROUP_KIND[gk]
        lists = list(self.pool.map(lambda k: self.cluster.list(k, ns)[0], kinds.values()))
        live: dict[tuple[str, str, str], dict[str, Any]] = {}
        for items in lists:
            for item in items:
                live[Ref.of(item).key] = item
        members = {key: obj for key, obj in live.items()
                   if ((obj.get("metadata") or {}).get("labels") or {}).get(L_APPLYSET_PART_OF) == self.release.applyset_id}
        return live, members

    # -- the deploy ------------------------------------------------------------------------------
    def deploy(self, objects: Sequence[Mapping[str, Any]], *, description: str,
               extra_delete: frozenset[tuple[str, str, str]] = frozenset()) -> Result:
        """Apply `objects` (rendered, or a stored revision's), wait, prune, record (see module doc)."""
        t0 = time.monotonic()
        opts = self.options
        release = self.release
        desired = [kh.member(o, release) for o in objects]
        result = Result(release=release, dry_run=opts.dry_run)
        workloads = [Ref.of(o) for o in desired if o["kind"] in WAITED]
        watcher: Watcher | None = None
        if not opts.dry_run:  # start following events and workloads now: the lists run meanwhile
            names = [r.name for r in workloads]
            names += [f"{bluegreen.base_name(o)}-{c}" for o in desired for c in COLOURS
                      if bluegreen.colour_of(o) and o["kind"] == "Deployment"]
            names += [f"{Ref.of(o).name}-canary" for o in desired if canary.steps_of(o)]
            watcher = Watcher(self.cluster, release.namespace, selector=release.member_selector, view=self.view,
                              event_names=names, pod_selector=pod_selector(desired), fail_fast=opts.fail_fast)
            watcher.start_events()
            watcher.follow({r.kind for r in workloads})
        try:
            ns_ref = Ref(kind="Namespace", name=release.namespace, api_version="v1")
            live_ns = self.cluster.get(ns_ref)
            if live_ns is not None:  # what is there: the ApplySet, the revisions, the live objects
                parent_f = self.pool.submit(kh.read_parent, self.cluster, release)
                revs_f = self.pool.submit(kh.revisions, self.cluster, release)
                live, members = self.snapshot(desired, [])
                parent, revs = parent_f.result(), revs_f.result()
                listed = {Ref.of(o).group_kind for o in desired}
                more = [gk for gk in kh.parent_group_kinds(parent) if gk not in listed]
                if more:  # kinds only earlier promotes had: their objects may need pruning
                    extra_live, extra_members = self.snapshot([], more)
                    live.update(extra_live)
                    members.update(extra_members)
            else:  # a new namespace holds nothing of ours
                parent, revs, live, members = None, [], {}, {}
            bg = bluegreen.plan(desired, live, finalize=opts.finalize)
            cn = canary.plan(bg.objects, live)
            desired = cn.objects
            workloads = [Ref.of(o) for o in desired if o["kind"] in WAITED and Ref.of(o).key not in cn.held]
            for note in bg.notes:
                self.view.note(note)
            ns_objs = [o for o in desired if o["kind"] == "Namespace"]
            if not ns_objs and live_ns is None:
                raise OperationError(f"namespace {release.namespace} does not exist and the stack does not create it")
            result.applied += ka.apply_objects(self.cluster, ns_objs, {ns_ref.key: live_ns} if live_ns else {},
                                               force=opts.force_conflicts, dry_run=opts.dry_run,
                                               on_applied=self.view.applied)
            ns_exists = live_ns is not None or not opts.dry_run
            new_kinds = kh.group_kinds(desired)
            if ns_exists:
                kh.write_parent(self.cluster, release, {*kh.parent_group_kinds(parent), *new_kinds},
                                dry_run=opts.dry_run)
            deadline = time.monotonic() + opts.timeout + sum(s.pause for r in cn.rollouts for s in r.steps) + sum(
                argo.pauses(o) for o in desired if o["kind"] == argo.KIND)
            held = [o for o in desired if Ref.of(o).key in bg.switch]
            for phase in ka.phases([o for o in desired if Ref.of(o).key not in bg.switch | cn.held]):
                if phase.name == "namespace":
                    continue
                if not ns_exists:  # dry run into a namespace that does not exist yet: nothing to ask
                    for obj in phase.objects:
                        item = Applied(ref=Ref.of(obj), action="created", result=obj)
                        result.applied.append(item)
                        self.view.applied(item)
                    continue
                to_apply = [argo.for_live(o, live.get(Ref.of(o).key)) for o in phase.objects]
                result.applied += ka.apply_objects(self.cluster, to_apply, live, force=opts.force_conflicts,
                                                   dry_run=opts.dry_run, pool=self.pool, on_applied=self.view.applied)
                if phase.await_jobs and watcher is not None:
                    self.view.note(f"waiting for {', '.join(str(j) for j in phase.await_jobs)} to complete")
                    self._wait(watcher, phase.await_jobs, deadline, result, desired, revs, extra_delete)
            if not ns_exists:
                result.notes.append(f"namespace {release.namespace} does not exist yet: the objects in it were "
                                    "not validated by the server")
            if watcher is not None:
                self._wait(watcher, workloads, deadline, result, desired, revs, extra_delete)
            for rollout in cn.rollouts:
                self._canary(watcher, rollout, live, deadline, result, desired, revs, extra_delete)
            if held:  # blue-green: every workload is ready, now the Services switch colour
                result.applied += ka.apply_objects(self.cluster, held, live, force=opts.force_conflicts,
                                                   dry_run=opts.dry_run, pool=self.pool,
                                                   on_applied=self.view.applied)
                for obj in held:
                    self.view.note(f"{Ref.of(obj)}: switched to {bluegreen.colour_of(obj)}")
            # prune (a blue-green service's other colour is kept until --finalize)
            keep_keys = {Ref.of(o).key for o in desired} | (bg.keep - extra_delete)
            for key, obj in sorted(members.items()):
                if key in keep_keys:
                    continue
                ref = Ref.of(obj)
                prunable = opts.prune or key in extra_delete
                if ref.kind == "Namespace" or _annotations(obj).get(A_PRUNE) == "false" or not prunable:
                    result.kept.append(ref)
                    continue
                result.deleted.append(ref)
            list(self.pool.map(lambda r: self.cluster.delete(r, dry_run=opts.dry_run), result.deleted))
            for ref in result.deleted:
                self.view.deleted(ref, "would prune" if opts.dry_run else "pruned")
            for ref in result.kept:
                self.view.deleted(ref, "kept")
            result.changed = any(a.action != "unchanged" for a in result.applied) or bool(result.deleted)
            if opts.dry_run:
                return result
            kept_kinds = {r.group_kind for r in result.kept}
            if set(kh.parent_group_kinds(parent)) != {*new_kinds, *kept_kinds}:
                kh.write_parent(self.cluster, release, {*new_kinds, *kept_kinds})
            cur = kh.current(revs)
            same_as_current = cur is not None and _canonical(cur.objects()) == _canonical(desired)
            if result.changed or not same_as_current:
                result.revision = kh.record(self.cluster, release, desired, status="deployed",
                                            description=description, context=self.context,
                                            summary=result.summary(), previous=revs)
            elif cur is not None:
                result.revision = cur.number
            return result
        finally:
            result.elapsed = time.monotonic() - t0
            if watcher is not None:
                watcher.close()

    def _canary(self, watcher: Watcher | None, rollout: canary.Rollout, live: dict[tuple[str, str, str], Any],
                deadline: float, result: Result, desired: Sequence[dict[str, Any]], revs: Sequence[kh.Revision],
                extra_delete: frozenset[tuple[str, str, str]]) -> None:
        """Go through a canary service's steps, then roll its stable Deployment (see `canary`)."""
        opts = self.options
        stable = rollout.stable
        ref = Ref.of(rollout.canary(rollout.steps[0]))
        try:
            for i, step in enumerate(rollout.steps, 1):
                obj = kh.member(rollout.canary(step), self.release)
                applied = ka.apply_objects(self.cluster, [obj], live, force=opts.force_conflicts,
                                           dry_run=opts.dry_run, on_applied=self.view.applied)
                live[ref.key] = applied[0].result
                self.view.note(f"{ref}: step {i}/{len(rollout.steps)}: {step.weight}% — "
                               f"{rollout.canary_replicas(step)} canary beside {rollout.replicas} stable pod(s)"
                               + (f", pausing {step.pause}s" if step.pause else ""))
                if watcher is None:  # dry run
                    continue
                self._wait(watcher, [ref], deadline, result, desired, revs, extra_delete, extra=applied)
                end = time.monotonic() + step.pause
                # the step advances only while the canary is ready: when it is not, the pause waits for
                # it again (until the deadline); a deleted canary (`promote --abort`) ends the promote
                while (st := watcher.hold(ref, end)) is not None:
                    self.view.note(f"{ref}: not ready during the pause ({st.message})")
                    if not st.seen:
                        result.revision = kh.record(self.cluster, self.release, desired, status="failed",
                                                    description=f"aborted: {ref} deleted", context=self.context,
                                                    summary=result.summary(), previous=revs)
                        raise RolloutFailed(f"the canary {ref} was deleted (promote --abort?) during step {i}",
                                            [], result)
                    self._wait(watcher, [ref], deadline, result, desired, revs, extra_delete)
            applied = ka.apply_objects(self.cluster, [stable], live, force=opts.force_conflicts,
                                       dry_run=opts.dry_run, on_applied=self.view.applied)
            result.applied += applied
            if watcher is not None:
                self._wait(watcher, [Ref.of(stable)], deadline, result, desired, revs, extra_delete)
        except RolloutFailed as exc:
            if self.cluster.delete(ref):
                self.view.deleted(ref, "deleted")
            exc.report.append(f"{ref}: the canary was deleted; {Ref.of(stable)} still runs the previous version")
            raise
        self.cluster.delete(ref, dry_run=opts.dry_run)
        self.view.deleted(ref, "would delete" if opts.dry_run else "deleted")

    def _wait(self, watcher: Watcher, targets: Sequence[Ref], deadline: float, result: Result,
              desired: Sequence[dict[str, Any]], revs: Sequence[kh.Revision],
              extra_delete: frozenset[tuple[str, str, str]], extra: Sequence[Applied] = ()) -> None:
        if not targets:
            return
        generations = {a.ref.key: int((a.result.get("metadata") or {}).get("generation") or 0)
                       for a in [*result.applied, *extra]}
        outcome = watcher.wait(targets, deadline, generations=generations)
        if outcome.ok:
            return
        stuck = outcome.failed + outcome.pending
        objs = [watcher.objects[s.ref.key] for s in stuck if s.ref.key in watcher.objects]
        messages = {s.ref.key: (s.failed or (f"{s.message} (timed out after {self.options.timeout:g}s)"
                                             if outcome.timed_out else s.message)) for s in stuck}
        from stackctl.kubernetes import diagnose

        report = diagnose.explain(self.cluster, objs, messages)
        report += [f"{s.ref}: {messages[s.ref.key]}" for s in stuck if s.ref.key not in watcher.objects]
        names = ", ".join(str(s.ref) for s in stuck[:4]) + (" ..." if len(stuck) > 4 else "")
        what = "failed" if outcome.failed else f"did not finish within {self.options.timeout:g}s"
        message = f"the rollout of {self.release.stack} {what}: {names}"
        if len(outcome.failed) == 1:  # why, in the error line itself (the report has every workload)
            message = f"the rollout of {self.release.stack} failed: {outcome.failed[0].ref}: {outcome.failed[0].failed}"
        failed_rev = kh.record(self.cluster, self.release, desired, status="failed",
                               description=f"failed: {names}", context=self.context, summary=result.summary(),
                               previous=revs)
        result.revision = failed_rev
        rolled_back: int | None = None
        if self.options.atomic:
            had_previous = kh.current(revs) is not None
            back = self._atomic_rollback(result, revs)
            if back is not None:
                rolled_back = back[0]
                message += f"; rolled back to revision {back[0]} (recorded as revision {back[1]})"
            elif had_previous:
                message += "; the rollback failed too"
            else:
                message += "; the objects it created were deleted (there was no earlier revision)"
        raise RolloutFailed(message, report + result.notes, result, rolled_back_to=rolled_back)

    def _atomic_rollback(self, failed: Result, revs: Sequence[kh.Revision]) -> tuple[int, int] | None:
        """Deploy the current good revision again; (its number, the new revision's) or None."""
        created = frozenset(a.ref.key for a in failed.applied if a.action == "created" and a.ref.kind != "Namespace")
        prev = kh.current(revs)
        if prev is None:
            for a in failed.applied:
                if a.ref.key in created:
                    self.cluster.delete(a.ref)
                    self.view.deleted(a.ref, "deleted")
            return None
        self.view.note(f"--atomic: rolling back to revision {prev.number}")
        again = Deployer(self.cluster, self.release, view=self.view, context=self.context,
                         options=Options(prune=self.options.prune, timeout=self.options.timeout,
                                         force_conflicts=True, fail_fast=self.options.fail_fast))
        try:
            back = again.deploy(prev.objects(), description=f"rollback to {prev.number} (atomic)",
                                extra_delete=created)
        except RolloutFailed as exc:  # the rollback itself did not roll out: say so, with its diagnosis
            failed.notes.append(f"the rollback to revision {prev.number} did not roll out either: {exc.message}")
            failed.notes.extend(exc.report)
            return None
        finally:
            again.close()
        return prev.number, back.revision if back.revision is not None else prev.number


def pod_selector(objects: Sequence[Mapping[str, Any]]) -> str | None:
    """The label selector of the stack's pods: the stack label its workloads' pod templates carry
    (pods do not carry the ApplySet label, which is on the workloads only). None when they carry none."""
    stacks = sorted({str(labels[L_STACK]) for o in objects if o.get("kind") in WAITED
                     for labels in [_template_labels(o)] if labels.get(L_STACK)})
    if not stacks:
        return None
    return f"{L_STACK}={stacks[0]}" if len(stacks) == 1 else f"{L_STACK} in ({','.join(stacks)})"


def _template_labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    template = (obj.get("spec") or {}).get("template") or {}
    return (template.get("metadata") or {}).get("labels") or {}


def _canonical(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    import json

    return sorted(json.dumps(o, sort_keys=True, separators=(",", ":")) for o in objects)


# ---------------------------------------------------------------------------------------------
# Diff
# ---------------------------------------------------------------------------------------------
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
    from stackctl.kubernetes.write import to_yaml

    return to_yaml(obj).splitlines(keepends=True)


def diff(cluster: Cluster, release: kh.Release, objects: Sequence[Mapping[str, Any]], *, prune: bool = True,
         force_conflicts: bool = False) -> tuple[list[str], int]:
    """Unified diffs of every object against the live cluster (a server-side dry run), the objects
    prune would delete included. Returns (diff lines, number of objects that differ)."""
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
    for obj, after in zip(desired, afters):
        ref = Ref.of(obj)
        before = live.get(ref.key) if ref.kind != "Namespace" else (cluster.get(ref) if exists else None)
        a, b = ka.normalized(before), ka.normalized(after)
        if a == b:
            continue
        differ += 1
        name = f"{ref.kind}/{ref.name}" + (f" -n {ref.namespace}" if ref.namespace else "")
        out += difflib.unified_diff(_yaml(_masked(a, b)), _yaml(_masked(b, a)), fromfile=f"live/{name}",
                                    tofile=f"promote/{name}")
    keep = {Ref.of(o).key for o in desired}
    if prune:
        for key, obj in sorted(members.items()):
            if key in keep or key in bg.keep or _annotations(obj).get(A_PRUNE) == "false":
                continue
            differ += 1
            ref = Ref.of(obj)
            out += difflib.unified_diff(_yaml(_masked(ka.normalized(obj), None)), [],
                                        fromfile=f"live/{ref.kind}/{ref.name}", tofile="/dev/null (pruned)")
    return out, differ
