"""The pure parts of issue 13's local items without an engine: which published port is taken and by
what, which variable sets it (the Compose files as written), the process behind a host port (a fake
/proc), and what the create view makes of Compose's events in either order."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from stackctl import model as m
from stackctl.compose.project import PublishedPort
from stackctl.errors import OperationError
from stackctl.profile import load_profile
from stackctl.up import ports
from stackctl.up.creating import CreateWatch
from stackctl.up.plan import plan_up


class FakeProject:
    def __init__(self, held: list[PublishedPort], name: str = "shop") -> None:
        self.name = name
        self.held = held
        self.callback: Any = None

    def published_ports(self) -> list[PublishedPort]:
        return self.held

    def engine(self) -> None:
        return None

    def watch_changes(self, on_event: Any) -> Any:
        self.callback = on_event
        return lambda: None


def loaded_for(root: Path, compose: str, env: str) -> Any:
    (root / "profiles").mkdir()
    (root / "profiles" / "local.yaml").write_text("stack: shop\ncompose:\n  files: [compose.yaml]\n")
    (root / "compose.yaml").write_text(compose)
    (root / ".env").write_text(env)
    services = (
        m.Service(name="web", ports=(m.Port(target=80, published="8080"),)),
        m.Service(name="api", ports=(m.Port(target=9000, published="9000"), m.Port(target=9001, published="5001"))),
        m.Service(name="db", ports=(m.Port(target=5432, published="5432", host_ip="127.0.0.1"),)),
    )
    return SimpleNamespace(profile=load_profile(root, "local"), stack=m.Stack(name="shop", services=services))


COMPOSE = """
services:
  web:
    image: busybox
    ports: ["${WEB_PORT:-8080}:80"]
  api:
    image: busybox
    ports:
      - "9000:9000"
      - target: 9001
        published: "${API_DEBUG_PORT}"
  db:
    image: busybox
    ports: ["${DB_HOST:-127.0.0.1}:${DB_PORT:-5432}:${DB_TARGET:-5432}"]
