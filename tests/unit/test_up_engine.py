"""`up`'s engine side without a Docker engine: socket resolution, CLI fallback, engine events over a fake
unix socket, the back-off of output-triggered probes (fake clock), and start order (longer chains first)."""

from __future__ import annotations

import hashlib
import http.server
import json
import socketserver
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from stackctl import model as m
from stackctl.compose import local as local_mod
from stackctl.compose.local import (
    ContainerState,
    Engine,
    EngineError,
    EngineUnavailable,
    HealthcheckSpec,
    LocalProject,
    ProbeResult,
    engine_socket,
)
from stackctl.local import startup as startup_mod
from stackctl.local.plan import plan_up
from stackctl.local.startup import Startup, Tracked, probe_pause


# ------------------------------------------------------------------------------------ socket resolution
def write_context(config: Path, name: str, host: str, *, current: bool = False) -> None:
    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Endpoints": {"docker": {"Host": host}}}))
    if current:
        (config / "config.json").write_text(json.dumps({"currentContext": name}))


def test_docker_host_unix_is_used_and_tcp_leaves_it_to_the_cli(tmp_path: Path) -> None:
    base = {"HOME": str(tmp_path)}
    assert engine_socket({**base, "DOCKER_HOST": "unix:///run/user/1000/docker.sock"}) == "/run/user/1000/docker.sock"
    assert engine_socket({**base, "DOCKER_HOST": "tcp://10.0.0.5:2376"}) is None
    assert engine_socket({**base, "DOCKER_HOST": "ssh://me@box"}) is None
    assert engine_socket({**base, "DOCKER_HOST": "unix://"}) is None  # no path: not ours to guess


def test_default_socket_without_host_context_or_config(tmp_path: Path) -> None:
    assert engine_socket({"HOME": str(tmp_path)}) == "/var/run/docker.sock"
    assert engine_socket({"DOCKER_CONFIG": str(tmp_path)}) == "/var/run/docker.sock"
    (tmp_path / "config.json").write_text("not json")
    assert engine_socket({"DOCKER_CONFIG": str(tmp_path)}) == "/var/run/docker.sock"
    assert engine_socket({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "default"}) == "/var/run/docker.sock"


def test_current_context_of_the_config_is_followed(tmp_path: Path) -> None:
    write_context(tmp_path, "rootless", "unix:///run/user/1000/docker.sock", current=True)
    assert engine_socket({"DOCKER_CONFIG": str(tmp_path)}) == "/run/user/1000/docker.sock"
    # ~/.docker when DOCKER_CONFIG is not set
    home = tmp_path / "home"
    write_context(home / ".docker", "colima", "unix:///home/me/.colima/docker.sock", current=True)
    assert engine_socket({"HOME": str(home)}) == "/home/me/.colima/docker.sock"


