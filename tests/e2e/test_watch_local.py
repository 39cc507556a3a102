"""`stackctl up --watch` against the real engine: each develop.watch action, ignore rules, deletions,
coalescing, a failing rebuild keeping the old container, and the restart of dependents.

`stackctl up --watch` runs as a child process (as a user runs it; Ctrl-C is a SIGINT); its stderr is
read line by line. Images are built FROM the local busybox image (nothing pulled). Every test removes
its project (containers, networks) and its image in a finalizer, pass or fail. The waits are generous
bounds on what must eventually happen, not timings.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dockerutil import docker, docker_run, labelled

pytestmark = [pytest.mark.docker, pytest.mark.engine]

BASE = "stackctl-test/busybox:latest"
WAIT = 90.0  # seconds: a bound on anything the loop must do (a rebuild on a busy 2-core machine)

# At start: the image's version and the synced greeting (if any) published next to the site.
START = "cp /version /www/version.txt; cat /env/greeting > /www/greeting.txt 2>/dev/null; exec httpd -f -p 8080 -h /www"
DOCKERFILE = f"""
FROM {BASE}
COPY www /www
COPY version /version
CMD ["sh", "-c", "{START}"]
"""

COMPOSE = """
services:
  web:
    build: ./web
    image: {image}
    stop_signal: SIGKILL
    healthcheck: {{test: ["CMD-SHELL", "wget -q -O /dev/null http://localhost:8080/version.txt"], interval: 30s}}
    develop:
      watch:
        - {{action: sync, path: ./web/www, target: /www, ignore: ["drafts/"]}}
        - {{action: rebuild, path: ./web/version}}
        - action: sync+exec
          path: ./web/conf
          target: /conf
          exec: {{command: ["sh", "-c", "cat /conf/*.conf > /www/conf.txt"]}}
        - {{action: sync+restart, path: ./web/env, target: /env}}
        - {{action: restart, path: ./web/kick}}
  dep:
    image: {base}
    stop_signal: SIGKILL
    command: ["sleep", "600"]
    depends_on: {{web: {{condition: service_healthy, restart: true}}}}
