"""The `up` planner and scheduler without Docker: a fake project scripts each container's life."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import pytest

from stackctl import model as m
from stackctl.compose.project import (
    ContainerState,
    HealthcheckSpec,
    ProbeResult,
    healthcheck_from,
)
from stackctl.errors import InputError
from stackctl.up import startup as startup_mod
from stackctl.up.plan import plan_restart, plan_up
from stackctl.up.startup import Startup


def dep(service: str, condition: str = "service_started", required: bool = True) -> m.Dependency:
    return m.Dependency(service=service, condition=condition, required=required)  # type: ignore[arg-type]


def stack(**services: tuple[m.Dependency, ...]) -> m.Stack:
    return m.Stack(name="t", services=tuple(m.Service(name=n, depends_on=d) for n, d in sorted(services.items())))


# --------------------------------------------------------------------------------------------- plan
def test_plan_orders_dependencies_first_and_stably() -> None:
    s = stack(api=(dep("db", "service_healthy"), dep("migrate", "service_completed_successfully")),
              migrate=(dep("db", "service_healthy"),), db=(), cache=())
    plan = plan_up(s)
    assert plan.services == ("cache", "db", "migrate", "api")
    assert plan.one_shot == {"migrate"}
    assert plan.dependents("db") == ("migrate", "api")
    assert plan.waiters("db") == (("migrate", "service_healthy"), ("api", "service_healthy"))


def test_partial_plan_takes_the_closure_only() -> None:
    s = stack(api=(dep("db"),), db=(dep("vol"),), vol=(), other=())
    assert plan_up(s, ["api"]).services == ("vol", "db", "api")
    assert plan_up(s, ["db"]).services == ("vol", "db")


def test_optional_dependencies_are_brought_up_but_never_gate() -> None:
    s = m.Stack(name="t", services=(
        m.Service(name="app", depends_on=(dep("mail", "service_healthy", required=False),
                                          dep("gone", required=False))),
        m.Service(name="mail")))
    plan = plan_up(s, ["app"])
    assert plan.services == ("mail", "app")
    assert plan.gates["app"] == ()
    assert [d.service for d in plan.optional["app"]] == ["mail"]


def test_plan_errors_are_input_errors() -> None:
    with pytest.raises(InputError, match=r"no such service: nope \(services: a, b\)"):
        plan_up(stack(a=(), b=()), ["nope"])
    with pytest.raises(InputError, match="dependency cycle: a -> b -> a"):
        plan_up(stack(a=(dep("b"),), b=(dep("a"),)))
    bad = m.Stack(name="t", services=(m.Service(name="a", depends_on=(dep("ghost"),)),))
    with pytest.raises(InputError, match="depends on 'ghost'"):
        plan_up(bad)


def test_restart_plan_is_just_the_named_services() -> None:
    plan = plan_restart(stack(api=(dep("db"),), db=()), ["api"])
    assert plan.services == ("api",) and plan.gates == {"api": ()}


# --------------------------------------------------------------------------------------------- healthcheck
def test_healthcheck_is_read_as_docker_runs_it() -> None:
    hc = healthcheck_from({"Healthcheck": {"Test": ["CMD-SHELL", "pg_isready -U $USER"], "Interval": 10_000_000_000,
                                           "Timeout": 3_000_000_000, "Retries": 5, "StartPeriod": 30_000_000_000}})
    assert hc is not None
    assert hc.argv == ("/bin/sh", "-c", "pg_isready -U $USER")
    assert (hc.interval, hc.timeout, hc.retries, hc.start_period, hc.bound) == (10, 3, 5, 30, 80)
    assert hc.shown == "pg_isready -U $USER"
    exec_form = healthcheck_from({"Healthcheck": {"Test": ["CMD", "curl", "-f", "http://x/"]}})
    assert exec_form is not None and exec_form.argv == ("curl", "-f", "http://x/")
    assert (exec_form.interval, exec_form.timeout, exec_form.retries) == (30, 30, 3)  # Docker's defaults
    shell = healthcheck_from({"Healthcheck": {"Test": ["CMD-SHELL", "ok"]},
                              "Shell": ["/bin/bash", "-eo", "pipefail", "-c"]})
    assert shell is not None and shell.argv == ("/bin/bash", "-eo", "pipefail", "-c", "ok")
    assert healthcheck_from({"Healthcheck": {"Test": ["NONE"]}}) is None
    assert healthcheck_from({}) is None


# --------------------------------------------------------------------------------------------- scheduler
HC = HealthcheckSpec(test=("CMD", "ready"), argv=("ready",), interval=30, timeout=1, retries=3, start_period=0)


@dataclass
class Script:
    ready_after: float | None = None  # probe passes this long after start (None: never)
    exit_after: float | None = None  # container exits this long after start
    exit_code: int = 0
    healthcheck: HealthcheckSpec | None = None
    restarts_after: float | None = None  # Docker restarts it (a crash) this long after start


class FakeProject:
    def __init__(self, scripts: dict[str, Script]) -> None:
        self.scripts = scripts
        self.started: dict[str, float] = {}
        self.lock = threading.Lock()

    def containers(self) -> list[ContainerState]:
        return [ContainerState(id=n, name=f"t-{n}-1", service=n, number=1, status="created", exit_code=0,
                               health="starting" if s.healthcheck else None, health_output="", restart_count=0,
                               healthcheck=s.healthcheck, ports=()) for n, s in self.scripts.items()]

    def start(self, c: ContainerState, **_: Any) -> None:
        time.sleep(0.02)
        with self.lock:
            self.started[c.id] = time.monotonic()

    def probe(self, c: ContainerState, hc: HealthcheckSpec, **_: Any) -> ProbeResult:
        s = self.scripts[c.id]
        age = time.monotonic() - self.started[c.id]
        ok = s.ready_after is not None and age >= s.ready_after
        return ProbeResult(ok, 0 if ok else 1, "" if ok else "not yet", 0.01)

    def inspect(self, ids: list[str]) -> list[ContainerState]:
        out = []
        base = {c.id: c for c in self.containers()}
        for cid in ids:
            s, c = self.scripts[cid], base[cid]
            age = time.monotonic() - self.started.get(cid, time.monotonic())
            if cid not in self.started:
                out.append(c)
            elif s.exit_after is not None and age >= s.exit_after:
                out.append(replace(c, status="exited", exit_code=s.exit_code))
            elif s.restarts_after is not None and age >= s.restarts_after:
                out.append(replace(c, status="running", exit_code=1, restart_count=1))
            else:
                out.append(replace(c, status="running"))
        return out

    def log_tail(self, c: ContainerState, lines: int = 20) -> list[str]:
        return [f"{c.service} log line"]


class Quiet:
    def changed(self, run: Any, unit: Any) -> None: ...
    def tick(self, run: Any) -> None: ...
    def close(self, run: Any) -> None: ...


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(startup_mod, "POLL_SECONDS", 0.02)
    monkeypatch.setattr(startup_mod, "probe_pause", lambda _since: 0.02)


def run(s: m.Stack, scripts: dict[str, Script], timeout: float = 10, selected: tuple[str, ...] = ()) -> Startup:
    project = FakeProject(scripts)
    plan = plan_up(s, selected)
    runner = Startup(project, plan, [c for c in project.containers() if c.service in plan.services],  # type: ignore[arg-type]
                     timeout=timeout, view=Quiet())
    runner.run()
    if not runner.ok:
        runner.collect_report()
    return runner


def t(runner: Startup, service: str, state: str) -> float:
    return next(e["t"] for e in runner.timeline if e["service"] == service and e["state"] == state)


def test_each_service_starts_the_moment_its_conditions_hold() -> None:
    s = stack(db=(), side=(dep("db"),), migrate=(dep("db", "service_healthy"),),
              api=(dep("db", "service_healthy"), dep("migrate", "service_completed_successfully")))
    runner = run(s, {"db": Script(ready_after=0.3, healthcheck=HC), "side": Script(),
                     "migrate": Script(exit_after=0.2), "api": Script(ready_after=0.0, healthcheck=HC)})
    assert runner.ok, runner.failures
    assert {u.name: u.state for u in runner.units.values()} == {"db": "healthy", "side": "running",
                                                                "migrate": "done", "api": "healthy"}
    assert t(runner, "side", "starting") < t(runner, "db", "healthy")  # not a wave behind db's health
    assert t(runner, "db", "healthy") <= t(runner, "migrate", "starting")
    assert t(runner, "migrate", "done") <= t(runner, "api", "starting")


def test_a_failed_one_shot_stops_everything_waiting_on_it() -> None:
    s = stack(migrate=(), api=(dep("migrate", "service_completed_successfully"),), web=(dep("api"),))
    project_scripts = {"migrate": Script(exit_after=0.05, exit_code=3), "api": Script(), "web": Script()}
    runner = run(s, project_scripts)
    assert not runner.ok
    (f,) = runner.failures
    assert (f.service, f.kind, f.reason) == ("migrate", "exited", "exited with code 3")
    assert f.waiters == [("api", "service_completed_successfully")]
    assert f.blocked == ["api", "web"] and f.logs == ["migrate log line"]
    assert runner.units["api"].state == "waiting"


def test_probe_bound_makes_a_service_unhealthy() -> None:
    quick = replace(HC, interval=0.1, retries=2)  # bound: 0.2 s
    runner = run(stack(db=(), api=(dep("db", "service_healthy"),)),
                 {"db": Script(ready_after=None, healthcheck=quick), "api": Script()})
    (f,) = runner.failures
    assert f.kind == "unhealthy" and f.probe is not None and f.probe.output == "not yet"
    # the message's own multiplication sign, not a typo for x
    assert "did not pass within 0.2 s of start (start_period 0 s + 2 retries × interval 0.1 s)" in f.reason


def test_overall_timeout_blames_the_service_still_starting() -> None:
    runner = run(stack(db=(), api=(dep("db", "service_healthy"),)),
                 {"db": Script(ready_after=None, healthcheck=HC), "api": Script()}, timeout=0.3)
    (f,) = runner.failures
    assert (f.service, f.kind) == ("db", "timeout") and f.blocked == ["api"]


def test_a_crash_restarted_by_docker_is_a_failure() -> None:
    runner = run(stack(db=(), api=(dep("db", "service_healthy"),)),
                 {"db": Script(ready_after=None, restarts_after=0.05, healthcheck=HC), "api": Script()})
    (f,) = runner.failures
    assert f.kind == "restarting" and "being restarted by Docker" in f.reason


def test_a_healthy_service_that_exits_is_a_failure() -> None:
    runner = run(stack(db=(), api=(dep("db", "service_healthy"),)),
                 {"db": Script(ready_after=0.0, exit_after=0.1, exit_code=0, healthcheck=HC), "api": Script(
                     ready_after=None, healthcheck=HC)}, timeout=2)
    assert runner.failures[0].service == "db"
    assert runner.failures[0].reason == "exited with code 0 after it was healthy"
