"""Waiting for workloads to roll out, with watches (never sleep-polling), and the live view.

`status()` is kubectl's rollout-status logic as a pure function of one object (Deployment,
StatefulSet, DaemonSet, Job, CronJob). A `Watcher` lists each kind once and then watches it from
that resourceVersion (re-listing on 410 Gone), one thread per kind plus one for the namespace's
events, all feeding one queue; `wait()` consumes the queue until every target is done, one fails
(a Job's Failed condition, a Deployment's ProgressDeadlineExceeded) or the deadline passes.

The view goes to stderr: a live table on a terminal (per workload desired/updated/ready, the latest
events underneath), plain lines otherwise (a line per workload change and per warning event).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from stackctl.kubernetes import argo
from stackctl.kubernetes.apply import KINDS, Applied, ApiError, Cluster, Kind, Ref

if TYPE_CHECKING:
    from rich.console import Console

WATCHED = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Rollout")
JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_POD_SELECTOR = "batch.kubernetes.io/job-name"
_NORMAL_REASONS_SHOWN = ("ScalingReplicaSet", "Completed", "SuccessfulCreate", "SuccessfulDelete")


# ---------------------------------------------------------------------------------------------
# Status of one workload (pure)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Status:
    ref: Ref
    desired: int | None = None
    updated: int = 0
    ready: int = 0
    done: bool = False
    failed: str | None = None  # why the controller gave up (the rollout cannot finish)
    message: str = ""
    seen: bool = True  # False until the object was observed at all

    @property
    def counts(self) -> str:
        desired = "-" if self.desired is None else str(self.desired)
        return f"{desired}/{self.updated}/{self.ready}"


def _cond(obj: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c  # type: ignore[no-any-return]
    return None


def status(obj: Mapping[str, Any], *, succeeded_pods: int | None = None) -> Status:
    """Whether one workload has rolled out, as `kubectl rollout status` decides it.

    For a Job, `succeeded_pods` (its pods in phase Succeeded, when known) counts too: the Job
    controller batches pod updates for a second before it writes the Complete condition, and a
    wave that waits for a migration should not pay that second. Only for plain Jobs, whose
    completion follows from the count alone (not Indexed, no success policy)."""
    ref = Ref.of(obj)
    kind = obj["kind"]
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    generation = int((obj.get("metadata") or {}).get("generation") or 0)
    if kind == "Rollout":  # Argo Rollouts: its controller's phase (observedGeneration is a string there)
        fields = argo.status_fields(obj)
        base = Status(ref, fields["desired"], fields["updated"], fields["ready"])
        return _with(base, done=fields["done"], failed=fields["failed"], message=fields["message"])
    observed = int(st.get("observedGeneration") or 0)
    if kind == "Deployment":
        desired = int(spec.get("replicas", 1))
        updated, ready = int(st.get("updatedReplicas") or 0), int(st.get("readyReplicas") or 0)
        available, total = int(st.get("availableReplicas") or 0), int(st.get("replicas") or 0)
        base = Status(ref, desired, updated, ready)
        if generation > observed:
            return _with(base, message="waiting for the controller to see the new spec")
        progressing = _cond(obj, "Progressing")
        if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
            return _with(base, failed=f"progress deadline exceeded: {progressing.get('message', '')}".strip())
        if updated < desired:
            return _with(base, message=f"{updated} of {desired} new replicas updated")
        if total > updated:
            return _with(base, message=f"{total - updated} old replicas pending termination")
        if total > desired:  # scaled down: kubectl calls this rolled out already; the pods are still there
            return _with(base, message=f"{total - desired} extra replicas terminating")
        if available < updated:
            return _with(base, message=f"{available} of {updated} updated replicas available")
        return _with(base, done=True, message="rolled out")
    if kind == "StatefulSet":
        desired = int(spec.get("replicas", 1))
        updated, ready = int(st.get("updatedReplicas") or 0), int(st.get("readyReplicas") or 0)
        base = Status(ref, desired, updated, ready)
        if observed == 0 or generation > observed:
            return _with(base, message="waiting for the controller to see the new spec")
        if ready < desired:
            return _with(base, message=f"{ready} of {desired} pods ready")
        if int(st.get("replicas") or 0) > desired:
            return _with(base, message=f"{int(st.get('replicas') or 0) - desired} extra pods terminating")
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return _with(base, done=True, message="ready (OnDelete: pods update when deleted)")
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        if partition:
            if updated < desired - partition:
                return _with(base, message=f"{updated} of {desired - partition} pods updated (partition {partition})")
            return _with(base, done=True, message="partitioned roll out complete")
        if st.get("updateRevision") and st.get("updateRevision") != st.get("currentRevision"):
            return _with(base, message=f"{updated} of {desired} pods at the new revision")
        return _with(base, done=True, message="rolled out")
    if kind == "DaemonSet":
        desired = int(st.get("desiredNumberScheduled") or 0)
        updated, ready = int(st.get("updatedNumberScheduled") or 0), int(st.get("numberReady") or 0)
        available = int(st.get("numberAvailable") or 0)
        base = Status(ref, desired, updated, ready)
        if generation > observed:
            return _with(base, message="waiting for the controller to see the new spec")
        if updated < desired:
            return _with(base, message=f"{updated} of {desired} pods updated")
        if available < desired:
            return _with(base, message=f"{available} of {desired} updated pods available")
        return _with(base, done=True, message="rolled out")
    if kind == "Job":
        completions = int(spec.get("completions") or 1)
        succeeded, active = int(st.get("succeeded") or 0), int(st.get("active") or 0)
        base = Status(ref, completions, succeeded, active)
        failed = _cond(obj, "Failed")
        if failed and failed.get("status") == "True":
            return _with(base, failed=f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}".rstrip(": "))
        complete = _cond(obj, "Complete")
        if complete and complete.get("status") == "True":
            return _with(base, done=True, message="completed")
        plain = spec.get("completionMode", "NonIndexed") == "NonIndexed" and not spec.get("successPolicy")
        if plain and succeeded_pods is not None and succeeded_pods >= completions:
            return _with(base, updated=succeeded_pods, done=True, message="completed (its pods succeeded)")
        return _with(base, message=f"{succeeded} of {completions} completed, {active} running")
    # CronJob (and anything else): nothing rolls out
    return Status(ref, None, 0, 0, done=True, message="scheduled" if kind == "CronJob" else "applied")


def _with(base: Status, **kw: Any) -> Status:
    return Status(**{**base.__dict__, **kw})


# ---------------------------------------------------------------------------------------------
# The view
# ---------------------------------------------------------------------------------------------
class View(Protocol):
    def note(self, text: str) -> None: ...
    def applied(self, item: Applied) -> None: ...
    def deleted(self, ref: Ref, what: str) -> None: ...
    def workload(self, st: Status) -> None: ...
    def event(self, ev: Mapping[str, Any]) -> None: ...
    def close(self) -> None: ...


def _event_line(ev: Mapping[str, Any]) -> str:
    obj = ev.get("involvedObject") or ev.get("regarding") or {}
    count = ev.get("count") or (ev.get("series") or {}).get("count")
    times = f" (x{count})" if count and int(count) > 1 else ""
    msg = " ".join(str(ev.get("message") or ev.get("note") or "").split())
    return f"{obj.get('kind', '?')}/{obj.get('name', '?')}: {ev.get('reason', '')}: {msg}{times}"


class LineView:
    """Plain lines on stderr: one per object applied or deleted, per workload change, per event
    worth reading (warnings, scaling, completions)."""

    def __init__(self, console: Console, *, start: float | None = None) -> None:
        self.console = console
        self.start = start if start is not None else time.monotonic()
        self.last: dict[tuple[str, str, str], str] = {}

    def _print(self, text: str) -> None:
        self.console.print(f"{time.monotonic() - self.start:6.1f}s  {text}", markup=False, highlight=False,
                           soft_wrap=True)

    def note(self, text: str) -> None:
        self._print(text)

    def applied(self, item: Applied) -> None:
        if item.action != "unchanged":
            self._print(f"{item.action:<10} {item.ref}")

    def deleted(self, ref: Ref, what: str) -> None:
        self._print(f"{what:<10} {ref}")

    def workload(self, st: Status) -> None:
        line = f"{'failed' if st.failed else 'ready' if st.done else 'waiting':<10} {st.ref}  " \
               f"desired/updated/ready {st.counts}  {st.failed or st.message}"
        if self.last.get(st.ref.key) != line:
            self.last[st.ref.key] = line
            self._print(line)

    def event(self, ev: Mapping[str, Any]) -> None:
        if ev.get("type") == "Warning" or ev.get("reason") in _NORMAL_REASONS_SHOWN:
            self._print(f"{'event':<10} {_event_line(ev)}")

    def close(self) -> None:
        pass


class LiveView(LineView):
    """A rich live table on a terminal: workloads with desired/updated/ready, the last events."""

    MAX_EVENTS = 8

    def __init__(self, console: Console, *, start: float | None = None) -> None:
        from rich.live import Live

        super().__init__(console, start=start)
        self.states: dict[tuple[str, str, str], Status] = {}
        self.events: list[str] = []
        self.notes: list[str] = []
        self.live = Live(self._render(), console=console, auto_refresh=False, transient=False)
        self.live.start()
        self._last_refresh = 0.0

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False, show_edge=False)
        for col in ("workload", "desired", "updated", "ready", "status"):
            table.add_column(col, no_wrap=col != "status")
        states = list(self.states.values())
        room = max(5, self.console.size.height - self.MAX_EVENTS - 8)
        done = [st for st in states if st.done]
        shown = states if len(states) <= room else [st for st in states if not st.done][:room]
        for st in shown:
            style = "red" if st.failed else "green" if st.done else "yellow"
            table.add_row(str(st.ref), "-" if st.desired is None else str(st.desired), str(st.updated),
                          str(st.ready), Text(st.failed or st.message, style=style))
        parts: list[Any] = [Text(n, style="dim") for n in self.notes[-3:]]
        parts.append(table)
        if len(shown) < len(states):  # a big stack: the finished ones as a count
            parts.append(Text(f"{len(done)} of {len(states)} workloads rolled out"
                              + (f", {len(states) - len(done) - len(shown)} more waiting not shown"
                                 if len(states) - len(done) > len(shown) else ""), style="green"))
        if self.events:
            parts.append(Text("events:", style="bold"))
            parts.extend(Text("  " + e, style="dim") for e in self.events[-self.MAX_EVENTS:])
        parts.append(Text(f"{time.monotonic() - self.start:.1f}s", style="dim"))
        return Group(*parts)

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_refresh > 0.1:
            self._last_refresh = now
            self.live.update(self._render(), refresh=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        self._refresh()

    def applied(self, item: Applied) -> None:
        pass

    def deleted(self, ref: Ref, what: str) -> None:
        self.notes.append(f"{what} {ref}")
        self._refresh()

    def workload(self, st: Status) -> None:
        self.states[st.ref.key] = st
        self._refresh()

    def event(self, ev: Mapping[str, Any]) -> None:
        self.events.append(_event_line(ev))
        self._refresh()

    def close(self) -> None:
        self._refresh(force=True)
        self.live.stop()


class QuietView:
    def note(self, text: str) -> None: ...
    def applied(self, item: Applied) -> None: ...
    def deleted(self, ref: Ref, what: str) -> None: ...
    def workload(self, st: Status) -> None: ...
    def event(self, ev: Mapping[str, Any]) -> None: ...
    def close(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# Watching
# ---------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    done: list[Status] = field(default_factory=list)
    failed: list[Status] = field(default_factory=list)
    pending: list[Status] = field(default_factory=list)
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.pending


class Watcher:
    """Watches a namespace's workloads (selected by label) and events until `close()`."""

    def __init__(self, cluster: Cluster, namespace: str, *, selector: str | None, view: View,
                 event_names: Iterable[str] = ()) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.selector = selector
        self.view = view
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.synced: set[str] = set()  # kinds whose first list has arrived
        self.watched: set[str] = set()
        self.prefixes: set[str] = set(event_names)
        self.job_pods: dict[str, dict[str, str]] = {}  # Job uid → pod name → phase
        self.events: list[dict[str, Any]] = []
        self._events_started = False

    # -- threads ---------------------------------------------------------------------------------
    def _thread(self, target: Any, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name=f"watch-{args[0] if args else ''}")
        t.start()
        self.threads.append(t)

    def start_events(self) -> None:
        """Start following the namespace's events from now on (call before applying)."""
        if self._events_started:
            return
        self._events_started = True
        kind = KINDS[("v1", "Event")]
        try:
            _, rv = self.cluster.list(kind, self.namespace, limit=1)
        except ApiError:
            return
        self._thread(self._run_events, "events", kind, rv)

    def _run_events(self, _name: str, kind: Kind, rv: str) -> None:
        while not self.stop.is_set():
            try:
                for etype, obj in self.cluster.watch(kind, self.namespace, rv, stop=self.stop, timeout=50):
                    if etype == "ERROR":
                        _, rv = self.cluster.list(kind, self.namespace, limit=1)
                        break
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if etype in ("ADDED", "MODIFIED"):
                        self.queue.put(("event", obj))
            except Exception as exc:  # noqa: BLE001 - a lost event stream only costs the live view
                if self.stop.wait(0.5):
                    return
                self.queue.put(("note", f"event stream interrupted ({exc}); resuming"))

    def ensure(self, kinds: Iterable[str]) -> None:
        for kind_name in kinds:
            if kind_name in self.watched:
                continue
            self.watched.add(kind_name)
            kind = next(k for k in KINDS.values() if k.kind == kind_name)
            self._thread(self._run_kind, kind_name, kind)

    def _run_kind(self, _name: str, kind: Kind) -> None:
        rv = ""
        # Pods are watched only for Jobs (see `status`): every pod a Job controller made.
        selector = JOB_POD_SELECTOR if kind.kind == "Pod" else self.selector
        while not self.stop.is_set():
            try:
                if not rv:
                    items, rv = self.cluster.list(kind, self.namespace, selector=selector)
                    self.queue.put(("list", (kind.kind, items)))
                for etype, obj in self.cluster.watch(kind, self.namespace, rv, selector=selector,
                                                     stop=self.stop, timeout=50):
                    if etype == "ERROR":  # 410 Gone: our resourceVersion is too old; list again
                        rv = ""
                        break
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if etype == "BOOKMARK":
                        continue
                    self.queue.put((etype, obj))
            except Exception as exc:  # noqa: BLE001 - re-list and go on: a watch may drop at any time
                if self.stop.wait(0.5):
                    return
                self.queue.put(("note", f"watch of {kind.kind} interrupted ({exc}); resuming"))
                rv = ""

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=2)

    # -- consuming ---------------------------------------------------------------------------------
    def _handle(self, item: tuple[str, Any]) -> list[tuple[str, str, str]]:
        """Apply one queue item; returns the keys of workloads that changed."""
        what, payload = item
        if what == "event":
            name = str((payload.get("involvedObject") or {}).get("name", ""))
            if any(name == p or name.startswith(p + "-") for p in self.prefixes):
                self.events.append(payload)
                self.view.event(payload)
            return []
        if what == "note":
            self.view.note(str(payload))
            return []
        if what == "list":
            kind_name, items = payload
            self.synced.add(kind_name)
            keys = []
            for obj in items:
                keys += self._store("ADDED", obj)
            return keys
        return self._store(what, payload)

    def _store(self, what: str, payload: dict[str, Any]) -> list[tuple[str, str, str]]:
        if payload.get("kind") == "Pod":
            labels = (payload.get("metadata") or {}).get("labels") or {}
            uid = labels.get(JOB_UID_LABEL) or labels.get("controller-uid")
            if not uid:
                return []
            pods = self.job_pods.setdefault(uid, {})
            name = payload["metadata"]["name"]
            if what == "DELETED":
                pods.pop(name, None)
            else:
                pods[name] = str((payload.get("status") or {}).get("phase", ""))
            return [key for key, obj in self.objects.items()
                    if obj.get("kind") == "Job" and obj["metadata"].get("uid") == uid]
        key = Ref.of(payload).key
        if what == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = payload
        return [key]

    def hold(self, target: Ref, until: float) -> Status | None:
        """Follow `target` (already rolled out) until `until` (time.monotonic): the first status in
        which it is no longer rolled out (deleted, or pods no longer ready), or None when it stayed
        rolled out throughout. A canary step's pause."""
        self.ensure({target.kind})
        while (remaining := until - time.monotonic()) > 0:
            try:
                item = self.queue.get(timeout=remaining)
            except queue.Empty:
                break
            if target.key not in self._handle(item):
                continue
            obj = self.objects.get(target.key)
            st = status(obj) if obj is not None else Status(target, message="deleted", seen=False)
            if not st.done:
                self.view.workload(st)
                return st
        return None

    def wait(self, targets: Sequence[Ref], deadline: float, *,
             generations: Mapping[tuple[str, str, str], int] | None = None) -> Outcome:
        """Block until every target is done, one fails, or `deadline` (time.monotonic) passes.

        `generations`: per target, the metadata.generation the apply returned. Until the watch
        delivers at least that generation, what it holds is the object from before the apply (which
        may look rolled out), so it does not count."""
        self.prefixes.update(t.name for t in targets)
        kinds = {t.kind for t in targets if t.kind in WATCHED}
        self.ensure(kinds | ({"Pod"} if "Job" in kinds else set()))
        wanted = {t.key: t for t in targets if t.kind in WATCHED}
        expected = generations or {}
        states: dict[tuple[str, str, str], Status] = {}

        def refresh(keys: Iterable[tuple[str, str, str]]) -> None:
            for key in keys:
                if key not in wanted:
                    continue
                obj = self.objects.get(key)
                if obj is None:
                    st = Status(wanted[key], message="not created yet", seen=False)
                elif int(obj.get("metadata", {}).get("generation") or 0) < expected.get(key, 0):
                    st = Status(wanted[key], message="waiting for the new spec to show up", seen=False)
                elif obj.get("kind") == "Job" and "Pod" in self.synced:
                    pods = self.job_pods.get(str(obj["metadata"].get("uid")), {})
                    st = status(obj, succeeded_pods=sum(1 for ph in pods.values() if ph == "Succeeded"))
                else:
                    st = status(obj)
                if states.get(key) != st:
                    states[key] = st
                    if wanted[key].kind in self.synced:  # before its first list, "not created" means nothing
                        self.view.workload(st)

        refresh(wanted)
        while True:
            all_synced = all(t.kind in self.synced for t in wanted.values())
            if all_synced:
                failed = [s for s in states.values() if s.failed]
                if failed or all(s.done for s in states.values()):
                    return Outcome(done=[s for s in states.values() if s.done], failed=failed,
                                   pending=[s for s in states.values() if not s.done and not s.failed])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Outcome(done=[s for s in states.values() if s.done],
                               failed=[s for s in states.values() if s.failed],
                               pending=[s for s in states.values() if not s.done and not s.failed], timed_out=True)
            try:
                item = self.queue.get(timeout=remaining)
            except queue.Empty:
                continue
            changed = self._handle(item)
            while True:  # drain what is already there before re-evaluating
                try:
                    changed += self._handle(self.queue.get_nowait())
                except queue.Empty:
                    break
            refresh(changed)
