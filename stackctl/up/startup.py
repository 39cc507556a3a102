"""Health-gated start-up: start each service the moment what it waits for is satisfied.

Docker runs a container's first healthcheck one `interval` after it starts (30 s by default), so
`docker compose up --wait` learns that a service is healthy tens of seconds after it was. Here each
container with a healthcheck is probed by running that same healthcheck command in it (`docker
exec`, CMD or CMD-SHELL exactly as Docker would run it, each probe bounded by the check's timeout)
at a short cadence from the moment it starts. A service is healthy as soon as one probe passes (or
Docker itself says so); it is unhealthy once `start_period + retries * interval` has passed without
one (or Docker says so first). One-shot services are done when they exit 0.

Probes are also set off by the container itself: when the project can watch a container's output
(the Engine API's log stream), a burst of output (PostgreSQL's "database system is ready to accept
connections", uvicorn's "Uvicorn running on ...") is followed by a probe once it has been quiet for
`OUTPUT_SETTLE`. Services usually say so when they become ready, so one is noticed about one `docker
exec` after it is, while the regular cadence stays sparse enough not to slow down the very start-up it
waits for. Output-triggered probes that keep failing back off (0.03, 0.06, 0.12 s ... up to the regular
pause), so a service that logs every probe it answers (an access log) is not probed in a loop.

Scheduling is event-driven, not in waves: the main thread owns all state; one worker thread per
container starts it (`docker start`, which unlike `docker compose start` does not wait on the
dependencies' Docker health) and probes it, posting results to a queue; the main thread also
inspects every started container (exit codes, restarts, Docker's own health): at once when Docker
reports an exit, restart or health change (`docker events`, when the project can watch them), and
every `POLL_SECONDS` (every `WATCHED_POLL_SECONDS` with events) in any case; and it starts every
waiting service whose `depends_on` conditions are now met, the moment they are (when several can,
those that more services wait on go first: the engine starts containers largely one at a time).
Optional dependencies never gate. The first failure (a dependency exits non-zero, becomes unhealthy, keeps
restarting, or the overall `--timeout` passes) stops the start-up: probing stops, nothing more is
started, running containers are left as they are (as Compose leaves them).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from stackctl.compose import cli as docker_cli
from stackctl.compose.engine import abort_execs
from stackctl.compose.project import ContainerState, HealthcheckSpec, LocalProject, ProbeResult
from stackctl.errors import OperationError
from stackctl.up.plan import Plan

UnitState = Literal["waiting", "starting", "probing", "running", "healthy", "done", "failed", "stopped"]
Goal = Literal["healthy", "completed", "running"]

POLL_SECONDS = 0.25  # how often started containers are inspected
WATCHED_POLL_SECONDS = 1.0  # the same when Docker's events say at once when something happens
OUTPUT_SETTLE = 0.03  # probe once a container's output has been quiet this long (first back-off step) ...
OUTPUT_WAIT = 0.2  # ... or this long after it began, if it goes on
LOG_LINES = 20


def probe_pause(since_start: float) -> float:
    """Pause between two probes of one container: short while a service is likely to come up any
    moment (Redis, a static server: well under 2 s), longer later, so that slow starters (a database
    initialising its data directory) are not slowed down by our own probes. A probe costs a `docker
    exec` (CLI, runc, the check's own process): ~0.1 s of CPU on a 2-core machine."""
    if since_start < 2:
        return 0.2
    if since_start < 15:
        return 0.5
    return 1.0


@dataclass
class Tracked:
    """One container of a unit, as the main thread sees it."""

    state: ContainerState
    started: bool = False  # it has been running since we started it (or was already running)
    healthy: bool = False
    exited: int | None = None
    started_at: float | None = None  # monotonic
    restart_base: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)  # stop, or output to probe on
    output_at: float | None = None  # monotonic: when it last wrote something (when watched)
    quick: int = 0  # output-triggered probes in a row that failed (their back-off)
    last_probe: ProbeResult | None = None
    probes: int = 0

    def halt(self) -> None:
        """Ask its worker to stop (a pause between probes ends at once)."""
        self.stop.set()
        self.wake.set()