"""


def test_each_conflict_names_its_variable_and_holder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEB_PORT", raising=False)
    loaded = loaded_for(tmp_path, COMPOSE, "API_DEBUG_PORT=5001\n")
    held = [PublishedPort(8080, "tcp", "0.0.0.0", "other-web-1", "other"),
            PublishedPort(9000, "tcp", "::", "shop-api-1", "shop"),  # ours: not in use
            PublishedPort(5432, "tcp", "0.0.0.0", "postgres", "")]
    taken = {5001}
    with pytest.raises(OperationError) as err:
        ports.check(loaded, plan_up(loaded.stack), FakeProject(held),  # type: ignore[arg-type]  # a fake
                    can_bind=lambda _ip, port, _proto: port not in taken)
    text = str(err.value)
    assert text.startswith("published port already in use, nothing started: ")
    assert "web: port 8080/tcp, set by WEB_PORT (compose.yaml: services.web.ports[0]) is in use by container " \
           "other-web-1 (Compose project other)" in text
    assert "api: port 5001/tcp, set by API_DEBUG_PORT (compose.yaml: services.api.ports[1].published) is in use " \
           "by a process on this host" in text
    assert "db: port 5432/tcp, set by DB_HOST / DB_PORT (compose.yaml: services.db.ports[0]) is in use by " \
           "container postgres" in text
    assert "9000" not in text
    assert "set WEB_PORT / API_DEBUG_PORT / DB_HOST / DB_PORT to a free port" in text


def test_free_ports_and_our_own_pass(tmp_path: Path) -> None:
    loaded = loaded_for(tmp_path, COMPOSE, "API_DEBUG_PORT=5001\n")
    held = [PublishedPort(8080, "tcp", "0.0.0.0", "shop-web-1", "shop"),
            PublishedPort(5432, "tcp", "10.0.0.2", "elsewhere", "")]  # another address than db's 127.0.0.1
    ports.check(loaded, plan_up(loaded.stack), FakeProject(held),  # type: ignore[arg-type]  # a fake
                can_bind=lambda _ip, _port, _proto: None)
    ports.check(loaded, plan_up(loaded.stack, ["web"]), FakeProject([]),  # type: ignore[arg-type]  # a fake
                can_bind=lambda _ip, port, _proto: port != 5001)  # api is not in this plan


def test_host_part_and_ranges() -> None:
    assert ports._host_part("${WEB_PORT:-8080}:80") == "${WEB_PORT:-8080}"
    assert ports._host_part("${IP}:${P:-1}:${T:-80}/udp") == "${IP}:${P:-1}"
    assert ports._host_part("80") == ""
    assert ports._expand("8000-8002") == [8000, 8001, 8002] and ports._expand("x") == []


def test_bind_sees_a_listener() -> None:
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        assert ports._bind("", port, "tcp") is False
    assert ports._bind("", port, "tcp") is True
    assert ports._bind("", port, "sctp") is None


def test_process_on_a_port_from_a_fake_proc(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    (tmp_path / "net" / "tcp").write_text(
        header + "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1\n"
                 "   1: 0100007F:1F91 00000000:0000 01 00000000:00000000 00:00000000 00000000     0        0 4343 1\n")
    (tmp_path / "812" / "fd").mkdir(parents=True)
    (tmp_path / "812" / "comm").write_text("nginx\n")
    os.symlink("socket:[4242]", tmp_path / "812" / "fd" / "3")
    assert ports._process_on(8080, "tcp", tmp_path) == "nginx, pid 812"
    assert ports._process_on(8081, "tcp", tmp_path) is None  # not listening
    assert ports._process_on(8080, "udp", tmp_path) is None


@pytest.mark.parametrize("order", [
    ["create", "kill", "die", "stop", "destroy"],  # Compose v2.2x+: the new container first
    ["kill", "die", "stop", "destroy", "create"],  # the old one first
])
def test_create_watch_shows_recreating_then_recreated_in_either_order(order: list[str]) -> None:
    project = FakeProject([])
    watch = CreateWatch(project, {"db"})  # type: ignore[arg-type]  # a fake
    seen = []
    for action in order:
        project.callback("db", action, "shop-db-1")
        seen.append(watch.snapshot()["db"][:2])
    assert seen[0][0] == "recreating" and seen[-1] == ("recreated", "new container created (not started yet)")
    assert ("recreating", "stopping the old container") in seen
    project.callback("cache", "create", "shop-cache-1")
    assert watch.snapshot()["cache"][:2] == ("created", "new container created (not started yet)")


def _container(status: str, exit_code: int = 0, *, healthcheck: bool = False) -> Any:
    from stackctl.compose.project import ContainerState, HealthcheckSpec

    hc = HealthcheckSpec(("CMD", "true"), ("true",), 30.0, 30.0, 3, 0.0) if healthcheck else None
    return ContainerState("id", "shop-x-1", "x", 1, status, exit_code, None, "", 0, hc, ())


def test_status_problem_of_a_container() -> None:
    from stackctl.up.backend import _problem

    assert _problem(_container("running"), "healthy", one_shot=False) is None
    assert _problem(_container("running"), "unhealthy", one_shot=False) == "unhealthy"
    assert _problem(_container("restarting", 1), "-", one_shot=False) == "restarting (exit code 1)"
    assert _problem(_container("exited", 0), "-", one_shot=True) is None  # a one-shot, done
    assert _problem(_container("exited", 0), "-", one_shot=False) is None  # ends by design
    assert _problem(_container("exited", 2), "-", one_shot=True) == "exited with code 2"
    assert _problem(_container("exited", 0, healthcheck=True), "not running", one_shot=False) == \
        "exited (it has a healthcheck: meant to keep running)"
    assert _problem(_container("exited", 0), "-", one_shot=False, stays_up=True) == \
        "exited (restart policy: meant to keep running)"
    assert _problem(_container("created"), "-", one_shot=False) is None


def test_published_ports_through_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    from stackctl.compose import cli as docker_cli
    from stackctl.compose import project as project_mod

    out = ("blog-web-1\tblog\t0.0.0.0:8080->80/tcp, :::8080->80/tcp\n"
           "dns\t\t127.0.0.1:5353-5354->53-54/udp\n"
           "quiet\tblog\t80/tcp\n")
    monkeypatch.setattr(docker_cli, "run", lambda args, **_kw: docker_cli.Result(list(args), 0, out, ""))
    project = project_mod.LocalProject(None, "shop", Path("."))  # type: ignore[arg-type]  # no Compose call
    project._engine_checked = True  # no Engine API: the CLI path
    assert project.published_ports() == [
        PublishedPort(8080, "tcp", "0.0.0.0", "blog-web-1", "blog"),
        PublishedPort(8080, "tcp", "::", "blog-web-1", "blog"),
        PublishedPort(5353, "udp", "127.0.0.1", "dns", ""),
        PublishedPort(5354, "udp", "127.0.0.1", "dns", ""),
    ]
