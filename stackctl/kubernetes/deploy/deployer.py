"""Deploy a stack to a cluster: apply, wait for it, prune, record a revision.

The steps of one deploy (`Deployer.deploy`, one method each), shared by promote, rollback and
`--atomic`:

1. the Namespace (phase 0), then start watching the namespace's workloads and events;
2. read the ApplySet parent, the revisions and the live objects (one list per kind);
3. write the ApplySet parent with the union of old and new group-kinds (so an interrupted run can
   still be pruned later), then apply phase by phase (`apply.phases`), waiting for the Jobs a
   later wave depends on before that wave;
4. wait for every workload (watches; `--timeout` covers steps 3-4), stopping early when a pod of
   the new revision cannot become ready by itself (`watch.blocker`, unless `fail_fast` is off);
5. prune (`prune`): delete the objects labelled as this stack's ApplySet that the new set no longer has —
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

import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from stackctl.errors import OperationError
from stackctl.kubernetes import apply as ka
from stackctl.kubernetes.apply import Applied
from stackctl.kubernetes.client import BY_GROUP_KIND, Cluster, Kind, Ref
from stackctl.kubernetes.deploy import argo, bluegreen, canary, diagnose, prune
from stackctl.kubernetes.deploy import history as kh
from stackctl.kubernetes.deploy.watch import QuietView, View, Watcher
from stackctl.kubernetes.labels import COLOURS, L_APPLYSET_PART_OF, L_STACK

WAITED = ("Deployment", "StatefulSet", "DaemonSet", "Job", "Rollout")
PARALLEL = 8
Key = tuple[str, str, str]  # `Ref.key`


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
    elapsed: float = 0.0  # since the command started (`Deployer.started`), not just this deploy
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
# Deploying
# ---------------------------------------------------------------------------------------------
@dataclass
class Attempt:
    """What one deploy knows as it goes through its steps (see the module docstring)."""

    desired: list[dict[str, Any]]  # stack members; after `_plan_strategies`, with colours and canaries held
    result: Result
    extra_delete: frozenset[Key] = frozenset()  # --atomic: what the failed attempt created
    watcher: Watcher | None = None  # None in a dry run
    live_ns: dict[str, Any] | None = None
    parent: dict[str, Any] | None = None
    revs: list[kh.Revision] = field(default_factory=list)
    live: dict[Key, dict[str, Any]] = field(default_factory=dict)
    members: dict[Key, dict[str, Any]] = field(default_factory=dict)
    bg: bluegreen.BlueGreenPlan = field(default_factory=lambda: bluegreen.BlueGreenPlan(objects=[]))
    cn: canary.CanaryPlan = field(default_factory=lambda: canary.CanaryPlan(objects=[]))
    workloads: list[Ref] = field(default_factory=list)
    new_kinds: list[str] = field(default_factory=list)
    ns_exists: bool = False
    deadline: float = 0.0


class Deployer:
    """`started` (on `clock`): when the command began, so `Result.elapsed` is what the user waited
    (image builds, rendering and connecting included); `provenance` goes on every revision recorded."""

    def __init__(self, cluster: Cluster, release: kh.Release, *, view: View | None = None,
                 options: Options = Options(), context: str = "", started: float | None = None,
                 clock: Callable[[], float] = time.monotonic, provenance: kh.Provenance = kh.NO_PROVENANCE) -> None:
        self.cluster = cluster
        self.release = release
        self.view: View = view or QuietView()
        self.options = options
        self.context = context or cluster.context
        self.clock = clock
        self.started = started
        self.provenance = provenance
        self.pool = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="apply")

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    # -- reading the cluster -----------------------------------------------------------------------
    def snapshot(self, desired: Sequence[Mapping[str, Any]], parent_kinds: Sequence[str]
                 ) -> tuple[dict[Key, dict[str, Any]], dict[Key, dict[str, Any]]]:
        """(every live object of the kinds involved, by key; those of them in this stack's ApplySet)."""
        ns = self.release.namespace
        kinds: dict[str, Kind] = {}
        for obj in desired:
            if obj["kind"] != "Namespace":
                k = self.cluster.kind_of(obj)
                kinds[k.group_kind] = k
        for gk in parent_kinds:
            if gk not in kinds and gk in BY_GROUP_KIND:
                kinds[gk] = BY_GROUP_KIND[gk]
        lists = list(self.pool.map(lambda k: self.cluster.list(k, ns)[0], kinds.values()))
        live: dict[Key, dict[str, Any]] = {}
        for items in lists:
            for item in items:
                live[Ref.of(item).key] = item
        applyset = self.release.applyset_id
        members = {key: obj for key, obj in live.items()
                   if ((obj.get("metadata") or {}).get("labels") or {}).get(L_APPLYSET_PART_OF) == applyset}
        return live, members

    # -- the deploy ------------------------------------------------------------------------------
    def deploy(self, objects: Sequence[Mapping[str, Any]], *, description: str,
               extra_delete: frozenset[Key] = frozenset()) -> Result:
        """Apply `objects` (rendered, or a stored revision's), wait, prune, record (see module doc)."""
        t0 = self.started if self.started is not None else self.clock()
        desired = [kh.member(o, self.release) for o in objects]
        run = Attempt(desired=desired, result=Result(release=self.release, dry_run=self.options.dry_run),
                      extra_delete=extra_delete, workloads=[Ref.of(o) for o in desired if o["kind"] in WAITED])
        self.view.phase("reading the cluster")
        run.watcher = self._watch(run)
        try:
            self._read_live(run)
            self._plan_strategies(run)
            self._apply_phases(run)
            if run.watcher is not None:
                self.view.phase(f"waiting for {_names(run.workloads)} to roll out")
                self._wait(run, run.workloads)
            for one in run.cn.canaries:
                self._canary(run, one)
            self._switch(run)
            self.view.phase("pruning")
            self._prune(run)
            if not self.options.dry_run:
                self.view.phase("recording the revision")
                self._record(run, description)
            return run.result
        finally:
            run.result.elapsed = self.clock() - t0
            if run.watcher is not None:
                run.watcher.close()

    def _watch(self, run: Attempt) -> Watcher | None:
        """Step 1: follow the namespace's events and workloads from now on (the lists run meanwhile)."""
        if self.options.dry_run:
            return None
        desired = run.desired
        names = [r.name for r in run.workloads]
        names += [f"{bluegreen.base_name(o)}-{c}" for o in desired for c in COLOURS
                  if bluegreen.colour_of(o) and o["kind"] == "Deployment"]
        names += [f"{Ref.of(o).name}-canary" for o in desired if canary.steps_of(o)]
        watcher = Watcher(self.cluster, self.release.namespace, selector=self.release.member_selector, view=self.view,
                          event_names=names, pod_selector=pod_selector(desired), fail_fast=self.options.fail_fast)
        watcher.start_events()
        watcher.follow({r.kind for r in run.workloads})
        return watcher

    def _read_live(self, run: Attempt) -> None:
        """Step 2: what is there: the ApplySet parent, the revisions, the live objects."""
        release = self.release
        run.live_ns = self.cluster.get(Ref(kind="Namespace", name=release.namespace, api_version="v1"))
        if run.live_ns is None:  # a new namespace holds nothing of ours
            return
        parent_f = self.pool.submit(kh.read_parent, self.cluster, release)
        revs_f = self.pool.submit(kh.revisions, self.cluster, release)
        run.live, run.members = self.snapshot(run.desired, [])
        run.parent, run.revs = parent_f.result(), revs_f.result()
        listed = {Ref.of(o).group_kind for o in run.desired}
        more = [gk for gk in kh.parent_group_kinds(run.parent) if gk not in listed]
        if more:  # kinds only earlier promotes had: their objects may need pruning
            extra_live, extra_members = self.snapshot([], more)
            run.live.update(extra_live)
            run.members.update(extra_members)

    def _plan_strategies(self, run: Attempt) -> None:
        """Blue-green colours and canary steps, from what is live (`bluegreen`, `canary`)."""
        run.bg = bluegreen.plan(run.desired, run.live, finalize=self.options.finalize)
        run.cn = canary.plan(run.bg.objects, run.live)
        run.desired = run.cn.objects
        run.workloads = [Ref.of(o) for o in run.desired
                         if o["kind"] in WAITED and Ref.of(o).key not in run.cn.held]
        for note in run.bg.notes:
            self.view.note(note)

    def _apply_phases(self, run: Attempt) -> None:
        """Step 3: the Namespace, the ApplySet parent, then phase by phase (`apply.phases`), waiting
        for the Jobs a later wave depends on. Services that switch colour and held stable
        Deployments are left for later."""
        opts, release, result = self.options, self.release, run.result
        ns_objs = [o for o in run.desired if o["kind"] == "Namespace"]
        if not ns_objs and run.live_ns is None:
            raise OperationError(f"namespace {release.namespace} does not exist and the stack does not create it")
        ns_key = Ref(kind="Namespace", name=release.namespace, api_version="v1").key
        result.applied += ka.apply_objects(self.cluster, ns_objs, {ns_key: run.live_ns} if run.live_ns else {},
                                           force=opts.force_conflicts, dry_run=opts.dry_run,
                                           on_applied=self.view.applied)
        run.ns_exists = run.live_ns is not None or not opts.dry_run
        run.new_kinds = kh.group_kinds(run.desired)
        if run.ns_exists:
            kh.write_parent(self.cluster, release, {*kh.parent_group_kinds(run.parent), *run.new_kinds},
                            dry_run=opts.dry_run)
        # --timeout covers applying and waiting; canary pauses come on top
        run.deadline = time.monotonic() + opts.timeout + sum(s.pause for c in run.cn.canaries for s in c.steps) + sum(
            argo.pauses(o) for o in run.desired if o["kind"] == argo.KIND)
        later = run.bg.switch | run.cn.held
        for phase in ka.phases([o for o in run.desired if Ref.of(o).key not in later]):
            if phase.name == "namespace":
                continue
            self.view.phase(f"applying {phase.name.replace('workloads-', 'workloads, wave ')}")
            if not run.ns_exists:  # dry run into a namespace that does not exist yet: nothing to ask
                for obj in phase.objects:
                    item = Applied(ref=Ref.of(obj), action="created", result=obj)
                    result.applied.append(item)
                    self.view.applied(item)
                continue
            to_apply = [argo.for_live(o, run.live.get(Ref.of(o).key)) for o in phase.objects]
            result.applied += ka.apply_objects(self.cluster, to_apply, run.live, force=opts.force_conflicts,
                                               dry_run=opts.dry_run, pool=self.pool, on_applied=self.view.applied)
            if phase.await_jobs and run.watcher is not None:
                self.view.note(f"waiting for {', '.join(str(j) for j in phase.await_jobs)} to complete")
                self.view.phase(f"waiting for {_names(phase.await_jobs)} to complete")
                self._wait(run, phase.await_jobs)
        if not run.ns_exists:
            result.notes.append(f"namespace {release.namespace} does not exist yet: the objects in it were "
                                "not validated by the server")

    def _switch(self, run: Attempt) -> None:
        """Blue-green: every workload is ready, now the Services switch colour."""
        held = [o for o in run.desired if Ref.of(o).key in run.bg.switch]
        if not held:
            return
        opts = self.options
        run.result.applied += ka.apply_objects(self.cluster, held, run.live, force=opts.force_conflicts,
                                               dry_run=opts.dry_run, pool=self.pool, on_applied=self.view.applied)
        for obj in held:
            self.view.note(f"{Ref.of(obj)}: switched to {bluegreen.colour_of(obj)}")

    def _prune(self, run: Attempt) -> None:
        """Step 5 (`prune`): a blue-green service's other colour is kept until --finalize."""
        result, opts = run.result, self.options
        keep = {Ref.of(o).key for o in run.desired} | (run.bg.keep - run.extra_delete)
        result.deleted, result.kept = prune.select(run.members, keep, prune=opts.prune,
                                                   extra_delete=run.extra_delete)
        prune.delete(self.cluster, result.deleted, pool=self.pool, dry_run=opts.dry_run)
        for ref in result.deleted:
            self.view.deleted(ref, "would prune" if opts.dry_run else "pruned")
        for ref in result.kept:
            self.view.deleted(ref, "kept")
        result.changed = any(a.action != "unchanged" for a in result.applied) or bool(result.deleted)

    def _record(self, run: Attempt, description: str) -> None:
        """Step 6: shrink the parent's group-kinds, record the revision (none when nothing changed)."""
        result, release = run.result, self.release
        kept_kinds = {r.group_kind for r in result.kept}
        if set(kh.parent_group_kinds(run.parent)) != {*run.new_kinds, *kept_kinds}:
            kh.write_parent(self.cluster, release, {*run.new_kinds, *kept_kinds})
        cur = kh.current(run.revs)
        same_as_current = cur is not None and _canonical(cur.objects()) == _canonical(run.desired)
        if result.changed or not same_as_current:
            result.revision = kh.record(self.cluster, release, run.desired, status="deployed",
                                        description=description, context=self.context,
                                        summary=result.summary(), previous=run.revs, provenance=self.provenance)
        elif cur is not None:
            result.revision = cur.number

    def _canary(self, run: Attempt, one: canary.Canary) -> None:
        """Go through a canary service's steps, then roll its stable Deployment (see `canary`)."""
        opts, result, watcher = self.options, run.result, run.watcher
        stable = one.stable
        ref = Ref.of(one.canary(one.steps[0]))
        try:
            for i, step in enumerate(one.steps, 1):
                obj = kh.member(one.canary(step), self.release)
                applied = ka.apply_objects(self.cluster, [obj], run.live, force=opts.force_conflicts,
                                           dry_run=opts.dry_run, on_applied=self.view.applied)
                run.live[ref.key] = applied[0].result
                self.view.note(f"{ref}: step {i}/{len(one.steps)}: {step.weight}% — "
                               f"{one.canary_replicas(step)} canary beside {one.replicas} stable pod(s)"
                               + (f", pausing {step.pause}s" if step.pause else ""))
                if watcher is None:  # dry run
                    continue
                self._wait(run, [ref], extra=applied)
                end = time.monotonic() + step.pause
                # the step advances only while the canary is ready: when it is not, the pause waits for
                # it again (until the deadline); a deleted canary (`promote --abort`) ends the promote
                while (st := watcher.hold(ref, end)) is not None:
                    self.view.note(f"{ref}: not ready during the pause ({st.message})")
                    if not st.seen:
                        result.revision = kh.record(self.cluster, self.release, run.desired, status="failed",
                                                    description=f"aborted: {ref} deleted", context=self.context,
                                                    summary=result.summary(), previous=run.revs,
                                                    provenance=self.provenance)
                        raise RolloutFailed(f"the canary {ref} was deleted (promote --abort?) during step {i}",
                                            [], result)
                    self._wait(run, [ref])
            applied = ka.apply_objects(self.cluster, [stable], run.live, force=opts.force_conflicts,
                                       dry_run=opts.dry_run, on_applied=self.view.applied)
            result.applied += applied
            if watcher is not None:
                self._wait(run, [Ref.of(stable)])
        except RolloutFailed as exc:
            if self.cluster.delete(ref):
                self.view.deleted(ref, "deleted")
            exc.report.append(f"{ref}: the canary was deleted; {Ref.of(stable)} still runs the previous version")
            raise
        self.cluster.delete(ref, dry_run=opts.dry_run)
        self.view.deleted(ref, "would delete" if opts.dry_run else "deleted")

    def _wait(self, run: Attempt, targets: Sequence[Ref], extra: Sequence[Applied] = ()) -> None:
        """Step 4: wait for `targets`; on failure diagnose, record a failed revision, roll back with
        --atomic, and raise RolloutFailed."""
        watcher, result = run.watcher, run.result
        if not targets or watcher is None:
            return
        generations = {a.ref.key: int((a.result.get("metadata") or {}).get("generation") or 0)
                       for a in [*result.applied, *extra]}
        outcome = watcher.wait(targets, run.deadline, generations=generations)
        if outcome.ok:
            return
        stuck = outcome.failed + outcome.pending
        objs = [watcher.objects[s.ref.key] for s in stuck if s.ref.key in watcher.objects]
        messages = {s.ref.key: (s.failed or (f"{s.message} (timed out after {self.options.timeout:g}s)"
                                             if outcome.timed_out else s.message)) for s in stuck}
        report = diagnose.explain(self.cluster, objs, messages)
        report += [f"{s.ref}: {messages[s.ref.key]}" for s in stuck if s.ref.key not in watcher.objects]
        names = ", ".join(str(s.ref) for s in stuck[:4]) + (" ..." if len(stuck) > 4 else "")
        what = "failed" if outcome.failed else f"did not finish within {self.options.timeout:g}s"
        message = f"the rollout of {self.release.stack} {what}: {names}"
        if len(outcome.failed) == 1:  # why, in the error line itself (the report has every workload)
            message = f"the rollout of {self.release.stack} failed: {outcome.failed[0].ref}: {outcome.failed[0].failed}"
        result.revision = kh.record(self.cluster, self.release, run.desired, status="failed",
                                    description=f"failed: {names}", context=self.context, summary=result.summary(),
                                    previous=run.revs, provenance=self.provenance)
        rolled_back: int | None = None
        if self.options.atomic:
            had_previous = kh.current(run.revs) is not None
            back = self._atomic_rollback(result, run.revs)
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
        # recorded as what it deploys: the previous revision's commit, by whoever ran this promote
        source = replace(prev.provenance, author=self.provenance.author, message="")
        again = Deployer(self.cluster, self.release, view=self.view, context=self.context, clock=self.clock,
                         options=Options(prune=self.options.prune, timeout=self.options.timeout,
                                         force_conflicts=True, fail_fast=self.options.fail_fast),
                         provenance=source)
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


def _names(refs: Sequence[Ref]) -> str:
    return ", ".join(str(r) for r in refs[:3]) + (f" and {len(refs) - 3} more" if len(refs) > 3 else "")


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
    return sorted(json.dumps(o, sort_keys=True, separators=(",", ":")) for o in objects)