@dataclass
class Failure:
    service: str
    kind: str  # exited | unhealthy | restarting | start | timeout | removed | error
    reason: str
    container: str | None = None
    probe_command: str | None = None
    probe: ProbeResult | None = None
    docker_output: str = ""
    logs: list[str] = field(default_factory=list)
    waiters: list[tuple[str, str]] = field(default_factory=list)  # direct dependents, their condition
    blocked: list[str] = field(default_factory=list)  # dependents that never started
    kept: list[str] = field(default_factory=list)  # dependents not started now, still running from before

    def to_data(self) -> dict[str, Any]:
        return {
            "service": self.service, "kind": self.kind, "reason": self.reason, "container": self.container,
            "probe": None if self.probe is None and not self.probe_command else {
                "command": self.probe_command,
                "exit_code": self.probe.exit_code if self.probe else None,
                "output": self.probe.output if self.probe else "",
            },
            "docker_health_output": self.docker_output or None,
            "logs": self.logs,
            "waiting_on_it": [{"service": s, "condition": c} for s, c in self.waiters],
            "not_started": self.blocked,
            "left_running": self.kept,
        }


@dataclass
class Unit:
    """One service being brought up."""

    name: str
    goal: Goal
    gates: tuple[Any, ...]  # model Dependency objects this unit waits for
    containers: list[Tracked]
    state: UnitState = "waiting"
    detail: str = ""
    started_at: float | None = None  # relative to the run's start
    ready_at: float | None = None
    settled_at: float | None = None  # when it became ready, failed or was stopped
    recreated: bool = False
    created: bool = False
    failure: Failure | None = None

    @property
    def ready(self) -> bool:
        """Reached its goal: healthy, done (exit 0), or running when it has neither healthcheck nor end."""
        return self.state in ("healthy", "done") or (self.state == "running" and self.goal == "running")

    @property
    def healthcheck(self) -> HealthcheckSpec | None:
        return next((t.state.healthcheck for t in self.containers if t.state.healthcheck), None)

    @property
    def probes(self) -> int:
        return sum(t.probes for t in self.containers)

    def to_data(self) -> dict[str, Any]:
        return {"service": self.name, "state": self.state, "goal": self.goal,
                "containers": [t.state.name for t in self.containers],
                "started_at": _round(self.started_at), "ready_at": _round(self.ready_at),
                "probes": self.probes, "recreated": self.recreated, "created": self.created,
                "detail": self.detail}


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


class View(Protocol):
    def changed(self, run: Startup, unit: Unit) -> None: ...
    def tick(self, run: Startup) -> None: ...
    def close(self, run: Startup) -> None: ...


@dataclass
class Event:
    kind: str  # started | start_failed | probe | expired | broken | error | docker (an engine event)
    container: str
    at: float
    probe: ProbeResult | None = None
    message: str = ""


