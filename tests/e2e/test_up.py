"""`stackctl up / down / status / logs / restart` against the real engine, with small busybox stacks.

Every test has its own Compose project name and removes everything it created (containers, networks,
volumes, images) in a finalizer, pass or fail. Speed is proven as behaviour, not as timings: a
dependent starts while Docker itself has not run its first healthcheck yet (interval 30 s). Timing
targets belong to bench/up.py; the few time bounds here are generous.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from dockerutil import docker, labelled

pytestmark = [pytest.mark.docker, pytest.mark.engine]

IMAGE = "stackctl-test/busybox:latest"


@dataclass
class Stack:
    name: str
    project: Any
    cli: Callable[..., Any]

    def write(self, compose: str, *, env: str | None = None, extra_profile: str = "") -> None:
        # busybox `sleep`/`sh` as PID 1 ignore SIGTERM: SIGKILL keeps down/recreate from waiting 10 s.
        text = re.sub(r"^( *)BASE$", lambda m: f"{m[1]}image: {IMAGE}\n{m[1]}stop_signal: SIGKILL",
                      textwrap.dedent(compose), flags=re.M)
        self.project.write("compose.yaml", text)
        env_files = "[.env]" if env is not None else "[]"
        if env is not None:
            self.project.write(".env", env)
        self.project.profile("local", f"stack: {self.name}\ncompose:\n  files: [compose.yaml]\n"
                                      f"  env_files: {env_files}\n{extra_profile}")

    def up(self, *args: str) -> tuple[Any, dict[str, Any]]:
        res = self.cli("up", "-o", "json", *args)
        data = json.loads(res.stdout) if res.stdout.strip() else {}
        return res, data

    def container(self, service: str) -> dict[str, Any]:
        out = docker("ps", "-a", "--filter", f"label=com.docker.compose.project={self.name}",
                     "--filter", f"label=com.docker.compose.service={service}", "-q")
        ids = out.split()
        assert len(ids) == 1, f"{service}: {ids}"
        return json.loads(docker("inspect", ids[0]))[0]

    def ids(self) -> dict[str, str]:
        out = docker("ps", "-a", "--filter", f"label=com.docker.compose.project={self.name}",
                     "--format", '{{.Label "com.docker.compose.service"}} {{.ID}}')
        return dict(line.split() for line in out.splitlines())


@pytest.fixture
def stack(project: Any, cli: Callable[..., Any]) -> Iterator[Stack]:
    s = Stack(name=f"upt-{uuid.uuid4().hex[:10]}", project=project, cli=cli)
    try:
        yield s
    finally:
        subprocess.run(["docker", "compose", "-p", s.name, "down", "-v", "--remove-orphans", "-t", "0"],
                       capture_output=True)
        for kind, rm in (("container", ["rm", "-f", "-v"]), ("network", ["network", "rm"]),
                         ("volume", ["volume", "rm", "-f"])):
            leftovers = labelled(kind, s.name)
            if leftovers:
                docker(*rm, *leftovers, check=False)


def svc(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in data["services"] if s["service"] == name)


def first(data: dict[str, Any], service: str, state: str) -> float:
    """When `service` first entered `state` (seconds on the run's clock)."""
    return next(e["t"] for e in data["timeline"] if e["service"] == service and e["state"] == state)


ORDERING = """
services:
  flag:                  # healthy 1 s after it starts; Docker's own first check would be at 30 s
    BASE
    command: ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 600"]
    healthcheck: {test: ["CMD", "test", "-f", "/tmp/ready"], interval: 30s, timeout: 3s, retries: 3}
  job:                   # one-shot, like a migration
    BASE
    command: ["sh", "-c", "echo migrating; sleep 1; echo migrated"]
    depends_on: {flag: {condition: service_healthy}}
  app:
    BASE
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    healthcheck: {test: ["CMD-SHELL", "wget -q -O /dev/null http://localhost:8080/ || exit 1"], interval: 30s}
    depends_on:
      flag: {condition: service_healthy}
      job: {condition: service_completed_successfully}
  side:                  # only needs flag's container started
    BASE
    command: ["sleep", "600"]
    depends_on: {flag: {condition: service_started}}
  slowopt:               # healthy after 3 s; only an optional dependency of lazy
    BASE
    command: ["sh", "-c", "sleep 3; touch /tmp/ready; exec sleep 600"]
    healthcheck: {test: ["CMD", "test", "-f", "/tmp/ready"], interval: 30s}
  lazy:
    BASE
    command: ["sleep", "600"]
    depends_on: {slowopt: {condition: service_healthy, required: false}}
"""


def test_up_orders_by_condition_before_dockers_first_healthcheck(stack: Stack) -> None:
    stack.write(ORDERING)
    res, data = stack.up()
    assert res.exit_code == 0, res
    assert data["ok"] is True and data["failures"] == []
    states = {s["service"]: s["state"] for s in data["services"]}
    assert states == {"flag": "healthy", "job": "done", "app": "healthy", "side": "running",
                      "slowopt": "healthy", "lazy": "running"}
    # service_started: side starts while flag is still being probed (event-driven, not waves)
    assert first(data, "flag", "starting") <= first(data, "side", "starting") < first(data, "flag", "healthy")
    # service_healthy + service_completed_successfully
    assert first(data, "flag", "healthy") <= first(data, "job", "starting")
    assert first(data, "job", "done") <= first(data, "app", "starting")
    # required: false does not gate
    assert first(data, "lazy", "starting") < first(data, "slowopt", "healthy")
    # Health came from stackctl's probes: Docker has not run its own first check (30 s interval) yet.
    assert stack.container("flag")["State"]["Health"]["Status"] == "starting"
    assert data["elapsed"] < 25
    # Still a plain Compose project.
    ps = docker("compose", "-p", stack.name, "ps", "--format", "{{.Service}} {{.State}}")
    assert sorted(ps.split("\n")[:-1]) == ["app running", "flag running", "lazy running", "side running",
                                           "slowopt running"]
    assert "job: starting" in " ".join(f"{e['service']}: {e['state']}" for e in data["timeline"])


def test_failed_one_shot_stops_startup_with_report(stack: Stack) -> None:
    stack.write("""
        services:
          job:
            BASE
            command: ["sh", "-c", "echo applying 001; echo 'ERROR: relation exists' >&2; exit 3"]
          app:
            BASE
            command: ["sleep", "600"]
            depends_on: {job: {condition: service_completed_successfully}}
          web:
            BASE
            command: ["sleep", "600"]
            depends_on: {app: {condition: service_started}}
    """)
    res = stack.cli("up")
    assert res.exit_code == 1, res
    err = res.stderr
    assert "job failed: exited with code 3" in err
    assert "waiting on it:  app (service_completed_successfully)" in err
    assert "not started:    app, web" in err
    assert "| applying 001" in err and "| ERROR: relation exists" in err
    assert err.rstrip().splitlines()[-1] == "Error: start-up stopped: job exited with code 3; not started: app, web"
    assert stack.container("app")["State"]["Status"] == "created"  # never started


def test_unhealthy_dependency_report(stack: Stack) -> None:
    stack.write("""
        services:
          db:
            BASE
            command: ["sh", "-c", "echo 'db: booting'; echo 'db: waiting for disk'; exec sleep 600"]
            healthcheck:
              test: ["CMD-SHELL", "echo 'db: not accepting connections' >&2; exit 2"]
              interval: 2s
              timeout: 2s
              retries: 1
          api:
            BASE
            command: ["sleep", "600"]
            depends_on: {db: {condition: service_healthy}}
    """)
    res, data = stack.up()
    assert res.exit_code == 1
    (failure,) = data["failures"]
    assert failure["service"] == "db" and failure["kind"] == "unhealthy"
    assert failure["waiting_on_it"] == [{"service": "api", "condition": "service_healthy"}]
    assert failure["not_started"] == ["api"]
    output = (failure["probe"] or {}).get("output", "") + (failure["docker_health_output"] or "")
    assert "db: not accepting connections" in output
    assert failure["logs"] == ["db: booting", "db: waiting for disk"]
    assert "db failed:" in res.stderr and "| db: waiting for disk" in res.stderr
    assert "Error: start-up stopped: db is unhealthy; not started: api" in res.stderr
    assert data["elapsed"] < 30


def test_overall_timeout(stack: Stack) -> None:
    stack.write("""
        services:
          slow:
            BASE
            command: ["sleep", "600"]
            healthcheck: {test: ["CMD", "false"], interval: 30s, retries: 3}
          after:
            BASE
            command: ["sleep", "600"]
            depends_on: {slow: {condition: service_healthy}}
    """)
    res, data = stack.up("--timeout", "3")
    assert res.exit_code == 1
    assert data["failures"][0]["service"] == "slow" and data["failures"][0]["kind"] == "timeout"
    assert "still probing after 3 s (--timeout)" in res.stderr
    assert "Error: start-up stopped: timed out after 3 s (slow still starting); not started: after" in res.stderr
    assert data["elapsed"] < 20


def test_partial_up_starts_only_the_service_and_its_dependencies(stack: Stack) -> None:
    stack.write("""
        services:
          dep:
            BASE
            command: ["sleep", "600"]
          app:
            BASE
            command: ["sleep", "600"]
            depends_on: [dep]
          other:
            BASE
            command: ["sleep", "600"]
    """)
    res, data = stack.up("app")
    assert res.exit_code == 0, res
    assert data["services"] and [s["service"] for s in data["services"]] == ["dep", "app"]
    assert set(stack.ids()) == {"dep", "app"}  # `other` not even created
    res = stack.cli("up", "nope")
    assert res.exit_code == 2 and "no such service: nope (services: app, dep, other)" in res.stderr


def test_down_removes_everything_and_keeps_volumes_unless_asked(stack: Stack) -> None:
    stack.write("""
        services:
          data:
            BASE
            command: ["sleep", "600"]
            volumes: [store:/data]
            networks: [inner]
        networks: {inner: {}}
        volumes: {store: {}}
    """)
    assert stack.cli("up").exit_code == 0
    assert labelled("container", stack.name) and labelled("network", stack.name) and labelled("volume", stack.name)
    res = stack.cli("down")
    assert res.exit_code == 0 and f"stack {stack.name}: containers and networks removed" in res.stdout
    assert not labelled("container", stack.name) and not labelled("network", stack.name)
    assert labelled("volume", stack.name)  # data survives a plain down, as with Compose
    res = stack.cli("down", "--volumes")
    assert res.exit_code == 0
    assert not labelled("volume", stack.name)


def test_second_up_is_idempotent(stack: Stack) -> None:
    stack.write("""
        services:
          web:
            BASE
            command: ["sh", "-c", "touch /tmp/ready; exec sleep 600"]
            healthcheck: {test: ["CMD", "test", "-f", "/tmp/ready"], interval: 30s}
          job:
            BASE
            command: ["echo", "migrated"]
          app:
            BASE
            command: ["sleep", "600"]
            depends_on:
              web: {condition: service_healthy}
              job: {condition: service_completed_successfully}
    """)
    res, first_run = stack.up()
    assert res.exit_code == 0, res
    before = stack.ids()
    res, second = stack.up()
    assert res.exit_code == 0, res
    assert stack.ids() == before  # nothing recreated
    assert second["recreated"] == [] and second["created"] == []
    assert {s["service"]: s["state"] for s in second["services"]} == {"web": "healthy", "job": "done",
                                                                      "app": "running"}
    assert first_run["created"] == ["app", "job", "web"]


def test_rotated_secret_recreates_only_the_services_using_it(stack: Stack) -> None:
    stack.project.write(".env.example", "# @secret hex:16\nTOKEN=\nLEVEL=info\n")
    stack.write("""
        services:
          a:
            BASE
            command: ["sleep", "600"]
            environment: {TOKEN: "${TOKEN}"}
          b:
            BASE
            command: ["sleep", "600"]
            environment: {LEVEL: "${LEVEL}"}
    """, env="")
    assert stack.cli("secrets", "generate").exit_code == 0
    res, _ = stack.up()  # renders .env from the store first
    assert res.exit_code == 0, res
    before = stack.ids()
    token = {e.split("=", 1)[0]: e.split("=", 1)[1] for e in stack.container("a")["Config"]["Env"]}["TOKEN"]
    assert len(token) == 32
    assert stack.cli("secrets", "rotate", "TOKEN").exit_code == 0
    res, data = stack.up()
    assert res.exit_code == 0, res
    assert "rendered .env (TOKEN changed)" in res.stderr
    assert data["recreated"] == ["a"]
    after = stack.ids()
    assert after["a"] != before["a"] and after["b"] == before["b"]
    new = {e.split("=", 1)[0]: e.split("=", 1)[1] for e in stack.container("a")["Config"]["Env"]}["TOKEN"]
    assert new != token


def test_status_shows_health_as_the_probe_sees_it(stack: Stack) -> None:
    stack.write("""
        services:
          web:
            BASE
            command: ["sh", "-c", "touch /tmp/ready; exec sleep 600"]
            healthcheck: {test: ["CMD-SHELL", "test -f /tmp/ready || { echo no ready file; exit 1; }"], interval: 30s}
          job:
            BASE
            command: ["true"]
          idle:
            BASE
            command: ["sleep", "600"]
            profiles: [never]
    """)
    assert stack.cli("up").exit_code == 0
    rows = {r["service"]: r for r in json.loads(stack.cli("status", "-o", "json").stdout)["services"]}
    assert rows["web"]["state"] == "running" and rows["web"]["health"] == "healthy"
    assert rows["web"]["docker_health"] == "starting"  # Docker has not checked yet; stackctl knows
    assert rows["job"]["state"] == "exited" and rows["job"]["exit_code"] == 0 and rows["job"]["health"] == "-"
    docker("exec", stack.container("web")["Id"], "rm", "/tmp/ready")
    res = stack.cli("status")
    assert res.exit_code == 1  # unhealthy: status fails (issue 13), the table still printed
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("web"))
    assert "unhealthy (exit 1: no ready file)" in line