def test_docker_context_beats_the_config_and_docker_host_beats_both(tmp_path: Path) -> None:
    write_context(tmp_path, "rootless", "unix:///run/user/1000/docker.sock", current=True)
    write_context(tmp_path, "other", "unix:///srv/other.sock")
    env = {"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "other"}
    assert engine_socket(env) == "/srv/other.sock"
    assert engine_socket({**env, "DOCKER_HOST": "unix:///from/host.sock"}) == "/from/host.sock"
    assert engine_socket({**env, "DOCKER_CONTEXT": "default"}) == "/var/run/docker.sock"


def test_remote_or_unknown_context_leaves_it_to_the_cli(tmp_path: Path) -> None:
    write_context(tmp_path, "remote", "tcp://build-box:2376")
    assert engine_socket({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "remote"}) is None
    assert engine_socket({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "nope"}) is None
    broken = tmp_path / "contexts" / "meta" / hashlib.sha256(b"broken").hexdigest()
    broken.mkdir(parents=True)
    (broken / "meta.json").write_text(json.dumps({"Endpoints": {}}))
    assert engine_socket({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "broken"}) is None


def test_stackctl_docker_forces_the_cli(tmp_path: Path) -> None:
    write_context(tmp_path, "rootless", "unix:///run/user/1000/docker.sock", current=True)
    assert engine_socket({"STACKCTL_DOCKER": "/opt/docker", "DOCKER_HOST": "unix:///x.sock"}) is None
    assert engine_socket({"STACKCTL_DOCKER": "podman", "DOCKER_CONFIG": str(tmp_path)}) is None
    assert engine_socket({"STACKCTL_DOCKER": "", "DOCKER_HOST": "unix:///x.sock"}) == "/x.sock"  # empty: unset


def test_project_uses_the_environment_and_falls_back_when_the_socket_does_not_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKCTL_DOCKER", "/opt/docker")
    assert LocalProject(None, "t", tmp_path).engine() is None  # type: ignore[arg-type]
    monkeypatch.delenv("STACKCTL_DOCKER")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/missing.sock")
    project = LocalProject(None, "t", tmp_path)  # type: ignore[arg-type]
    engine = project.engine()
    assert engine is not None and engine.path == f"{tmp_path}/missing.sock"
    with pytest.raises(EngineUnavailable):
        engine.call("GET", "/_ping")
    assert project._api("GET", "/containers/json") is None
    assert project.engine() is None  # from now on: the CLI
    calls: list[list[str]] = []

    class Res:
        returncode, stdout, stderr = 0, "abc\ndef\n", ""

    def fake_run(args: list[str], **_: Any) -> Res:
        calls.append(args)
        return Res()

    monkeypatch.setattr(local_mod.docker_cli, "run", fake_run)
    assert project.container_ids() == ["abc", "def"]
    assert calls and calls[0][:2] == ["ps", "-a"]


# ------------------------------------------------------------------------------------ fake engine (unix socket)
class FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    events: list[dict[str, Any]]
    paths: list[str]


class Handler(http.server.BaseHTTPRequestHandler):
    server: FakeEngine

    def log_message(self, *_: Any) -> None: ...

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        if self.path.startswith("/events"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            for e in self.server.events:
                self.wfile.write(json.dumps(e).encode() + b"\n")
            self.wfile.flush()
            return
        if self.path.startswith("/containers/gone/json"):
            body = json.dumps({"message": "No such container: gone"}).encode()
            self.send_response(404)
        else:
            body = json.dumps({"Id": "abc", "Name": "/t-db-1", "State": {"Status": "running"},
                               "Config": {"Labels": {local_mod.SERVICE_LABEL: "db"}}}).encode()
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def fake_engine() -> Any:
    with tempfile.TemporaryDirectory(prefix="se") as d:  # short: AF_UNIX paths are limited to ~100 bytes
        server = FakeEngine(f"{d}/docker.sock", Handler)
        server.events, server.paths = [], []
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield server
        finally:
            server.shutdown()
            server.server_close()


def test_engine_calls_and_errors_over_a_unix_socket(fake_engine: FakeEngine) -> None:
    engine = Engine(fake_engine.server_address)  # type: ignore[arg-type]
    status, data = engine.call("GET", "/containers/abc/json")
    assert status == 200 and data["Id"] == "abc"
    with pytest.raises(EngineError) as err:
        engine.call("GET", "/containers/gone/json")
    assert err.value.status == 404 and err.value.message == "No such container: gone"


def test_watch_reports_the_projects_engine_events(fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STACKCTL_DOCKER", raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{fake_engine.server_address}")
    fake_engine.events = [{"Type": "container", "Action": "die", "Actor": {"ID": "abc"}},
                          {"status": "health_status: healthy", "id": "def"}]
    project = LocalProject(None, "shop", Path("."))  # type: ignore[arg-type]
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def on_event(cid: str, action: str) -> None:
        seen.append((cid, action))
        if len(seen) == 2:
            done.set()

    stop = project.watch(on_event)
    assert stop is not None
    assert done.wait(5)
    stop()
    assert seen == [("abc", "die"), ("def", "health_status: healthy")]
    (path,) = [p for p in fake_engine.paths if p.startswith("/events")]
    from urllib.parse import parse_qs, urlsplit
    filters = json.loads(parse_qs(urlsplit(path).query)["filters"][0])
    assert filters["label"] == [f"{local_mod.PROJECT_LABEL}=shop"]
    assert set(filters["event"]) >= {"die", "restart", "health_status"}
    assert project.inspect(["abc", "gone"])[0].service == "db"  # 404: removed meanwhile, left out
    assert len(project.inspect(["abc", "gone"])) == 1


def test_without_the_engine_api_nothing_is_watched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKCTL_DOCKER", "/opt/docker")
    project = LocalProject(None, "shop", Path("."))  # type: ignore[arg-type]
    assert project.watch(lambda *_: None) is None
    c = ContainerState(id="x", name="x", service="x", number=1, status="running", exit_code=0, health=None,
                       health_output="", restart_count=0, healthcheck=None, ports=())
    assert project.watch_output(c, lambda: None) is None


# ------------------------------------------------------------------------------------ probe cadence and back-off
def test_probe_pause_is_short_early_and_longer_later() -> None:
    assert [probe_pause(s) for s in (0, 1.99, 2, 14.9, 15, 100)] == [0.2, 0.2, 0.5, 0.5, 1.0, 1.0]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeWake:
    """`Tracked.wake` on the fake clock: waiting advances the clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.flag = False

    def set(self) -> None:
        self.flag = True

    def clear(self) -> None:
        self.flag = False

    def is_set(self) -> bool:
        return self.flag

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None and timeout >= 0
        self.clock.now += timeout
        return False


HC = HealthcheckSpec(test=("CMD", "ready"), argv=("ready",), interval=30, timeout=1, retries=3, start_period=0)


class ChattyProject:
    """Every probe fails and makes the container log a line (an access log), as a chatty service does."""

    def __init__(self, clock: FakeClock, *, chatty: bool, probes: int) -> None:
        self.clock = clock
        self.chatty = chatty
        self.limit = probes
        self.at: list[float] = []
        self.on_output: Any = None
        self.tracked: Tracked | None = None

    def watch_output(self, c: ContainerState, on_output: Any) -> Any:
        self.on_output = on_output
        return lambda: None

    def probe(self, c: ContainerState, hc: HealthcheckSpec, **_: Any) -> ProbeResult:
        self.at.append(self.clock.now)
        if self.chatty:
            self.on_output()
        if len(self.at) >= self.limit:
            assert self.tracked is not None
            self.tracked.stop.set()
        return ProbeResult(False, 1, "no", 0.0)


def drive_prober(*, chatty: bool, probes: int) -> list[float]:
    clock = FakeClock()
    project = ChattyProject(clock, chatty=chatty, probes=probes)
    c = ContainerState(id="web", name="t-web-1", service="web", number=1, status="running", exit_code=0,
                       health="starting", health_output="", restart_count=0, healthcheck=HC, ports=())
    runner = Startup(project, plan_up(m.Stack(name="t", services=(m.Service(name="web"),))), [c],  # type: ignore[arg-type]
                     timeout=600, view=None, clock=clock)  # type: ignore[arg-type]
    _, t = runner.by_id["web"]
    t.wake = FakeWake(clock)  # type: ignore[assignment]
    project.tracked = t
    runner._work(t, False, True)
    assert project.on_output is not None
    return [round(b - a, 6) for a, b in zip(project.at, project.at[1:], strict=False)]


def test_output_triggered_probes_back_off_to_the_regular_pause() -> None:
    gaps = drive_prober(chatty=True, probes=8)
    assert gaps == [0.03, 0.06, 0.12, 0.2, 0.2, 0.2, 0.2]


def test_without_output_the_regular_cadence_holds() -> None:
    gaps = drive_prober(chatty=False, probes=6)
    assert gaps == [0.2] * 5


def test_back_off_resets_after_a_quiet_pause() -> None:
    clock = FakeClock()
    c = ContainerState(id="web", name="t-web-1", service="web", number=1, status="running", exit_code=0,
                       health="starting", health_output="", restart_count=0, healthcheck=HC, ports=())
    runner = Startup(None, plan_up(m.Stack(name="t", services=(m.Service(name="web"),))), [c],  # type: ignore[arg-type]
                     timeout=600, view=None, clock=clock)  # type: ignore[arg-type]
    _, t = runner.by_id["web"]
    t.wake = FakeWake(clock)  # type: ignore[assignment]
    began = clock.now
    paused = []
    for output in (True, True, False, True):
        probe_began = clock.now
        if output:
            runner._output(t)  # output during the probe
        start = clock.now
        runner._pause(t, began, probe_began)
        paused.append(round(clock.now - start, 6))
    assert paused == [0.03, 0.06, 0.2, 0.03]
    assert t.quick == 1


# ------------------------------------------------------------------------------------ start order
def dep(service: str, condition: str = "service_started") -> m.Dependency:
    return m.Dependency(service=service, condition=condition)  # type: ignore[arg-type]


def test_longer_chains_start_first(monkeypatch: pytest.MonkeyPatch) -> None:
    s = m.Stack(name="t", services=(
        m.Service(name="api", depends_on=(dep("migrate", "service_completed_successfully"),
                                          dep("cache", "service_healthy"))),
        m.Service(name="cache"), m.Service(name="db"), m.Service(name="lone"),
        m.Service(name="migrate", depends_on=(dep("db", "service_healthy"),))))
    plan = plan_up(s)
    containers = [ContainerState(id=n, name=f"t-{n}-1", service=n, number=1, status="created", exit_code=0,
                                 health=None, health_output="", restart_count=0, healthcheck=None, ports=())
                  for n in plan.services]

    class View:
        def changed(self, *_: Any) -> None: ...

    runner = Startup(None, plan, containers, timeout=60, view=View())  # type: ignore[arg-type]
    assert runner.depth == {"db": 2, "migrate": 1, "cache": 1, "api": 0, "lone": 0}
    launched: list[str] = []

    def fake_launch(unit: Any) -> None:
        launched.append(unit.name)
        unit.state = "starting"

    monkeypatch.setattr(runner, "_launch", fake_launch)
    runner._launch_ready()
    assert launched == ["db"]  # cache and lone could start too, but db heads the longest chain
    assert runner.units["cache"].detail == "waiting on the docker start of db (longer chains first)"
    assert runner.units["lone"].state == "waiting"
    runner._launch_ready()  # db still in `docker start`
    assert launched == ["db"]
    runner.units["db"].state = "probing"  # its `docker start` returned
    runner._launch_ready()
    assert launched == ["db", "cache"]  # lone waits for cache's start (depth 1 > 0)
    assert "cache" in runner.units["lone"].detail
    runner.units["cache"].state = "running"
    runner._launch_ready()
    assert launched == ["db", "cache", "lone"]


def test_start_order_applies_to_the_real_scheduler_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through `run()`: every `docker start` of a deeper chain is issued before shallower ones."""
    monkeypatch.setattr(startup_mod, "POLL_SECONDS", 0.02)
    s = m.Stack(name="t", services=(m.Service(name="a"), m.Service(name="b"),
                                    m.Service(name="c", depends_on=(dep("z"),)), m.Service(name="z"),
                                    m.Service(name="y", depends_on=(dep("z"),)),
                                    m.Service(name="w", depends_on=(dep("y"),))))
    plan = plan_up(s)
    order: list[str] = []
    lock = threading.Lock()

    class Project:
        def start(self, c: ContainerState, **_: Any) -> None:
            with lock:
                order.append(c.service)

        def inspect(self, ids: list[str]) -> list[ContainerState]:
            return [ContainerState(id=i, name=i, service=i, number=1, status="running", exit_code=0, health=None,
                                   health_output="", restart_count=0, healthcheck=None, ports=()) for i in ids]

    class View:
        def changed(self, *_: Any) -> None: ...
        def tick(self, *_: Any) -> None: ...

    containers = [ContainerState(id=n, name=n, service=n, number=1, status="created", exit_code=0, health=None,
                                 health_output="", restart_count=0, healthcheck=None, ports=())
                  for n in plan.services]
    runner = Startup(Project(), plan, containers, timeout=10, view=View())  # type: ignore[arg-type]
    assert runner.run(), runner.failures
    assert order.index("z") < min(order.index("a"), order.index("b"))  # z: depth 2, a and b: 0
    assert order.index("z") < order.index("y") < min(order.index(n) for n in "abcw")  # then y (depth 1)


@pytest.mark.parametrize("answer", [None, b"garbage that is not HTTP\r\n\r\n"], ids=["silent", "garbage"])
def test_a_socket_that_is_not_a_usable_engine_means_the_cli(tmp_path: Path, answer: bytes | None) -> None:
    """A socket that accepts but never answers, or answers something other than HTTP, is treated like a
    missing one (EngineUnavailable → the project falls back to the docker CLI), not as a failed call."""
    import socket

    path = str(tmp_path / "silent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    done = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        if answer is not None:
            conn.recv(65536)
            conn.sendall(answer)
            conn.close()
        done.wait(5)

    threading.Thread(target=serve, daemon=True).start()
    try:
        with pytest.raises(EngineUnavailable):
            Engine(path).call("GET", "/_ping", timeout=0.3)
    finally:
        done.set()
        server.close()


def test_demux_reads_docker_stream_frames() -> None:
    def frame(stream: int, data: bytes) -> bytes:
        return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data

    raw = frame(1, b"out ") + frame(2, b"err\n") + frame(1, b"")  # an empty frame too
    assert local_mod._demux(raw) == "out err\n"
    assert local_mod._demux(b"plain tty output") == "plain tty output"  # a TTY exec is not framed
    assert local_mod._demux(frame(1, "é".encode())) == "é"