class Startup:
    """Bring the plan's services up against a project whose containers already exist."""

    def __init__(self, project: LocalProject, plan: Plan, containers: Sequence[ContainerState], *,
                 timeout: float, view: View, action: Literal["start", "restart"] = "start",
                 stop_timeouts: dict[str, float | None] | None = None, t0: float | None = None,
                 clock: Callable[[], float] = time.monotonic, restart: Collection[str] = ()) -> None:
        self.project = project
        self.plan = plan
        self.timeout = timeout
        self.view = view
        self.action = action
        self.restart = frozenset(restart)  # services restarted rather than kept (depends_on.restart)
        self.stop_timeouts = stop_timeouts or {}
        self.clock = clock
        self.t0 = clock() if t0 is None else t0  # times are shown relative to this (the command's start)
        self.deadline = self.t0 + timeout
        self.events: queue.Queue[Event] = queue.Queue()
        self.timeline: list[dict[str, Any]] = []
        self.units: dict[str, Unit] = {}
        self.by_id: dict[str, tuple[Unit, Tracked]] = {}
        self.threads: list[threading.Thread] = []
        self.failures: list[Failure] = []
        self.finished_at: float | None = None
        self.poll_due = False  # an engine event says: inspect now
        self.dirty: set[str] = set()  # the containers those events were about (inspected first, alone)
        self._unwatch: Callable[[], None] | None = None
        self.depth = plan.chain_depths()  # the longest chain of services waiting on each (0: none)
        for name in plan.services:
            mine = [Tracked(state=c) for c in containers if c.service == name]
            hc = next((c.healthcheck for c in containers if c.service == name and c.healthcheck), None)
            goal: Goal = "completed" if name in plan.one_shot else "healthy" if hc else "running"
            unit = Unit(name=name, goal=goal, gates=tuple(plan.gates.get(name, ())), containers=mine)
            self.units[name] = unit
            for t in mine:
                self.by_id[t.state.id] = (unit, t)

    # ------------------------------------------------------------------ public
    @property
    def elapsed(self) -> float:
        return (self.finished_at if self.finished_at is not None else self.clock()) - self.t0

    @property
    def ok(self) -> bool:
        return not self.failures and all(u.ready for u in self.units.values())

    def run(self) -> bool:
        """Run to the end; True when every service reached its goal. Ctrl-C stops it cleanly
        (probes stopped, no docker child left) and re-raises KeyboardInterrupt."""
        try:
            self._loop()
        except KeyboardInterrupt:
            self._halt(kill_now=True)
            for unit in self.units.values():
                if not unit.ready and unit.state != "failed":
                    self._set(unit, "stopped", "interrupted")
            self.finished_at = self.clock()
            raise
        finally:
            self._halt(kill_now=False)
            if self.finished_at is None:
                self.finished_at = self.clock()
        return self.ok

    def to_data(self) -> dict[str, Any]:
        return {"ok": self.ok, "elapsed": round(self.elapsed, 3),
                "services": [u.to_data() for u in self.units.values()],
                "timeline": self.timeline,
                "failures": [f.to_data() for f in self.failures]}

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        for unit in self.units.values():
            if not unit.containers:  # scaled to 0: nothing to wait for
                unit.ready_at = 0.0
                self._set(unit, "done", "no containers (scaled to 0)")
        watch = getattr(self.project, "watch", None)
        if watch is not None:
            # before the first start: no exit is missed. The exit a `docker restart` causes is not
            # mistaken for a failure: only containers that (re)started are inspected (`_poll`).
            self._unwatch = watch(self._on_engine_event)
        every = POLL_SECONDS if self._unwatch is None else WATCHED_POLL_SECONDS
        next_poll = 0.0
        while True:
            self._launch_ready()
            now = self.clock()
            if now >= next_poll:
                self.poll_due = False
                self.dirty.clear()
                self._poll()
                next_poll = self.clock() + every
                self._launch_ready()  # what the poll settled may unblock others: start them now
            elif self.poll_due:  # an exit, restart or health change: inspect just those containers
                self.poll_due = False
                dirty, self.dirty = self.dirty, set()
                self._poll(only=dirty)
                self._launch_ready()
            if self.failures:
                return
            if all(u.ready for u in self.units.values()):
                return
            if now >= self.deadline:
                self._timed_out()
                return
            self.view.tick(self)
            wait = max(0.0, min(next_poll - self.clock(), 0.1))
            try:
                event = self.events.get(timeout=wait)
            except queue.Empty:
                continue
            self._apply(event)
            while True:  # drain what else arrived
                try:
                    self._apply(self.events.get_nowait())
                except queue.Empty:
                    break

    def _on_engine_event(self, container: str, action: str) -> None:
        """From the events thread: an exit, restart, removal or health change of one of ours."""
        if container in self.by_id:
            self.events.put(Event("docker", container, self.clock(), message=action))

    def _rel(self, t: float | None = None) -> float:
        return (self.clock() if t is None else t) - self.t0

    def _set(self, unit: Unit, state: UnitState, detail: str = "") -> None:
        changed = unit.state != state or unit.detail != detail
        unit.state, unit.detail = state, detail
        if changed:
            if unit.ready and unit.ready_at is None:
                unit.ready_at = self._rel()
            if (unit.ready or state in ("failed", "stopped")) and unit.settled_at is None:
                unit.settled_at = self._rel()
            self.timeline.append({"t": round(self._rel(), 3), "service": unit.name, "state": state,
                                  "detail": detail})
            self.view.changed(self, unit)

    # ------------------------------------------------------------------ dependencies
    def satisfied(self, dep: Any) -> bool:
        other = self.units.get(dep.service)
        if other is None:  # not in this run (e.g. `restart`): assumed to be running
            return True
        if dep.condition == "service_completed_successfully":
            return other.state == "done"
        if dep.condition == "service_healthy":
            return other.state == "healthy" or (other.state == "done" and not other.containers)
        return other.state in ("probing", "running", "healthy", "done")

    def waiting_on(self, unit: Unit) -> list[str]:
        short = {"service_started": "started", "service_healthy": "healthy",
                 "service_completed_successfully": "done"}
        return [f"{d.service} ({short.get(d.condition, d.condition)})" for d in unit.gates if not self.satisfied(d)]

    def _launch_ready(self) -> None:
        ready = []
        for unit in self.units.values():
            if unit.state != "waiting":
                continue
            pending = self.waiting_on(unit)
            if pending:
                # still running from an earlier `up` (config unchanged): said, so a failure that stops
                # the start-up here does not look as if it had never started
                before = "running from before; " if any(t.state.running for t in unit.containers) else ""
                detail = before + "waiting on " + ", ".join(pending)
                if detail != unit.detail:
                    self._set(unit, "waiting", detail)
                continue
            ready.append(unit)
        # The engine starts containers largely one at a time (two at once take about as long as one
        # after the other): when several may start, those with longer chains of services waiting on
        # them go first, the others right after their `docker start` returned.
        names = {u.name for u in ready}
        for unit in ready:
            ahead = [u.name for u in self.units.values() if self.depth[u.name] > self.depth[unit.name]
                     and (u.state == "starting" or (u.name in names and u.state == "waiting"))]
            if ahead:
                detail = f"waiting on the docker start of {', '.join(ahead)} (longer chains first)"
                if detail != unit.detail:
                    self._set(unit, "waiting", detail)
                continue
            self._launch(unit)

    def _launch(self, unit: Unit) -> None:
        unit.started_at = self._rel()
        restart = self._restarts(unit.name)
        needs_start = {id(t) for t in unit.containers if restart or not t.state.running}
        for t in unit.containers:
            t.restart_base = t.state.restart_count
            if id(t) not in needs_start:  # already running (re-`up`): keep it, check its health
                t.started, t.started_at = True, self.clock()
                if t.state.health == "healthy":
                    t.healthy = True
        if needs_start:
            self._set(unit, "starting", "docker restart" if restart else "docker start")
        else:  # all already running (re-`up`): go straight to what they are now
            unit.state, unit.detail = "probing", "already running"
        for t in unit.containers:
            probe = unit.goal == "healthy" and not t.healthy
            if id(t) in needs_start or probe:
                thread = threading.Thread(target=self._work, args=(t, id(t) in needs_start, probe),
                                          name=f"stackctl-{t.state.name}", daemon=True)
                self.threads.append(thread)
                thread.start()
        self._evaluate(unit)

    def _restarts(self, service: str) -> bool:
        return self.action == "restart" or service in self.restart

    # ------------------------------------------------------------------ worker (one per container)
    def _work(self, t: Tracked, start: bool, probe: bool) -> None:
        c = t.state
        post = self.events.put
        try:
            if start:
                try:
                    if self._restarts(c.service):
                        self.project.restart(c, stop_timeout=self.stop_timeouts.get(c.service))
                    else:
                        self.project.start(c)
                except OperationError as exc:
                    post(Event("start_failed", c.id, self.clock(), message=str(exc)))
                    return
                began = self.clock()
                post(Event("started", c.id, began))
            else:
                began = self.clock()
            hc = c.healthcheck
            if not probe or hc is None:
                return
            deadline = began + hc.bound
            watch = getattr(self.project, "watch_output", None)
            unwatch = watch(c, lambda: self._output(t)) if watch is not None else None
            try:
                while not t.stop.is_set():
                    probe_began = self.clock()  # output from here on (during the probe too) calls for another
                    result = self.project.probe(c, hc)
                    if t.stop.is_set():
                        return
                    post(Event("probe", c.id, self.clock(), probe=result))
                    if result.ok:
                        return
                    if result.cannot_run:
                        post(Event("broken", c.id, self.clock(), probe=result))
                        return
                    if self.clock() >= deadline:
                        post(Event("expired", c.id, self.clock(), probe=result))
                        return
                    self._pause(t, began, probe_began)
            finally:
                if unwatch is not None:
                    unwatch()
        except Exception as exc:  # never die silently: the main thread reports it
            if not t.stop.is_set():
                post(Event("error", c.id, self.clock(), message=f"{type(exc).__name__}: {exc}"))

    def _output(self, t: Tracked) -> None:
        """From an output-watching thread: the container wrote something; its prober probes soon."""
        t.output_at = self.clock()
        t.wake.set()

    def _pause(self, t: Tracked, began: float, probe_began: float) -> None:
        """Between two probes of one container: `probe_pause`, or less when it writes output (see the
        module doc); a stop ends it at once."""
        end = self.clock()
        pause = probe_pause(end - began)
        deadline = end + pause
        first: float | None = None  # when output since the probe began was first seen
        while not t.stop.is_set():
            now = self.clock()
            out = t.output_at
            target = deadline
            if out is not None and out >= probe_began:
                first = now if first is None else first
                quiet = min(out + OUTPUT_SETTLE, first + OUTPUT_WAIT)  # quiet again, or going on
                target = min(deadline, max(quiet, end + min(pause, OUTPUT_SETTLE * 2 ** t.quick)))
            if now >= target:
                break
            t.wake.clear()
            if t.output_at != out or t.stop.is_set():  # arrived between the read and the clear
                continue
            t.wake.wait(target - now)
        t.quick = t.quick + 1 if first is not None else 0

    # ------------------------------------------------------------------ state updates
    def _apply(self, event: Event) -> None:
        found = self.by_id.get(event.container)
        if found is None:
            return
        unit, t = found
        if unit.state in ("failed", "stopped"):
            return
        if event.kind == "started":
            t.started, t.started_at = True, event.at
        elif event.kind == "start_failed":
            self._fail(unit, t, "start", event.message)
        elif event.kind == "error":
            self._fail(unit, t, "error", event.message)
        elif event.kind == "probe" and event.probe is not None:
            t.probes += 1
            t.last_probe = event.probe
            if event.probe.ok:
                t.healthy = True
        elif event.kind == "docker":
            self.poll_due = True
            self.dirty.add(event.container)
            return
        elif event.kind == "broken":
            t.last_probe = event.probe
            self._fail(unit, t, "unhealthy", "its healthcheck command cannot run in the container")
        elif event.kind == "expired":
            t.last_probe = event.probe or t.last_probe
            hc = t.state.healthcheck
            assert hc is not None
            self._fail(unit, t, "unhealthy",
                       f"healthcheck did not pass within {hc.bound:g} s of start "
                       f"(start_period {hc.start_period:g} s + {hc.retries} retries × interval {hc.interval:g} s)")
        self._evaluate(unit)

    def _poll(self, only: set[str] | None = None) -> None:
        watched = [t for u in self.units.values() if u.state not in ("failed", "stopped") for t in u.containers
                   if t.started and (only is None or t.state.id in only)]
        if not watched:
            return
        fresh = {c.id: c for c in self.project.inspect([t.state.id for t in watched])}
        for t in watched:
            unit = self.by_id[t.state.id][0]
            c = fresh.get(t.state.id)
            if c is None:
                self._fail(unit, t, "removed", "its container was removed while starting")
                continue
            t.state = c
            if c.status in ("exited", "dead") and t.exited is None:
                t.exited = c.exit_code
                t.halt()
            elif c.status == "restarting" or (c.running and c.restart_count > t.restart_base):
                self._fail(unit, t, "restarting",
                           f"crashed (exit code {c.exit_code}) and is being restarted by Docker")
                continue
            if c.health == "healthy":
                t.healthy = True
            elif c.health == "unhealthy" and not t.healthy and unit.goal == "healthy":
                self._fail(unit, t, "unhealthy", "Docker reports it unhealthy")
                continue
            self._evaluate(unit)

    def _evaluate(self, unit: Unit) -> None:
        """Recompute a launched unit's state from its containers."""
        if unit.state in ("waiting", "failed", "stopped"):
            return
        ts = unit.containers
        for t in ts:
            if t.exited is None:
                continue
            if unit.goal == "healthy":  # a long-running service must not stop while the stack comes up
                when = "after it was healthy" if t.healthy else "before its healthcheck passed"
                self._fail(unit, t, "exited", f"exited with code {t.exited} {when}")
                return
            if t.exited != 0:
                self._fail(unit, t, "exited", f"exited with code {t.exited}")
                return
        if not all(t.started or t.exited is not None for t in ts):
            return
        if all(t.exited == 0 for t in ts):
            self._set(unit, "done", "exit 0")
            return
        if unit.goal == "completed":
            self._set(unit, "running", "running to completion")
            return
        if unit.goal == "healthy":
            if all(t.healthy for t in ts):
                n = unit.probes
                self._set(unit, "healthy", f"probe passed ({n} probe{'s' if n != 1 else ''})" if n
                          else "healthy (Docker)")
            else:
                last = next((t.last_probe for t in ts if t.last_probe and not t.healthy), None)
                self._set(unit, "probing", f"probe {unit.probes}: {last.describe()}" if last else
                          "already running" if unit.detail == "already running" else "running its healthcheck")
            return
        self._set(unit, "running", "started (no healthcheck)")

    # ------------------------------------------------------------------ failure
    def _fail(self, unit: Unit, t: Tracked | None, kind: str, reason: str) -> None:
        if unit.state in ("failed", "stopped"):
            return
        hc = (t.state.healthcheck if t else None) or unit.healthcheck
        failure = Failure(service=unit.name, kind=kind, reason=reason,
                          container=t.state.name if t else None,
                          probe_command=hc.shown if hc and unit.goal == "healthy" else None,
                          probe=t.last_probe if t else None,
                          docker_output=t.state.health_output if t else "",
                          waiters=list(self.plan.waiters(unit.name)))
        unit.failure = failure
        self.failures.append(failure)
        self._set(unit, "failed", reason)

    def _timed_out(self) -> None:
        busy = [u for u in self.units.values() if u.state in ("starting", "probing")
                or (u.state == "running" and u.goal == "completed")]
        if not busy:  # only waiting ones left: blame what they wait for
            busy = [u for u in self.units.values() if u.state == "waiting"][:1]
        for unit in busy:
            t = next((t for t in unit.containers if not t.healthy and t.exited is None), None)
            self._fail(unit, t, "timeout", f"still {unit.state} after {self.timeout:g} s (--timeout)")

    def _halt(self, *, kill_now: bool) -> None:
        """Stop every worker: ask, give in-flight `docker start`s a moment, then kill what is left."""
        for unit in self.units.values():
            for t in unit.containers:
                t.halt()
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        alive = [th for th in self.threads if th.is_alive()]
        if not alive:
            return
        if not kill_now:
            deadline = time.monotonic() + 1.0
            for th in alive:
                th.join(max(0.0, deadline - time.monotonic()))
        docker_cli.kill_children()
        abort_execs()
        for th in alive:
            th.join(5)

    def collect_report(self) -> None:
        """Fill in what a failure report shows: log tails and who was left waiting."""
        for f in self.failures:
            unit = self.units[f.service]
            t = next((t for t in unit.containers if t.state.name == f.container), None) or \
                (unit.containers[0] if unit.containers else None)
            if t is not None:
                try:
                    f.logs = self.project.log_tail(t.state, LOG_LINES)
                except OperationError:
                    f.logs = []
            # A dependent still waiting was not started by this run; but its container may be running
            # from an earlier `up` (not recreated: its config did not change), and it is left running,
            # as Compose leaves it. Only those with nothing running are "not started".
            waiting = [n for n in self.plan.dependents(f.service) if self.units[n].state == "waiting"]
            running = self._running(waiting)
            f.blocked = [n for n in waiting if n not in running]
            f.kept = [n for n in waiting if n in running]

    def _running(self, names: Sequence[str]) -> set[str]:
        """Those of `names` that have a container running now (inspected afresh)."""
        ids = [t.state.id for n in names for t in self.units[n].containers]
        try:
            fresh = self.project.inspect(ids)
        except OperationError:
            fresh = [t.state for n in names for t in self.units[n].containers]
        return {c.service for c in fresh if c.running}