def test_restart_waits_for_health_again(stack: Stack) -> None:
    stack.write("""
        services:
          web:
            BASE
            command: ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 600"]
            healthcheck: {test: ["CMD", "test", "-f", "/tmp/ready"], interval: 30s}
    """)
    assert stack.cli("up").exit_code == 0
    started = stack.container("web")["State"]["StartedAt"]
    res = stack.cli("restart", "web", "-o", "json")
    assert res.exit_code == 0, res
    data = json.loads(res.stdout)
    assert svc(data, "web")["state"] == "healthy" and svc(data, "web")["probes"] >= 1
    assert stack.container("web")["State"]["StartedAt"] != started
    res = stack.cli("restart", "nope")
    assert res.exit_code == 2


def test_logs_prints_compose_logs(stack: Stack) -> None:
    stack.write("""
        services:
          job:
            BASE
            command: ["sh", "-c", "echo line-one; echo line-two"]
    """)
    assert stack.cli("up").exit_code == 0
    res = stack.cli("logs", "job")
    assert res.exit_code == 0
    assert "line-one" in res.stdout and "line-two" in res.stdout
    assert stack.cli("logs", "nope").exit_code == 2


def test_service_healthy_on_a_service_without_healthcheck_is_an_input_error(stack: Stack) -> None:
    stack.write("""
        services:
          db:
            BASE
            command: ["sleep", "600"]
          api:
            BASE
            command: ["sleep", "600"]
            depends_on: {db: {condition: service_healthy}}
    """)
    res = stack.cli("up")
    assert res.exit_code == 2
    assert ("Error: services.api.depends_on.db: waits for 'db' to be healthy (service_healthy), "
            "but db has no healthcheck") in res.stderr


