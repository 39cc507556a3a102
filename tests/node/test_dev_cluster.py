"""`stackctl dev PROFILE` on the real node (stackctl/dev/cluster.py, docs/dev.md (On a cluster)): a busybox
httpd service promoted from a dev profile into a namespace of its own, then edited while `dev` runs
as a real process: `sync` (a changed, a new, an ignored and a deleted file), `sync+restart` (new
pods, the synced files played into them), `rebuild` (a new image pushed to the node's registry and
rolled out), all checked through the forwarded local port; the log lines carry the service's name;
Ctrl-C (SIGINT) ends the process and `--down` deletes the namespace. The process, the namespace and
the local images are removed even when a test fails.

The tests share one `dev` process (module fixture) and run in file order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stackctl_k8s_helpers import REPO, cli_env

pytestmark = [pytest.mark.k8s, pytest.mark.node, pytest.mark.slow]

rig = sys.modules["stackctl_k8s_rig"]


class DevRun:
    """The project, its running `stackctl dev` process and what it printed so far."""

    def __init__(self, root: Path, env: dict[str, str], namespace: str, port: int, cluster: Any) -> None:
        self.root, self.env, self.namespace, self.port, self.cluster = root, env, namespace, port, cluster
        self.out: list[str] = []
        self.err: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.readers: list[threading.Thread] = []

    def start(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "stackctl", "dev", "dev", "--timeout", "180", *args],
                                     cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            t = threading.Thread(target=lambda s=stream, k=sink: [k.append(line.rstrip("\n")) for line in s],
                                 daemon=True)
            t.start()
            self.readers.append(t)

    def text(self) -> str:
        return "--- stdout\n" + "\n".join(self.out[-60:]) + "\n--- stderr\n" + "\n".join(self.err[-80:])

    def said(self, needle: str, timeout: float = 120) -> None:
        self.cluster.wait_for(lambda: any(needle in line for line in self.err) or self._dead(), timeout=timeout,
                              what=f"{needle!r} on stderr", every=0.2)
        assert any(needle in line for line in self.err), self.text()

    def _dead(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"stackctl dev exited {self.proc.returncode}\n{self.text()}")
        return False

    def get(self, path: str) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                return str(resp.read().decode())
        except (urllib.error.URLError, OSError):
            return None

    def serves(self, path: str, text: str | None, timeout: float = 60) -> None:
        """Wait until GET path through the forwarded port answers `text` (None: a 404)."""
        def ok() -> bool:
            self._dead()
            got = self.get(path)
            return (got is None) if text is None else (got is not None and text in got)
        self.cluster.wait_for(ok, timeout=timeout, what=f"{path} serving {text!r}", every=0.2)

    def pods(self) -> list[dict[str, Any]]:
        return [p for p in self.cluster.pods(self.namespace, "app.kubernetes.io/name=web")
                if not p["metadata"].get("deletionTimestamp")]

    def interrupt(self, timeout: float = 240) -> int:
        """Ctrl-C, as a terminal sends it (SIGINT), and the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=timeout)
        for t in self.readers:
            t.join(10)
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


def write_project(root: Path, namespace: str, registry: str, port: int) -> None:
    web = root / "web"
    for d in ("www", "conf", "version"):
        (web / d).mkdir(parents=True)
    (web / "www" / "index.html").write_text("hello v1\n")
    (web / "www" / "gone.html").write_text("to be deleted\n")
    (web / "conf" / "greeting").write_text("greeting v1\n")
    (web / "version" / "version.txt").write_text("image v1\n")
    (web / "Dockerfile").write_text(textwrap.dedent("""\
        FROM stackctl-test/busybox:latest
        COPY www /www
        COPY conf /conf
        COPY version/version.txt /www/version.txt
        CMD ["sh", "-c", "echo web starting with $(cat /conf/greeting); exec httpd -f -vv -p 8080 -h /www"]
        """))
    (root / "compose.yaml").write_text(textwrap.dedent(f"""\
        name: devloop
        services:
          web:
            build: ./web
            ports: ["{port}:8080"]
            develop:
              watch:
                - action: sync
                  path: ./web/www
                  target: /www
                  ignore: ["*.tmp"]
                - action: sync+restart
                  path: ./web/conf
                  target: /conf
                - action: rebuild
                  path: ./web/version
                - action: rebuild
                  path: ./web/Dockerfile
        """))
    (root / "profiles").mkdir()
    (root / "profiles" / "dev.yaml").write_text(textwrap.dedent(f"""\
        stack: devloop
        compose: {{files: [compose.yaml], env_files: []}}
        kubernetes:
          context: stackctl-test
          namespace: {namespace}
          registry: {registry}/devloop
        """))


@pytest.fixture(scope="module")
def dev(node_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRun]:
    namespace = f"dev-{uuid.uuid4().hex[:6]}"
    root = tmp_path_factory.mktemp("devloop")
    home = root.parent / f"{root.name}-home"
    home.mkdir()
    port = rig.free_port()
    write_project(root, namespace, node_cluster.registry, port)
    env = {**cli_env(home, node_cluster.kubeconfig, columns=160), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
           "STACKCTL_DEBUG": "1"}
    run = DevRun(root, env, namespace, port, node_cluster)
    run.start("--down")
    try:
        yield run
    finally:
        run.kill()
        node_cluster.plane.request("DELETE", f"/api/v1/namespaces/{namespace}")
        images = subprocess.run(["docker", "images", "-q", f"{node_cluster.registry}/devloop/*"],
                                capture_output=True, text=True).stdout.split()
        if images:
            subprocess.run(["docker", "rmi", "-f", *sorted(set(images))], capture_output=True)


