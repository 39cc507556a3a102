"""The everyday loop against the real engine (issue 13, items 9-11): a published port already taken,
`up` after a rotation, `status` as a health gate.

Each test has its own Compose project name (and its own names for anything else it starts) and
removes everything it created in a finalizer, pass or fail.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
    others: list[str] = field(default_factory=list)  # Compose projects started besides this one

    def write(self, compose: str, *, env: str | None = None) -> None:
        # busybox `sleep`/`sh` as PID 1 ignore SIGTERM: SIGKILL keeps down/recreate from waiting 10 s.
        text = re.sub(r"^( *)BASE$", lambda m: f"{m[1]}image: {IMAGE}\n{m[1]}stop_signal: SIGKILL",
                      textwrap.dedent(compose), flags=re.M)
        self.project.write("compose.yaml", text)
        if env is not None:
            self.project.write(".env", env)
        self.project.profile("local", f"stack: {self.name}\ncompose:\n  files: [compose.yaml]\n"
                                      f"  env_files: {'[.env]' if env is not None else '[]'}\n")

    def ids(self) -> dict[str, str]:
        out = docker("ps", "-a", "--filter", f"label=com.docker.compose.project={self.name}",
                     "--format", '{{.Label "com.docker.compose.service"}} {{.ID}}')
        return dict(line.split() for line in out.splitlines())

    def states(self) -> dict[str, str]:
        out = docker("ps", "-a", "--filter", f"label=com.docker.compose.project={self.name}",
                     "--format", '{{.Label "com.docker.compose.service"}} {{.State}}')
        return dict(line.split() for line in out.splitlines())


def _remove(name: str) -> None:
    subprocess.run(["docker", "compose", "-p", name, "down", "-v", "--remove-orphans", "-t", "0"],
                   capture_output=True)
    for kind, rm in (("container", ["rm", "-f", "-v"]), ("network", ["network", "rm"]),
                     ("volume", ["volume", "rm", "-f"])):
        leftovers = labelled(kind, name)
        if leftovers:
            docker(*rm, *leftovers, check=False)


@pytest.fixture
def stack(project: Any, cli: Callable[..., Any]) -> Iterator[Stack]:
    s = Stack(name=f"upe-{uuid.uuid4().hex[:10]}", project=project, cli=cli)
    try:
        yield s
    finally:
        for name in (s.name, *s.others):
            _remove(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------ item 11
def test_status_exits_1_when_a_service_is_unhealthy_or_exited_and_0_for_a_finished_one_shot(stack: Stack) -> None:
    stack.write("""
        services:
          web:
            BASE
            command: ["sh", "-c", "touch /tmp/ready; exec sleep 600"]
            healthcheck: {test: ["CMD-SHELL", "test -f /tmp/ready || { echo no ready file; exit 1; }"], interval: 30s}
          migrate:
            BASE
            command: ["true"]
          worker:
            BASE
            command: ["sh", "-c", "test ! -f /tmp/crash || exit 3; touch /tmp/crash; exec sleep 600"]
            depends_on: {migrate: {condition: service_completed_successfully}}
    """)
    res = stack.cli("up")
    assert res.exit_code == 0, res
    res = stack.cli("status")
    assert res.exit_code == 0, res  # the one-shot exited 0 as intended
    data = json.loads(stack.cli("status", "-o", "json").stdout)
    assert data["ok"] is True and all(r["problem"] is None for r in data["services"])

    docker("exec", stack.ids()["web"], "rm", "/tmp/ready")
    res = stack.cli("status")
    assert res.exit_code == 1, res
    assert "web unhealthy" in res.stderr

    docker("restart", "-t", "0", stack.ids()["worker"])  # its second start exits 3
    docker("wait", stack.ids()["worker"])
    res = stack.cli("status", "-o", "json")
    assert res.exit_code == 1, res
    data = json.loads(res.stdout)
    rows = {r["service"]: r for r in data["services"]}
    assert data["ok"] is False
    assert rows["worker"]["problem"] == "exited with code 3"
    assert rows["migrate"]["problem"] is None and rows["web"]["problem"] == "unhealthy"
    assert res.stderr.strip().splitlines()[-1] == \
        f"Error: stack {stack.name}: web unhealthy, worker exited with code 3"


# ------------------------------------------------------------------------------------------ item 10
def test_failure_report_never_calls_a_running_dependent_not_started(stack: Stack) -> None:
    # `worker` waits on the migration; a changed value makes the migration fail on the next `up`.
    # worker's own config did not change: its container keeps running, and the report says so.
    stack.write("""
        services:
          migrate:
            BASE
            command: ["sh", "-c", "echo migrating; test \\"$$FAIL\\" != 1 || { echo 'ERROR: 002' >&2; exit 4; }"]
            environment: {FAIL: "${FAIL}"}
          worker:
            BASE
            command: ["sleep", "600"]
            depends_on: {migrate: {condition: service_completed_successfully}}
          web:
            BASE
            command: ["sleep", "600"]
            environment: {FAIL: "${FAIL}"}
            depends_on: {migrate: {condition: service_completed_successfully}}
    """, env="FAIL=0\n")
    res = stack.cli("up")
    assert res.exit_code == 0, res
    stack.project.write(".env", "FAIL=1\n")
    res = stack.cli("up", "-o", "json")
    assert res.exit_code == 1, res
    (failure,) = json.loads(res.stdout)["failures"]
    assert failure["service"] == "migrate"
    assert stack.states()["worker"] == "running"
    assert failure["not_started"] == ["web"]  # recreated, created, never started
    assert failure["left_running"] == ["worker"]
    last = res.stderr.strip().splitlines()[-1]
    assert last == ("Error: start-up stopped: migrate exited with code 4; not started: web; "
                    "left running as they were: worker")
    assert "not started:    web\n" in res.stderr
    assert "left running:   worker" in res.stderr
    timeline = json.loads(res.stdout)["timeline"]
    assert {"service": "worker", "state": "waiting", "detail": "running from before; waiting on migrate (done)"} \
        in [{k: e[k] for k in ("service", "state", "detail")} for e in timeline]


# ------------------------------------------------------------------------------------------ item 9
PORTS = """
    services:
      web:
        BASE
        command: ["sleep", "600"]
        ports: ["${WEB_PORT:-8080}:80"]
      app:
        BASE
        command: ["sleep", "600"]