def test_build_then_up(stack: Stack) -> None:
    stack.project.write("img/Dockerfile", f"FROM {IMAGE}\nRUN echo built-by-stackctl > /built\n")
    image = f"stackctl-test/{stack.name}:dev"
    stack.write(f"""
        services:
          made:
            build: ./img
            image: {image}
            stop_signal: SIGKILL
            command: ["sh", "-c", "cat /built; exec sleep 600"]
    """)
    try:
        res = stack.cli("up")  # image missing: built first, its output shown on stderr
        assert res.exit_code == 0, res
        assert "building made (docker compose build)" in res.stderr
        assert "built-by-stackctl" in docker("logs", stack.container("made")["Id"])
        res = stack.cli("up", "--build")
        assert res.exit_code == 0, res
    finally:
        subprocess.run(["docker", "compose", "-p", stack.name, "down", "-t", "0"], capture_output=True)
        docker("rmi", "-f", image, check=False)


def test_compose_file_written_for_us_is_plain_compose(stack: Stack) -> None:
    """`docker compose` alone can manage what stackctl started (logs, exec, down)."""
    stack.write("""
        services:
          web:
            BASE
            command: ["sh", "-c", "echo hello-from-web; exec sleep 600"]
    """)
    assert stack.cli("up").exit_code == 0
    args = ["compose", "-f", str(stack.project.root / "compose.yaml"), "-p", stack.name]
    assert "hello-from-web" in docker(*args, "logs", "web")
    assert docker(*args, "exec", "-T", "web", "echo", "inside").strip() == "inside"
    subprocess.run(["docker", *args, "down", "-t", "0"], capture_output=True, check=True)
    assert not labelled("container", stack.name)


