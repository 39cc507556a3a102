"""The local backend: run a profile's stack on the local Docker engine with Docker Compose.

    up(loaded, services, ...)    create with Compose, then health-gated start-up (see `startup`)
    restart(loaded, services)    restart containers, gated on their healthchecks again
    status(loaded)               each service's containers, state, and health as a probe sees it now
    down(profile, volumes=...)   `docker compose down --remove-orphans [--volumes]`
    logs(loaded, ...)            `docker compose logs`

The project stays a plain Compose project (same labels, names, networks and volumes), so
`docker compose ps/logs/exec/down` keep working on it. Nothing here prints: progress goes through the
view the caller passes, and errors are raised (`stackctl.errors`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackctl.errors import InputError

if TYPE_CHECKING:
    from stackctl.compose.project import ContainerState, LocalProject, ProbeResult
    from stackctl.pipeline import LoadedStack
    from stackctl.profile.types import Profile
    from stackctl.up.creating import CreateWatch, Progress
    from stackctl.up.plan import Plan
    from stackctl.up.startup import Startup, View

DEFAULT_TIMEOUT = 300.0


@dataclass
class UpResult:
    """What `up`/`restart` did: the start-up run plus what Compose created or recreated."""

    stack: str
    plan: Plan
    startup: Startup
    created: list[str] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)
    built: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)  # running, restarted for depends_on.restart

    @property
    def ok(self) -> bool:
        return self.startup.ok

    def to_data(self) -> dict[str, Any]:
        return {"stack": self.stack, "built": self.built, "created": self.created, "recreated": self.recreated,
                "restarted": self.restarted,
                **self.startup.to_data()}


def project_for(loaded: LoadedStack) -> LocalProject:
    from stackctl.compose.loader import invocation_for
    from stackctl.compose.project import LocalProject

    invocation, _ = invocation_for(loaded.profile)
    return LocalProject(invocation, loaded.stack.name, loaded.profile.root)


def render_env(profile: Profile) -> list[tuple[str, str]]:
    """Render the profile's env file from its template and the secrets store before Compose reads it
    (what `stackctl env render` does), for projects that use stackctl's env management (a
    `.env.example` template exists). Returns `(level, message)` notes ("info" / "warning").

    A rotated secret changes the rendered file, hence the environment of the services that use it,
    hence their Compose config hash: `up` then recreates exactly those services. When rendering is
    refused (values typed into the env file by hand that the store does not know, say) and the env
    file exists, it is used as it is, with a warning."""
    if not profile.env.template.exists() or profile.env.file not in profile.compose.env_files:
        return []
    stamp = _render_stamp(profile)
    digest = _render_inputs(profile)
    try:
        if stamp.read_text(encoding="ascii") == digest:
            return []  # rendered from these very inputs, and the file is as it was written
    except OSError:
        pass
    from stackctl.errors import StackctlError
    from stackctl.secrets.envfile import render

    try:
        result = render(profile)
    except StackctlError as exc:
        if not profile.env.file.exists():
            raise
        return [("warning", f"env file not rendered, using it as it is: {exc}")]
    notes = [("warning", w) for w in result.warnings]
    if result.written:
        changed = f" ({', '.join(result.changed)} changed)" if result.changed else ""
        notes.append(("info", f"rendered {result.path}{changed}"))
    if not result.warnings:  # a render that had something to say says it again next time
        from stackctl.fsutil import atomic_write

        with contextlib.suppress(OSError):  # a cache: without it the next `up` renders again
            atomic_write(stamp, _render_inputs(profile))
    return notes


def _render_stamp(profile: Profile) -> Path:
    """Where `up` notes what the env file was last rendered from: outside the project (in the user's
    cache), one file per env file path. It holds a digest, no value."""
    import hashlib

    from stackctl.cachebox import cache_dir

    cache = Path(cache_dir("env-render"))
    key = hashlib.sha256(str(profile.env.file.resolve()).encode()).hexdigest()[:32]
    return cache / key


def _render_inputs(profile: Profile) -> str:
    """A digest of everything `env render` reads (the template, the profile with its env.values, the
    encrypted store) and of the env file as it is now: equal digests mean a render would change
    nothing. Reading four small files costs far less than decrypting the store."""
    import hashlib

    from stackctl import __version__

    h = hashlib.sha256(f"stackctl {__version__}\n".encode())
    for path in (profile.env.template, profile.path, profile.secrets.store, profile.env.file):
        try:
            data = path.read_bytes()
        except OSError:
            data = b"\0missing"
        h.update(f"{path}\n{len(data)}\n".encode())
        h.update(data)
    return h.hexdigest()


class Early:
    """`docker compose up --no-start` started before the project is resolved (see `create_early`)."""

    def __init__(self, project: LocalProject, before: list[ContainerState], scales: dict[str, int]) -> None:
        import threading

        from stackctl.up.creating import CreateWatch

        self.project, self.before, self.scales = project, before, scales
        self.error: BaseException | None = None
        self.watch = CreateWatch(project, {c.service for c in before})  # in place before Compose begins
        self.thread = threading.Thread(target=self._run, name="stackctl-create", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.project.create((), scales=self.scales, local_images_only=True)
        except BaseException as exc:  # reported by `succeeded()`; the normal path runs then
            self.error = exc

    def succeeded(self) -> bool:
        self.thread.join()
        self.watch.close()
        return self.error is None


def create_early(profile: Profile, services: Sequence[str], *, build: bool) -> Early | None:
    """Start creating the whole stack (`docker compose up --no-start`, local images only) while the
    caller resolves the project with `docker compose config`: both only need the Compose files and
    the env file, and the create is the longer of the two, so `up` saves the whole `config` from its
    critical path. Only where the outcome is the one `up` would create anyway: the whole stack (no
    SERVICE arguments), no `--build`, a project name from the profile, the Engine API to take the
    before-picture with, and nothing of the stack running. When it fails (an image to build or pull,
    say), `up` creates as usual."""
    if services or build or not profile.stack:
        return None
    from stackctl.compose.loader import invocation_for
    from stackctl.compose.project import LocalProject

    invocation, _ = invocation_for(profile)
    project = LocalProject(invocation, profile.stack, profile.root)
    if project.engine() is None:
        return None
    try:
        before = project.containers()
    except Exception:  # no engine yet: the normal path says what is wrong
        return None
    if any(c.running for c in before):
        # A create can recreate (stop) what runs before `up` has checked the ports it publishes: an
        # edit to a taken port would leave the old container stopped. Only a stack with nothing
        # running is created early.
        return None
    from stackctl.kubernetes.settings import from_profile

    scales = from_profile(profile).replicas
    return Early(project, before, scales)


def up(loaded: LoadedStack, services: Sequence[str] = (), *, timeout: float = DEFAULT_TIMEOUT, build: bool = False,
       view: Callable[[list[str]], View], note: Callable[[str], None] = lambda _m: None,
       t0: float | None = None, early: Early | None = None) -> UpResult:
    """Create the services with Compose (recreating changed ones), then start them health-gated.
    `t0` (time.monotonic) is when the command started: times and `timeout` count from it. `early`:
    the create `create_early` started (used when it did what the create here would do)."""
    import time

    from stackctl.kubernetes.settings import from_profile
    from stackctl.up.plan import plan_up

    t0 = time.monotonic() if t0 is None else t0
    plan = plan_up(loaded.stack, services)
    scales = {name: n for name, n in from_profile(loaded.profile).replicas.items() if name in plan.services}
    grace = {s.name: s.stop_grace_period for s in loaded.stack.services}
    shown = view(list(plan.services))  # created now: it shows the create too (a recreate can take a while)
    show_create = getattr(shown, "creating", None)

    def show(progress: Progress) -> None:
        if show_create is not None:
            show_create(progress, t0)

    try:
        return _up(loaded, plan, services, scales, grace, shown, show, timeout=timeout, build=build, note=note,
                   t0=t0, early=early)
    except BaseException:
        stop = getattr(shown, "stop", None)
        if stop is not None:
            stop()
        raise


def _up(loaded: LoadedStack, plan: Plan, services: Sequence[str], scales: dict[str, int],
        grace: dict[str, float | None], shown: View, show: Callable[[Progress], None], *, timeout: float,
        build: bool, note: Callable[[str], None], t0: float, early: Early | None) -> UpResult:
    import time

    from stackctl.compose.project import compose_ready
    from stackctl.up import creating, ports
    from stackctl.up.plan import restart_dependents
    from stackctl.up.startup import Startup

    if early is not None:
        if early.thread.is_alive():
            note("creating (docker compose up --no-start, started alongside docker compose config)")
        creating.wait(early.thread, early.watch, show, grace)
    if early is not None and not (early.succeeded() and early.project.name == loaded.stack.name
                                  and early.scales == scales and not services):
        early = None  # it failed, or created something else: create here
    compose_ready()  # the engine is checked when the first docker call fails (no `docker info` first)
    project = early.project if early is not None else project_for(loaded)
    before = early.before if early is not None else project.containers()
    before_ids, before_services = {c.id for c in before}, {c.service for c in before}
    ports.check(loaded, plan, project)  # a taken host port fails here, not halfway through the start-up
    built = _build(loaded, project, plan, force=build, note=note)
    if built:
        t0 = time.monotonic()  # --timeout and the times shown cover the start-up, not the image build
    if early is None or built:
        note(f"creating {', '.join(plan.services)} (docker compose up --no-start)")
        _create(project, plan.services, scales, creating.CreateWatch(project, before_services), show, grace)
    else:
        note(f"created {', '.join(plan.services)} (docker compose up --no-start, run alongside docker compose "
             "config)")
    containers = [c for c in project.containers() if c.service in plan.services]
    created = sorted({c.service for c in containers if c.service not in before_services})
    recreated = sorted({c.service for c in containers if c.service in before_services and c.id not in before_ids})
    _check_health_gates(plan, containers)
    # Compose may stop such a dependent while it recreates the dependency (and `up --no-start` then
    # leaves it stopped); running or not, it is restarted once the dependency is up again.
    restart = set(restart_dependents(loaded.stack, plan, [*created, *recreated]))
    run = Startup(project, plan, containers, timeout=timeout, view=shown, t0=t0,
                  restart=restart, stop_timeouts=grace)
    for unit in run.units.values():
        unit.recreated, unit.created = unit.name in recreated, unit.name in created
    result = UpResult(loaded.stack.name, plan, run, created=created, recreated=recreated, built=built,
                      restarted=sorted(restart))
    run_startup(run)
    return result


def _create(project: LocalProject, services: Sequence[str], scales: dict[str, int], watch: CreateWatch,
            show: Callable[[Progress], None], grace: dict[str, float | None]) -> None:
    """`project.create`, in a thread of its own, the view showing what Compose does meanwhile."""
    import threading

    from stackctl.up import creating

    error: list[BaseException] = []

    def run() -> None:
        try:
            project.create(services, scales=scales)
        except BaseException as exc:  # raised again below, in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=run, name="stackctl-create", daemon=True)
    thread.start()
    creating.wait(thread, watch, show, grace)
    if error:
        raise error[0]


def restart(loaded: LoadedStack, services: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT,
            view: Callable[[list[str]], View]) -> UpResult:
    """Restart the services' containers (`docker restart`, their stop_grace_period honoured), then
    wait for each to be healthy again (or running / done), exactly as `up` gates a start."""
    from stackctl.compose.project import engine_ready
    from stackctl.up.plan import plan_restart
    from stackctl.up.startup import Startup

    plan = plan_restart(loaded.stack, services)
    engine_ready()
    project = project_for(loaded)
    containers = [c for c in project.containers() if c.service in plan.services]
    missing = [s for s in plan.selected if not any(c.service == s for c in containers)]
    if missing:
        raise InputError(f"no container for {', '.join(missing)} (not created yet: run `stackctl up "
                         f"{' '.join(missing)}`)", field="SERVICE")
    grace = {s.name: s.stop_grace_period for s in loaded.stack.services}
    run = Startup(project, plan, containers, timeout=timeout, view=view(list(plan.services)), action="restart",
                  stop_timeouts=grace)
    result = UpResult(loaded.stack.name, plan, run,
                      restarted=[n for n in plan.services if n not in plan.selected])
    run_startup(run)
    return result


def run_startup(run: Startup) -> None:
    """Run a start-up to its end (view closed even on Ctrl-C); a failed one collects its report."""
    try:
        run.run()
    finally:
        run.view.close(run)
    if not run.ok:
        run.collect_report()


def _build(loaded: LoadedStack, project: LocalProject, plan: Plan, *, force: bool,
           note: Callable[[str], None]) -> list[str]:
    """Build images first, output visible: all buildable services with `--build`, otherwise only
    those whose image is missing (Compose would build them silently inside `up --no-start`)."""
    buildable = {s.name: s.image or f"{loaded.stack.name}-{s.name}" for s in loaded.stack.services
                 if s.build is not None and s.name in plan.services}
    if not buildable:
        return []
    todo = sorted(buildable) if force else project.missing_images(buildable)
    if todo:
        note(f"building {', '.join(todo)} (docker compose build)")
        project.build(todo)
    return list(todo)


def _check_health_gates(plan: Plan, containers: Sequence[ContainerState]) -> None:
    """`service_healthy` on a service without any healthcheck can never be met (Compose fails too)."""
    with_hc = {c.service for c in containers if c.healthcheck is not None}
    have = {c.service for c in containers}
    for name in plan.services:
        for dep in plan.gates.get(name, ()):
            if dep.condition == "service_healthy" and dep.service in have and dep.service not in with_hc:
                raise InputError(f"waits for {dep.service!r} to be healthy (service_healthy), but "
                                 f"{dep.service} has no healthcheck",
                                 field=f"services.{name}.depends_on.{dep.service}",
                                 hint=f"add a healthcheck to {dep.service}, or use condition: service_started")


# --------------------------------------------------------------------------------------------- status
@dataclass(frozen=True)
class ServiceStatus:
    service: str
    container: str | None
    state: str  # running | exited | created | restarting | paused | not created | orphan ...
    exit_code: int | None
    health: str  # healthy | unhealthy | - (no healthcheck) | not running
    docker_health: str | None
    probe: ProbeResult | None
    ports: tuple[str, ...]
    problem: str | None = None  # why this service is not as it should be (unhealthy, exited unexpectedly)

    def to_data(self) -> dict[str, Any]:
        return {"service": self.service, "container": self.container, "state": self.state, "problem": self.problem,
                "exit_code": self.exit_code, "health": self.health, "docker_health": self.docker_health,
                "probe": None if self.probe is None else {
                    "ok": self.probe.ok, "exit_code": self.probe.exit_code, "output": self.probe.output,
                    "seconds": round(self.probe.seconds, 3)},
                "ports": list(self.ports)}


def status(loaded: LoadedStack, *, probe: bool = True) -> list[ServiceStatus]:
    """Each service's containers and their state; health as stackctl sees it: one probe now (the
    service's own healthcheck command, run in the container) rather than Docker's last verdict, which
    lags by up to one interval."""
    from stackctl.compose.project import engine_ready

    engine_ready()
    project = project_for(loaded)
    containers = project.containers()
    names = set(loaded.stack.service_names)
    import concurrent.futures

    to_probe = [c for c in containers if probe and c.running and c.healthcheck is not None]
    probes: dict[str, ProbeResult] = {}
    if to_probe:
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(to_probe))) as pool:
            futures = {c.id: pool.submit(project.probe, c, c.healthcheck, timeout=10.0) for c in to_probe
                       if c.healthcheck is not None}
            probes = {cid: f.result() for cid, f in futures.items()}
    one_shot = loaded.stack.one_shot_services()
    rows: list[ServiceStatus] = []
    for name in loaded.stack.service_names:
        mine = [c for c in containers if c.service == name]
        if not mine:
            rows.append(ServiceStatus(name, None, "not created", None, "-", None, None, ()))
        stays_up = loaded.stack.service(name).restart in ("always", "unless-stopped")
        rows.extend(_row(c, probes.get(c.id), name, one_shot=name in one_shot, stays_up=stays_up) for c in mine)
    rows.extend(_row(c, probes.get(c.id), f"{c.service} (orphan)", one_shot=True) for c in containers
                if c.service not in names)
    return rows


def _problem(c: ContainerState, health: str, *, one_shot: bool, stays_up: bool = False) -> str | None:
    """Why `status` fails for this container, or None. An exit 0 is a finished job (a one-shot, or a
    service that ends by design), except for a service meant to stay up: one with a healthcheck or
    `restart: always|unless-stopped`. Not created or only created (a partial `up`) is no problem; a
    crash loop, an exit code and a failing probe are."""
    if health == "unhealthy":
        return "unhealthy"
    if c.status == "restarting":
        return f"restarting (exit code {c.exit_code})"
    if c.status in ("exited", "dead"):
        if c.exit_code != 0:
            return f"exited with code {c.exit_code}"
        if not one_shot and c.healthcheck is not None:
            return "exited (it has a healthcheck: meant to keep running)"
        if not one_shot and stays_up:
            return "exited (restart policy: meant to keep running)"
    return None


def _row(c: ContainerState, probe: ProbeResult | None, label: str, *, one_shot: bool,
         stays_up: bool = False) -> ServiceStatus:
    if c.healthcheck is None:
        health = "-"
    elif not c.running:
        health = "not running"
    elif probe is not None:
        health = "healthy" if probe.ok else "unhealthy"
    else:
        health = c.health or "-"
    exited = c.status in ("exited", "dead")
    return ServiceStatus(label, c.name, c.status, c.exit_code if exited else None, health, c.health, probe, c.ports,
                         _problem(c, health, one_shot=one_shot, stays_up=stays_up))


# --------------------------------------------------------------------------------------------- down / logs
def down(profile: Profile, *, volumes: bool) -> str:
    """Remove the stack's containers and networks (and named volumes with `volumes`); returns the
    project name. When the Compose files no longer resolve (a variable gone, a file moved), the
    project is still found by name from the profile's `stack:`, as `docker compose -p NAME down` does."""
    from stackctl.compose.loader import invocation_for
    from stackctl.compose.project import LocalProject, engine_ready
    from stackctl.pipeline import load_stack

    engine_ready()
    try:
        loaded = load_stack(profile)
    except InputError:
        if not profile.stack:
            raise
        invocation, _ = invocation_for(profile)
        LocalProject(invocation, profile.stack, profile.root).down(volumes=volumes, by_name_only=True)
        return profile.stack
    project_for(loaded).down(volumes=volumes)
    return loaded.stack.name


def logs(loaded: LoadedStack, services: Sequence[str], *, follow: bool, tail: str | None) -> int:
    from stackctl.compose.project import engine_ready

    unknown = [s for s in services if s not in loaded.stack.service_names]
    if unknown:
        raise InputError(f"no such service: {', '.join(unknown)} (services: "
                         f"{', '.join(loaded.stack.service_names)})", field="SERVICE")
    engine_ready()
    return project_for(loaded).logs(services, follow=follow, tail=tail)


__all__ = ["DEFAULT_TIMEOUT", "Early", "ServiceStatus", "UpResult", "create_early", "down", "logs", "render_env",
           "restart", "status", "up"]
