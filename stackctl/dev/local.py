"""The local dev loop (`stackctl up --watch`): after the health-gated `up`, the stack's `develop.watch`
rules are watched and each coalesced batch of edits applied to the running containers, as `docker
compose watch` does, on top of stackctl's health gate.

Per batch and service, in Compose's order:

- `rebuild`: the image built and the container recreated from it in one Compose run (`up --no-start
  --build --force-recreate --no-deps`; its output kept, shown when it fails, and then the running
  container is left as it was), the new one started health-gated, and the services that declare
  `depends_on: {SERVICE: {restart: true}}` restarted once it is healthy again (as `up` does);
- `sync`, `sync+restart`, `sync+exec`: the changed files copied into every running container of
  the service (one tar archive through the Engine API, `docker cp -` without it), deleted ones
  removed (`rm -rf` in the container, as Compose);
- `restart`, `sync+restart`: the container restarted, then health-gated with its dependents
  (`stackctl restart`'s path);
- `sync+exec`: the rule's `exec.command` run in each container after the sync.

Nothing here prints: each action comes back as a `Step` (what fired, what was done, how long until
the service was healthy again) for the caller to show.
"""

from __future__ import annotations

import functools
import io
import os
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from stackctl.dev.rules import Change, WatchRule, initial_files
from stackctl.errors import OperationError, StackctlError

if TYPE_CHECKING:
    from stackctl.compose.project import ContainerState, LocalProject
    from stackctl.dev.watcher import Batch
    from stackctl.pipeline import LoadedStack
    from stackctl.up.startup import Startup, Unit

BUILD_TAIL = 25  # lines of a failed build's output shown


@dataclass(frozen=True)
class Step:
    """One action of the loop, as the live view shows it: one line (plus `detail` on failure)."""

    service: str
    action: str  # sync | rebuild | restart | sync+restart | sync+exec | initial sync
    where: tuple[str, ...]  # the rules that fired ("compose.yaml: services.api.develop.watch[0]")
    what: str  # what was done: "2 files to /app/src: app.py, util.py", "built, recreated, healthy"
    ok: bool
    seconds: float  # from the batch being seen to the end of the action (healthy again, when gated)
    detail: tuple[str, ...] = ()  # a failed build's output, a failure's reason and log lines
    restarted: tuple[str, ...] = ()  # dependents restarted (depends_on restart: true)

    def line(self) -> str:
        status = "" if self.ok else "FAILED: "
        rules = ", ".join(self.where)
        return f"{self.service}  {self.action}  {status}{self.what} ({self.seconds:.2f} s)  [{rules}]"


class _Quiet:
    """A start-up view that shows nothing: the loop reports each action as one `Step` instead."""

    def changed(self, run: Startup, unit: Unit) -> None:
        pass

    def tick(self, run: Startup) -> None:
        pass

    def close(self, run: Startup) -> None:
        pass