"""


def test_a_published_port_held_by_a_host_process_fails_before_anything_starts(stack: Stack) -> None:
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        stack.write(PORTS, env=f"WEB_PORT={port}\n")
        res = stack.cli("up")
        assert res.exit_code == 1, res
        last = res.stderr.strip().splitlines()[-1]
        assert f"web: port {port}/tcp, set by WEB_PORT (compose.yaml: services.web.ports[0]) is in use by " \
               "a process on this host" in last, last
        assert "nothing started" in last and "set WEB_PORT to a free port" in last
        assert "running" not in stack.states().values()  # nothing started (not even app)


def test_an_edit_to_a_taken_port_leaves_the_running_stack_as_it_was(stack: Stack) -> None:
    """The daily loop: the stack runs, an edit moves web to a port something else holds. `up` fails
    on the port before it recreates anything: the old web keeps running, same container."""
    stack.write(PORTS, env=f"WEB_PORT={free_port()}\n")
    res = stack.cli("up")
    assert res.exit_code == 0, res
    before = stack.ids()
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        stack.project.write(".env", f"WEB_PORT={port}\n")
        res = stack.cli("up")
    assert res.exit_code == 1, res
    assert f"web: port {port}/tcp, set by WEB_PORT" in res.stderr, res
    assert stack.ids() == before and set(stack.states().values()) == {"running"}


def test_a_published_port_held_by_another_container_names_it_and_a_second_up_works(stack: Stack) -> None:
    port = free_port()
    other = f"upe-other-{uuid.uuid4().hex[:8]}"
    stack.others.append(other)
    stack.project.write("other/compose.yaml", f"""
        services:
          proxy:
            image: {IMAGE}
            stop_signal: SIGKILL
            command: ["sleep", "600"]
            ports: ["{port}:80"]
    """)
    docker("compose", "-p", other, "-f", str(stack.project.root / "other/compose.yaml"), "up", "-d")
    stack.write(PORTS, env=f"WEB_PORT={port}\n")
    res = stack.cli("up")
    assert res.exit_code == 1, res
    last = res.stderr.strip().splitlines()[-1]
    assert f"web: port {port}/tcp, set by WEB_PORT (compose.yaml: services.web.ports[0]) is in use by " \
           f"container {other}-proxy-1 (Compose project {other})" in last, last
    assert "running" not in stack.states().values()

    _remove(other)
    res = stack.cli("up")
    assert res.exit_code == 0, res
    res = stack.cli("up")  # our own container holds the port now: not "in use"
    assert res.exit_code == 0, res


def test_up_shows_what_compose_recreates_while_it_does(stack: Stack) -> None:
    # Two services use a value that changes (as after `stackctl secrets rotate`); their processes ignore
    # SIGTERM (busybox sleep as PID 1), so Compose waits out each stop_grace_period while recreating:
    # seconds in which `up` used to show nothing at all.
    stack.write(f"""
        services:
          db:
            image: {IMAGE}
            command: ["sleep", "600"]
            stop_grace_period: 2s
            environment: {{TOKEN: "${{TOKEN}}"}}
          worker:
            image: {IMAGE}
            command: ["sleep", "600"]
            stop_grace_period: 2s
            environment: {{TOKEN: "${{TOKEN}}"}}
            depends_on: [db]
          other:
            BASE
            command: ["sleep", "600"]
    """, env="TOKEN=one\n")
    res = stack.cli("up")
    assert res.exit_code == 0, res
    before = stack.ids()
    stack.project.write(".env", "TOKEN=two\n")
    res = stack.cli("up", "-o", "json")  # -o json: the plain progress lines on stderr
    assert res.exit_code == 0, res
    assert sorted(json.loads(res.stdout)["recreated"]) == ["db", "worker"]
    lines = res.stderr.splitlines()
    created_note = next(i for i, ln in enumerate(lines) if ln.startswith(("created ", "creating ")))
    for service in ("db", "worker"):
        stopping = [i for i, ln in enumerate(lines) if re.search(
            rf"^\s+[\d.]+s\s+{service}\s+recreating\s+stopping the old container "
            r"\(up to 2 s: stop_grace_period\)$", ln)]
        done = [i for i, ln in enumerate(lines) if re.search(
            rf"^\s+[\d.]+s\s+{service}\s+recreated\s+new container created", ln)]
        assert stopping and done and stopping[0] < done[0], res.stderr
        assert created_note <= stopping[0]
    assert not any(re.search(r"\sother\s+recreat", ln) for ln in lines)
    after = stack.ids()
    assert after["other"] == before["other"] and after["db"] != before["db"]