"""


@dataclass
class Watching:
    """A running `stackctl up --watch` and what it printed so far."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def wait_for(self, pred: Callable[[str], bool], *, after: int = 0, what: str = "") -> str:
        """The first line from index `after` on that satisfies `pred` (fails after WAIT seconds)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with self.lock:
                for line in self.lines[after:]:
                    if pred(line):
                        return line
            if self.proc.poll() is not None:
                time.sleep(0.5)  # the reader takes in the last lines
                with self.lock:
                    found = [line for line in self.lines[after:] if pred(line)]
                if found:
                    return found[0]
                break
            time.sleep(0.05)
        pytest.fail(f"no line {what!r} within {WAIT:g} s; output:\n" + "\n".join(self.lines))

    def mark(self) -> int:
        with self.lock:
            return len(self.lines)

    def since(self, n: int) -> list[str]:
        with self.lock:
            return list(self.lines[n:])


@dataclass
class Dev:
    name: str
    root: Path
    image: str
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def container(self, service: str) -> dict[str, Any]:
        ids = docker("ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={self.name}",
                     "--filter", f"label=com.docker.compose.service={service}").split()
        assert len(ids) == 1, f"{service}: {ids}"
        return dict(json.loads(docker("inspect", ids[0]))[0])

    def cat(self, service: str, path: str) -> str | None:
        res = docker_run("exec", self.container(service)["Id"], "cat", path, check=False)
        return res.stdout if res.returncode == 0 else None

    def eventually(self, service: str, path: str, want: str | None) -> None:
        """The file in the container comes to hold `want` (None: comes to be absent)."""
        deadline = time.monotonic() + WAIT
        got: str | None = ""
        while time.monotonic() < deadline:
            got = self.cat(service, path)
            if got == want:
                return
            time.sleep(0.1)
        pytest.fail(f"{service}:{path} is {got!r}, not {want!r}")

    def start(self, *args: str, env: dict[str, str] | None = None) -> Watching:
        proc = subprocess.Popen([sys.executable, "-m", "stackctl", "up", "--watch", *args], cwd=self.root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=None if env is None else {**os.environ, **env},
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.procs.append(proc)
        w = Watching(proc)
        threading.Thread(target=w.read, daemon=True).start()
        w.wait_for(lambda line: line.startswith("watching for changes"), what="watching for changes")
        return w


@pytest.fixture
def dev(project: Any) -> Iterator[Dev]:
    name = f"wt-{uuid.uuid4().hex[:10]}"
    d = Dev(name=name, root=project.root, image=f"stackctl-test/{name}-web:dev")
    d.write("web/Dockerfile", DOCKERFILE)
    d.write("web/.dockerignore", "**/*.log\n")
    d.write("web/version", "v1\n")
    d.write("web/www/index.html", "hello\n")
    d.write("web/www/old.html", "old\n")
    d.write("web/conf/a.conf", "a=1\n")
    d.write("web/env/greeting", "hi\n")
    d.write("web/kick", "0\n")
    d.write("compose.yaml", COMPOSE.format(image=d.image, base=BASE))
    d.write("profiles/local.yaml", f"stack: {name}\ncompose:\n  files: [compose.yaml]\n  env_files: []\n")
    try:
        yield d
    finally:
        for proc in d.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        subprocess.run(["docker", "compose", "-p", name, "down", "-v", "--remove-orphans", "-t", "0"],
                       capture_output=True)
        for kind, rm in (("container", ["rm", "-f", "-v"]), ("network", ["network", "rm"])):
            leftovers = labelled(kind, name)
            if leftovers:
                docker(*rm, *leftovers, check=False)
        docker("rmi", "-f", d.image, check=False)


def stop(w: Watching) -> int:
    """Ctrl-C, as a user ends the loop; the exit code."""
    w.proc.send_signal(signal.SIGINT)
    return w.proc.wait(timeout=WAIT)


def started_at(dev: Dev, service: str) -> str:
    return str(dev.container(service)["State"]["StartedAt"])


def test_sync_deletes_ignores_coalesces_and_ctrl_c_leaves_the_stack_running(dev: Dev) -> None:
    w = dev.start()
    web_id = dev.container("web")["Id"]

    n = w.mark()
    dev.write("web/www/index.html", "changed\n")
    line = w.wait_for(lambda s: "  sync  " in s, after=n, what="sync")
    assert "1 file to /www: index.html" in line and "[compose.yaml: services.web.develop.watch[0]]" in line
    dev.eventually("web", "/www/index.html", "changed\n")

    n = w.mark()
    (dev.root / "web/www/old.html").unlink()
    line = w.wait_for(lambda s: "  sync  " in s, after=n, what="sync of a deletion")
    assert "1 deleted" in line
    dev.eventually("web", "/www/old.html", None)

    # ignored: by the rule (drafts/), by the build context's .dockerignore (*.log), an editor's swap file
    n = w.mark()
    dev.write("web/www/drafts/d.html", "draft\n")
    dev.write("web/www/x.log", "log\n")
    dev.write("web/www/.index.html.swp", "swap\n")
    dev.write("web/www/after.html", "after\n")  # a real edit after them: its line shows they were dropped
    line = w.wait_for(lambda s: "  sync  " in s, after=n, what="sync after ignored files")
    assert "after.html" in line and "d.html" not in line and "x.log" not in line and ".swp" not in line
    dev.eventually("web", "/www/after.html", "after\n")
    assert dev.cat("web", "/www/drafts/d.html") is None and dev.cat("web", "/www/x.log") is None

    # rapid edits: one batch, one sync
    n = w.mark()
    for i in range(20):
        dev.write(f"web/www/many/f{i:02}.html", f"{i}\n")
    w.wait_for(lambda s: "  sync  " in s, after=n, what="sync of 20 files")
    dev.eventually("web", "/www/many/f19.html", "19\n")
    time.sleep(1.0)  # a second batch, if the edits had been split, would be printed by now
    syncs = [s for s in w.since(n) if "  sync  " in s]
    assert len(syncs) == 1 and "20 files to /www" in syncs[0], syncs

    assert stop(w) == 0
    assert "keeps running" in w.since(0)[-1]
    state = dev.container("web")
    assert state["Id"] == web_id and state["State"]["Running"]


def test_sync_exec_sync_restart_restart_and_dependents(dev: Dev) -> None:
    w = dev.start()
    web_id = dev.container("web")["Id"]

    n = w.mark()
    dev.write("web/conf/a.conf", "a=2\n")
    line = w.wait_for(lambda s: "  exec  " in s, after=n, what="exec")
    assert "ran sh -c cat /conf/*.conf > /www/conf.txt" in line and "watch[2]" in line
    dev.eventually("web", "/www/conf.txt", "a=2\n")

    # sync+restart: the file synced, the container restarted (it reads the file at start), health-gated,
    # and dep (depends_on web: restart: true) restarted once web is healthy again
    dep_before, web_before = started_at(dev, "dep"), started_at(dev, "web")
    n = w.mark()
    dev.write("web/env/greeting", "hello again\n")
    line = w.wait_for(lambda s: "  restart  " in s, after=n, what="restart")
    assert "restarted, healthy" in line and "restarted dep (depends_on restart: true)" in line
    assert "watch[3]" in line
    dev.eventually("web", "/www/greeting.txt", "hello again\n")
    assert started_at(dev, "web") != web_before and started_at(dev, "dep") != dep_before
    assert dev.container("web")["Id"] == web_id  # restarted, not recreated

    # restart: no file synced
    web_before = started_at(dev, "web")
    n = w.mark()
    dev.write("web/kick", "1\n")
    line = w.wait_for(lambda s: "  restart  " in s, after=n, what="restart")
    assert "watch[4]" in line and "restarted, healthy" in line
    assert not [s for s in w.since(n) if "  sync  " in s]
    assert started_at(dev, "web") != web_before
    assert stop(w) == 0


def test_rebuild_recreates_and_a_failing_build_keeps_the_old_container(dev: Dev) -> None:
    w = dev.start()
    old = dev.container("web")["Id"]
    dep_before = started_at(dev, "dep")

    n = w.mark()
    dev.write("web/version", "v2\n")
    line = w.wait_for(lambda s: "  rebuild  " in s, after=n, what="rebuild")
    assert "built and recreated in" in line and ", healthy" in line and "watch[1]" in line
    assert "restarted dep (depends_on restart: true)" in line
    new = dev.container("web")["Id"]
    assert new != old
    assert dev.cat("web", "/www/version.txt") == "v2\n"
    assert started_at(dev, "dep") != dep_before

    n = w.mark()
    dev.write("web/Dockerfile", DOCKERFILE + "RUN echo the-build-broke && false\n")
    dev.write("web/version", "v3\n")
    line = w.wait_for(lambda s: "  rebuild  " in s, after=n, what="failed rebuild")
    assert "FAILED: docker compose up --build failed" in line and "the running container is kept" in line
    w.wait_for(lambda s: "the-build-broke" in s, after=n, what="the build's own error")  # shown below the line
    state = dev.container("web")
    assert state["Id"] == new and state["State"]["Running"]
    assert dev.cat("web", "/www/version.txt") == "v2\n"
    assert stop(w) == 0


def test_initial_sync_copies_the_files_at_start(dev: Dev) -> None:
    dev.write("web/extra/only-on-host.txt", "from the host\n")
    dev.write("web/extra/skip.tmp", "no\n")
    compose = (dev.root / "compose.yaml").read_text().replace(
        "        - {action: restart, path: ./web/kick}\n",
        "        - {action: restart, path: ./web/kick}\n"
        "        - {action: sync, path: ./web/extra, target: /www/extra, ignore: ['*.tmp'], initial_sync: true}\n")
    dev.write("compose.yaml", compose)
    w = dev.start()
    line = w.wait_for(lambda s: "  initial sync  " in s, what="initial sync")
    assert "1 file to /www/extra: only-on-host.txt" in line
    assert dev.cat("web", "/www/extra/only-on-host.txt") == "from the host\n"
    assert dev.cat("web", "/www/extra/skip.tmp") is None
    assert stop(w) == 0


def test_without_the_engine_api_sync_and_exec_go_through_the_docker_cli(dev: Dev) -> None:
    """`STACKCTL_DOCKER` (a docker binary of its own): no Engine API, so `docker cp -` and `docker exec`."""
    docker_bin = shutil.which("docker")
    assert docker_bin
    w = dev.start(env={"STACKCTL_DOCKER": docker_bin})
    n = w.mark()
    dev.write("web/www/index.html", "through the cli\n")
    (dev.root / "web/www/old.html").unlink()
    line = w.wait_for(lambda s: "  sync  " in s, after=n, what="sync")
    assert "1 file to /www, 1 deleted" in line
    dev.eventually("web", "/www/index.html", "through the cli\n")
    dev.eventually("web", "/www/old.html", None)
    n = w.mark()
    dev.write("web/conf/a.conf", "a=cli\n")
    w.wait_for(lambda s: "  exec  " in s and "FAILED" not in s, after=n, what="exec")
    dev.eventually("web", "/www/conf.txt", "a=cli\n")
    assert stop(w) == 0


def test_a_bad_rule_is_refused_before_anything_starts(dev: Dev) -> None:
    compose = (dev.root / "compose.yaml").read_text().replace(
        '          exec: {command: ["sh", "-c", "cat /conf/*.conf > /www/conf.txt"]}\n', "")
    dev.write("compose.yaml", compose)
    res = subprocess.run([sys.executable, "-m", "stackctl", "up", "--watch"], cwd=dev.root, capture_output=True,
                         text=True, timeout=WAIT)
    assert res.returncode == 2, res.stderr
    assert "compose.yaml: services.web.develop.watch[2].exec.command" in res.stderr
    assert "Traceback" not in res.stderr
    assert labelled("container", dev.name) == []