@dataclass
class LocalLoop:
    loaded: LoadedStack
    rules: Sequence[WatchRule]
    project: LocalProject
    on_step: Callable[[Step], None]
    timeout: float = 300.0
    _grace: dict[str, float | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._grace = {s.name: s.stop_grace_period for s in self.loaded.stack.services}

    # ------------------------------------------------------------------ the loop
    def run(self, stop: threading.Event, *, quiet: float | None = None,
            on_ready: Callable[[], None] | None = None) -> None:
        """Initial syncs, then one batch after the other until `stop` is set (or Ctrl-C, which
        raises KeyboardInterrupt: the caller says the stack keeps running). `on_ready()`: once
        edits are being watched."""
        from stackctl.dev import watcher

        self.initial_sync()
        for batch in watcher.batches(self.rules, stop, quiet=watcher.QUIET if quiet is None else quiet,
                                     on_ready=on_ready):
            self.handle(batch)

    def initial_sync(self) -> None:
        """`initial_sync: true` rules: every file they would sync, copied once at the start."""
        for rule in self.rules:
            if not rule.initial_sync:
                continue
            began = time.monotonic()
            files = initial_files(rule)
            change = Change(rule, files)
            self.on_step(self._guarded(rule.service, "initial sync", [change], began,
                                       functools.partial(self._sync, rule.service, [change], began)))

    def handle(self, batch: Batch) -> list[Step]:
        """Apply one batch: per service, in Compose's order (rebuild, sync, restart, exec)."""
        steps: list[Step] = []
        by_service: dict[str, list[Change]] = {}
        for change in batch.changes:
            by_service.setdefault(change.rule.service, []).append(change)
        for service, changes in by_service.items():
            steps.extend(self._service(service, changes, batch.at))
        return steps

    def _service(self, service: str, changes: list[Change], began: float) -> list[Step]:
        out: list[Step] = []

        def emit(step: Step) -> None:
            out.append(step)
            self.on_step(step)

        rebuild = [c for c in changes if c.rule.action == "rebuild"]
        syncs = [c for c in changes if c.rule.action in ("sync", "sync+restart", "sync+exec")]
        restarts = [c for c in changes if c.rule.action in ("restart", "sync+restart")]
        execs = [c for c in changes if c.rule.action == "sync+exec"]
        if rebuild:
            step = self._guarded(service, "rebuild", rebuild, began, lambda: self._rebuild(service, began))
            emit(step)
            if not step.ok:
                return out  # the old container runs on; a sync into it now would mix old and new
        if syncs:
            emit(self._guarded(service, "sync", syncs, began, lambda: self._sync(service, syncs, began)))
        if restarts:
            emit(self._guarded(service, "restart", restarts, began, lambda: self._restart(service, began)))
        for change in _unique_rules(execs):
            emit(self._guarded(service, "exec", [change], began, functools.partial(self._exec, service, change, began)))
        return out

    def _guarded(self, service: str, action: str, changes: Sequence[Change], began: float,
                 do: Callable[[], tuple[str, tuple[str, ...], bool, tuple[str, ...]]]) -> Step:
        """Run one action; an error becomes a failed step (the loop goes on watching)."""
        where = tuple(dict.fromkeys(c.rule.where or f"services.{service}.develop.watch[{c.rule.index}]"
                                    for c in changes))
        try:
            what, detail, ok, restarted = do()
        except StackctlError as exc:
            what, detail, ok, restarted = str(exc), (), False, ()
        return Step(service, action, where, what, ok, time.monotonic() - began, detail, restarted)

    # ------------------------------------------------------------------ actions
    def _running(self, service: str) -> list[ContainerState]:
        return [c for c in self.project.containers() if c.service == service and c.running]

    def _sync(self, service: str, changes: Sequence[Change], began: float
              ) -> tuple[str, tuple[str, ...], bool, tuple[str, ...]]:
        copies: dict[str, tuple[Path, WatchRule]] = {}
        deletes: dict[str, None] = {}
        for change in changes:
            for path in change.paths:
                target = change.rule.container_path(path)
                if target is None:
                    continue
                if os.path.lexists(path):
                    copies[target] = (path, change.rule)
                    deletes.pop(target, None)
                else:
                    deletes[target] = None
                    copies.pop(target, None)
        containers = self._running(service)
        if not containers:
            raise OperationError(f"no running container of {service}: nothing synced")
        data, count = archive(copies)
        for c in containers:
            if deletes:
                code, output = self.project.exec_in(c, ["rm", "-rf", "--", *deletes], timeout=60)
                if code != 0:
                    raise OperationError(f"removing deleted files in {c.name} failed (exit {code}): "
                                         f"{(output.splitlines() or [''])[-1]}")
            if count:
                self.project.copy_archive(c, data)
        return _synced(changes, count, list(deletes), len(containers)), (), True, ()

    def _restart(self, service: str, began: float) -> tuple[str, tuple[str, ...], bool, tuple[str, ...]]:
        run, dependents = self._gate(service, "restart")
        return _gated("restarted", run, service, began, dependents)

    def _rebuild(self, service: str, began: float) -> tuple[str, tuple[str, ...], bool, tuple[str, ...]]:
        from stackctl.kubernetes.settings import from_profile

        scales = {k: v for k, v in from_profile(self.loaded.profile).replicas.items() if k == service}
        build_began = time.monotonic()
        code, output = self.project.rebuild([service], scales=scales)
        built_in = time.monotonic() - build_began
        if code != 0:
            lines = tuple([ln for ln in output.splitlines() if ln.strip()][-BUILD_TAIL:])
            return (f"docker compose up --build failed (exit {code}) after {built_in:.1f} s; the running container "
                    "is kept", lines, False, ())
        run, dependents = self._gate(service, "start")
        return _gated(f"built and recreated in {built_in:.1f} s", run, service, began, dependents)

    def _gate(self, service: str, action: Literal["start", "restart"]) -> tuple[Startup, tuple[str, ...]]:
        """Start (a recreated container) or restart the service, then its dependents (`depends_on:
        {service: {restart: true}}`, and theirs in turn) once it is up again: `stackctl restart`'s
        plan and gate, without its checks of the engine (it answered a moment ago)."""
        from stackctl.up.backend import run_startup
        from stackctl.up.plan import plan_restart
        from stackctl.up.startup import Startup

        plan = plan_restart(self.loaded.stack, [service])
        dependents = tuple(n for n in plan.services if n != service)
        containers = [c for c in self.project.containers() if c.service in plan.services]
        run = Startup(self.project, plan, containers, timeout=self.timeout, view=_Quiet(), action=action,
                      restart=dependents, stop_timeouts=self._grace)
        run_startup(run)
        return run, dependents

    def _exec(self, service: str, change: Change, began: float) -> tuple[str, tuple[str, ...], bool, tuple[str, ...]]:
        rule = change.rule
        containers = self._running(service)
        if not containers:
            raise OperationError(f"no running container of {service}: {' '.join(rule.exec_command)} not run")
        for c in containers:
            code, output = self.project.exec_in(c, rule.exec_command, user=rule.exec_user,
                                                working_dir=rule.exec_working_dir, privileged=rule.exec_privileged,
                                                env=dict(rule.exec_environment))
            if code != 0:
                said = "timed out" if code is None else f"exit {code}"
                return (f"ran {' '.join(rule.exec_command)} in {c.name}: {said}",
                        tuple(output.splitlines()[-10:]), False, ())
        return f"ran {' '.join(rule.exec_command)} ({_count(len(containers), 'container')})", (), True, ()


# ---------------------------------------------------------------- helpers

def archive(copies: dict[str, tuple[Path, WatchRule]]) -> tuple[bytes, int]:
    """A tar archive of the host files to copy, named by their path in the container (relative to
    `/`); a directory with what its rule does not ignore. Returns (archive, files in it: directories
    not counted)."""
    buf = io.BytesIO()
    count = 0
    seen: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(host: Path, name: str) -> None:
            nonlocal count
            if name in seen:
                return
            try:
                info = tar.gettarinfo(str(host), arcname=name)
            except OSError:  # gone meanwhile: the next batch removes it
                return
            if info is None:  # a socket or the like: not archivable, skipped as Docker does
                return
            seen.add(name)
            if not info.isdir():
                count += 1
            if info.isreg():
                with open(host, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)

        for target, (host, rule) in sorted(copies.items()):
            name = target.lstrip("/")
            add(host, name)
            if host.is_dir() and not host.is_symlink():
                for dirpath, dirnames, filenames in os.walk(host):
                    base = Path(dirpath)
                    dirnames[:] = sorted(d for d in dirnames if rule.matches(base / d))
                    for entry in [*dirnames, *sorted(filenames)]:
                        path = base / entry
                        if rule.matches(path):
                            inner = rule.container_path(path)
                            if inner is not None:
                                add(path, inner.lstrip("/"))
    return buf.getvalue(), count


def _unique_rules(changes: Iterable[Change]) -> list[Change]:
    seen: dict[tuple[str, int], Change] = {}
    for change in changes:
        seen.setdefault((change.rule.service, change.rule.index), change)
    return list(seen.values())


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _synced(changes: Sequence[Change], count: int, deleted: list[str], containers: int) -> str:
    targets = list(dict.fromkeys(c.rule.target or "" for c in changes))
    names = [os.path.relpath(p, c.rule.path) if p != c.rule.path else p.name for c in changes for p in c.paths
             if not p.is_dir()]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    text = f"{_count(count, 'file')} to {', '.join(targets)}"
    if deleted:
        text += f", {len(deleted)} deleted"
    text += f": {shown}"
    if containers > 1:
        text += f" ({containers} containers)"
    return text


def _gated(done: str, run: Startup, service: str, began: float, dependents: tuple[str, ...]
           ) -> tuple[str, tuple[str, ...], bool, tuple[str, ...]]:
    """What a gated action says: healthy again after how long, and the dependents restarted."""
    unit = run.units.get(service)
    if run.ok and unit is not None:
        state = {"healthy": "healthy", "done": "done", "running": "running"}.get(unit.state, unit.state)
        text = f"{done}, {state} {time.monotonic() - began:.1f} s after the edit"
        if dependents:
            text += f"; restarted {', '.join(dependents)} (depends_on restart: true)"
        return text, (), True, dependents
    detail: list[str] = []
    for f in run.failures:
        detail.append(f"{f.service}: {f.reason}")
        detail.extend(f"  | {line}" for line in f.logs[-10:])
    first = run.failures[0] if run.failures else None
    why = f"{first.service} {first.reason}" if first else "not healthy"
    return f"{done}, but {why}", tuple(detail), False, ()


def describe_rules(rules: Sequence[WatchRule]) -> list[str]:
    """One line per watched rule, for the start of the loop."""
    out = []
    for r in rules:
        into = f" -> {r.target}" if r.target else ""
        extra = f" then {' '.join(r.exec_command)}" if r.exec_command else ""
        out.append(f"{r.service}: {r.action} {r.path}{into}{extra}  [{r.where}]")
    return out