def test_dev_promotes_and_forwards_the_published_port(dev: DevRun) -> None:
    dev.said("watching 4 rule(s)", timeout=300)
    assert any(f"forwarding localhost:{dev.port} → web:8080" in line for line in dev.err), dev.text()
    dev.serves("/index.html", "hello v1")
    assert len(dev.pods()) == 1


def test_logs_carry_the_service_name(dev: DevRun) -> None:
    dev.cluster.wait_for(lambda: any(line.startswith("web | ") and "web starting with greeting v1" in line
                                     for line in dev.out), timeout=30, what="the prefixed log line", every=0.2)
    assert dev.get("/index.html") is not None  # httpd -vv logs each request
    dev.cluster.wait_for(lambda: any(line.startswith("web | ") and "url:/index.html" in line for line in dev.out),
                         timeout=30, what="the request in the log", every=0.2)


def test_sync_copies_changes_and_deletions_and_skips_ignored_files(dev: DevRun) -> None:
    pod = dev.pods()[0]["metadata"]["name"]
    (dev.root / "web" / "www" / "index.html").write_text("hello v2\n")
    (dev.root / "web" / "www" / "new.html").write_text("a new page\n")
    (dev.root / "web" / "www" / "scratch.tmp").write_text("ignored\n")
    (dev.root / "web" / "www" / "gone.html").unlink()
    dev.serves("/index.html", "hello v2")
    dev.serves("/new.html", "a new page")
    dev.serves("/gone.html", None)
    assert dev.get("/scratch.tmp") is None  # ignored: never copied
    assert [p["metadata"]["name"] for p in dev.pods()] == [pod]  # synced in place, no restart
    assert any("web: sync" in line for line in dev.err), dev.text()


def test_sync_restart_restarts_the_pods_and_keeps_the_synced_files(dev: DevRun) -> None:
    before = {p["metadata"]["name"] for p in dev.pods()}
    (dev.root / "web" / "conf" / "greeting").write_text("greeting v2\n")
    dev.said("web: sync+restart", timeout=180)
    after = {p["metadata"]["name"] for p in dev.pods()}
    assert after and not (after & before), (before, after)
    # The new container started from the image: the ledger put every synced file back into it.
    dev.said("re-synced", timeout=60)
    dev.serves("/index.html", "hello v2")
    dev.serves("/new.html", "a new page")
    dev.serves("/gone.html", None)
    pod = sorted(after)[0]
    got = dev.cluster.kubectl("exec", "-n", dev.namespace, pod, "-c", "web", "--", "cat", "/conf/greeting")
    assert got.stdout == "greeting v2\n"


def test_rebuild_builds_pushes_and_rolls_out_a_new_image(dev: DevRun) -> None:
    image_before = dev.pods()[0]["spec"]["containers"][0]["image"]
    (dev.root / "web" / "version" / "version.txt").write_text("image v2\n")
    dev.said("rebuild web: revision", timeout=300)
    assert not any("rebuild web: " in line and "revision" not in line for line in dev.err), dev.text()
    dev.serves("/version.txt", "image v2")
    images = {p["spec"]["containers"][0]["image"] for p in dev.pods()}
    assert image_before not in images and len(images) == 1, (image_before, images)
    dev.serves("/index.html", "hello v2")  # the new image was built from the synced files too


def test_a_failing_rebuild_is_reported_and_the_last_good_version_keeps_serving(dev: DevRun) -> None:
    dockerfile = dev.root / "web" / "Dockerfile"
    good = dockerfile.read_text()
    pods = sorted(p["metadata"]["name"] for p in dev.pods())

    def rebuilds() -> list[str]:
        return [line for line in dev.err if line.startswith("rebuild web: ")]

    before = len(rebuilds())
    dockerfile.write_text(good.replace("COPY www /www", "COPY www /www\nRUN exit 3"))
    dev.cluster.wait_for(lambda: len(rebuilds()) > before or dev._dead(), timeout=180, what="the failed rebuild",
                         every=0.2)
    failed = rebuilds()[before]
    assert "revision" not in failed and "exit" in failed, dev.text()  # the build error, named
    dev.serves("/version.txt", "image v2")  # the loop goes on, the last good pods serve
    assert sorted(p["metadata"]["name"] for p in dev.pods()) == pods
    dockerfile.write_text(good)
    dev.cluster.wait_for(lambda: len(rebuilds()) > before + 1 or dev._dead(), timeout=180,
                         what="the rebuild after the fix", every=0.2)
    assert "failed" not in rebuilds()[-1], dev.text()
    dev.serves("/version.txt", "image v2")


def test_ctrl_c_ends_the_loop_and_down_deletes_the_namespace(dev: DevRun) -> None:
    code = dev.interrupt()
    assert code == 0, dev.text()
    assert any(f"deleted namespace {dev.namespace}" in line for line in dev.err), dev.text()
    assert dev.cluster.get(f"/api/v1/namespaces/{dev.namespace}") is None
    assert dev.get("/index.html") is None  # the forward is gone with the process