def test_healthcheck_that_cannot_run_fails_fast(stack: Stack) -> None:
    stack.write("""
        services:
          web:
            BASE
            command: ["sleep", "600"]
            healthcheck: {test: ["CMD", "curl", "-f", "http://localhost/"], interval: 10s}
    """)
    res, data = stack.up()
    assert res.exit_code == 1
    (failure,) = data["failures"]
    assert failure["reason"] == "its healthcheck command cannot run in the container"
    assert '"curl": executable file not found' in failure["probe"]["output"]
    assert data["elapsed"] < 10  # not the 30 s Docker would take to call it unhealthy


def test_down_works_when_the_compose_files_no_longer_resolve(stack: Stack) -> None:
    stack.write("""
        services:
          web:
            BASE
            command: ["sleep", "600"]
            environment: {TOKEN: "${TOKEN:?TOKEN is not set}"}
    """, env="TOKEN=abc\n")
    assert stack.cli("up").exit_code == 0
    (stack.project.root / ".env").unlink()  # now `docker compose config` fails: TOKEN is required
    assert stack.cli("status").exit_code == 2
    res = stack.cli("down")
    assert res.exit_code == 0, res
    assert not labelled("container", stack.name) and not labelled("network", stack.name)


def test_first_up_creates_alongside_config_and_later_ones_recreate_nothing(stack: Stack) -> None:
    """The create runs beside `docker compose config` (local images only); what it creates and what
    `up` reports are the same as a create after it would give."""
    stack.write("""
        services:
          web:
            BASE
            command: ["sleep", "600"]
    """)
    res, data = stack.up()
    assert res.exit_code == 0, res
    assert "created web (docker compose up --no-start, run alongside docker compose config)" in res.stderr
    assert data["created"] == ["web"] and data["recreated"] == []
    first_id = stack.container("web")["Id"]
    res, data = stack.up()
    assert res.exit_code == 0, res
    assert data["created"] == [] and data["recreated"] == []
    assert stack.container("web")["Id"] == first_id


def test_engine_exec_is_docker_exec_without_the_cli(stack: Stack) -> None:
    """Probes run through the Engine API: exit code, stdout and stderr, a timeout, a missing binary
    (126/127 and the runtime's message, as the CLI reports them), a container that is not running."""
    from stackctl.compose.engine import Engine, EngineError, engine_socket

    stack.write("""
        services:
          box:
            BASE
            command: ["sleep", "600"]
    """)
    res, _ = stack.up()
    assert res.exit_code == 0, res
    path = engine_socket()
    assert path is not None
    engine, cid = Engine(path), stack.container("box")["Id"]
    code, out = engine.exec_run(cid, ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"], timeout=10)
    assert code == 3 and sorted(out.split()) == ["to-err", "to-out"]
    assert engine.exec_run(cid, ["true"], timeout=10) == (0, "")
    code, out = engine.exec_run(cid, ["no-such-binary"], timeout=10)
    assert code in (126, 127) and "OCI runtime exec failed" in out
    with pytest.raises(TimeoutError):
        engine.exec_run(cid, ["sleep", "5"], timeout=0.5)
    docker("stop", "-t", "0", cid)
    with pytest.raises(EngineError) as info:
        engine.exec_run(cid, ["true"], timeout=10)
    assert info.value.status == 409


RESTART_ON_UPDATE = """
services:
  db:
    BASE
    command: ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 600"]
    healthcheck: {{test: ["CMD", "test", "-f", "/tmp/ready"], interval: 30s}}
    environment: {{VERSION: "{version}"}}
  app:                   # restarted whenever db is updated or restarted
    BASE
    command: ["sleep", "600"]
    depends_on: {{db: {{condition: service_healthy, restart: true}}}}
  other:                 # waits on db too, but is left alone
    BASE
    command: ["sleep", "600"]
    depends_on: {{db: {{condition: service_healthy}}}}
"""


def test_depends_on_restart_restarts_dependents_when_the_dependency_is_updated_or_restarted(stack: Stack) -> None:
    stack.write(RESTART_ON_UPDATE.format(version="1"))
    res, data = stack.up()
    assert res.exit_code == 0, res
    assert data["restarted"] == []  # a first start restarts nothing
    started = {s: stack.container(s)["State"]["StartedAt"] for s in ("app", "other")}
    ids = {s: stack.container(s)["Id"] for s in ("app", "other")}

    stack.write(RESTART_ON_UPDATE.format(version="2"))  # db's config changes: Compose recreates it
    res, data = stack.up()
    assert res.exit_code == 0, res
    assert data["recreated"] == ["db"] and data["restarted"] == ["app"]
    assert first(data, "app", "starting") >= first(data, "db", "healthy")  # once db is up again
    assert stack.container("app")["Id"] == ids["app"]  # the same container, restarted
    assert stack.container("app")["State"]["StartedAt"] != started["app"]
    assert stack.container("other")["State"]["StartedAt"] == started["other"]
    res, data = stack.up()  # nothing updated: nothing restarted
    assert res.exit_code == 0 and data["restarted"] == [], res

    started = {s: stack.container(s)["State"]["StartedAt"] for s in ("app", "other")}
    res = stack.cli("restart", "db", "-o", "json")
    assert res.exit_code == 0, res
    data = json.loads(res.stdout)
    assert data["restarted"] == ["app"] and svc(data, "db")["state"] == "healthy"
    assert first(data, "app", "starting") >= first(data, "db", "healthy")
    assert stack.container("app")["State"]["StartedAt"] != started["app"]
    assert stack.container("other")["State"]["StartedAt"] == started["other"]
