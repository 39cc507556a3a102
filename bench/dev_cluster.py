"""`stackctl dev` on the real node: edit → change served through the port-forward, for `sync` and
`rebuild`, in absolute seconds, beside the physical floor measured in the same run.

The rig's control plane with one real node (tests/k8s/realnode.py) is started for the run; a
busybox httpd service (the project of tests/node/test_dev_cluster.py) is promoted by a real
`stackctl dev` process, which then runs the loop. Each measured edit writes a new token into a
file and polls `http://127.0.0.1:<forwarded port>/...` (every 20 ms) until the token is served:

- **sync**: `www/index.html` (a `sync` rule) — edit → inotify → tar over exec → httpd serves it.
  Floor: one exec of `tar -x` with the same one-file tar stream, by stackctl's client in this
  process (`exec_in`: the WebSocket exec alone), and `kubectl exec -i … tar -x` (what `kubectl
  cp` runs), each run beside the loop's.
- **rebuild**: `version/version.txt` (a `rebuild` rule, copied into the image) — edit → promote:
  build, push to the node's registry, apply, rollout (a new pod, its readiness), forward to the new
  pod. Floor: `docker build` of the same context alone, and `docker build` + `docker push`.

Reports the medians and the loop's overhead over each floor (no target: issue 16 asks for absolute
seconds with the floor). Options: `--dev-sync-runs` (default 7), `--dev-rebuild-runs` (default 3).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

TITLE = "stackctl dev on the real node: edit → served through the port-forward (sync, rebuild) vs the floor"
REPO_ROOT = Path(__file__).resolve().parent.parent


def add_arguments(parser: Any) -> None:
    parser.add_argument("--dev-sync-runs", type=int, default=7, help="dev_cluster: measured sync edits")
    parser.add_argument("--dev-rebuild-runs", type=int, default=3, help="dev_cluster: measured rebuild edits")


def _load(name: str, path: Path) -> Any:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _get(port: int, path: str) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return str(resp.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def _until_served(port: int, path: str, token: str, t0: float, timeout: float = 300) -> float:
    while time.perf_counter() - t0 < timeout:
        got = _get(port, path)
        if got is not None and token in got:
            return time.perf_counter() - t0
        time.sleep(0.02)
    raise RuntimeError(f"{path} did not serve {token!r} within {timeout:.0f}s")


class Dev:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.err: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "stackctl", "dev", "dev", "--down", "--timeout", "180"],
                                     cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        assert self.proc.stderr is not None
        stream = self.proc.stderr
        self.reader = threading.Thread(target=lambda: [self.err.append(line.rstrip()) for line in stream],
                                       daemon=True)
        self.reader.start()

    def wait_said(self, needle: str, timeout: float = 400) -> None:
        end = time.monotonic() + timeout
        while not any(needle in line for line in self.err):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"stackctl dev: no {needle!r}:\n" + "\n".join(self.err[-40:]))
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(240)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self.reader.join(10)


def run(args: Any) -> dict[str, Any]:
    rig = _load("stackctl_k8s_rig", REPO_ROOT / "tests" / "k8s" / "rig.py")
    helpers = _load("stackctl_k8s_helpers", REPO_ROOT / "tests" / "k8s" / "helpers.py")
    node_test = _load("stackctl_bench_dev_project", REPO_ROOT / "tests" / "node" / "test_dev_cluster.py")
    sys.path.insert(0, str(REPO_ROOT))
    from stackctl.dev.cluster import tar_stream
    from stackctl.kubernetes.client import connect
    from stackctl.kubernetes.client.cluster import exec_in

    log = lambda text: print(text, flush=True)  # noqa: E731
    realnode = rig.load_realnode()
    why = realnode.missing_prerequisites()
    if why:
        raise RuntimeError(why)
    log("  starting a control plane with one real node")
    plane = rig.ControlPlane.start(real_node=True, registry_port=5000, timeout=300)
    tmp = Path(tempfile.mkdtemp(prefix="stackctl-bench-dev-"))
    namespace = f"dev-bench-{uuid.uuid4().hex[:6]}"
    registry = str(plane.node.registry)
    dev: Dev | None = None
    cluster = None
    try:
        root, home = tmp / "proj", tmp / "home"
        root.mkdir()
        home.mkdir()
        port = rig.free_port()
        node_test.write_project(root, namespace, registry, port)
        env = {**helpers.cli_env(home, Path(plane.kubeconfig), columns=160), "PYTHONPATH": str(REPO_ROOT),
               "PYTHONUNBUFFERED": "1"}
        t0 = time.perf_counter()
        dev = Dev(root, env)
        dev.wait_said("watching")
        _until_served(port, "/index.html", "hello v1", t0)
        first = time.perf_counter() - t0
        log(f"  stackctl dev: promoted and forwarding after {first:.1f}s (image build and push included)")

        cluster = connect("stackctl-test", path=str(plane.kubeconfig))
        index = root / "web" / "www" / "index.html"
        sync_s, floor_exec, floor_kubectl = [], [], []
        for i in range(args.dev_sync_runs + 1):
            token = f"sync-{i}-{uuid.uuid4().hex[:8]}"
            t0 = time.perf_counter()
            index.write_text(f"{token}\n")
            seconds = _until_served(port, "/index.html", token, t0)
            pods = [p for p in plane.request("GET", f"/api/v1/namespaces/{namespace}/pods")[1]["items"]
                    if not p["metadata"].get("deletionTimestamp")]
            pod = pods[0]["metadata"]["name"]
            probe = tmp / "probe.html"
            probe.write_text(f"{token}\n")
            data = tar_stream([(probe, "/tmp/probe.html")])
            t1 = time.perf_counter()
            code, _, err = exec_in(cluster, namespace, pod, "web", ["tar", "-xmf", "-", "-C", "/"], stdin=data)
            exec_s = time.perf_counter() - t1
            if code:
                raise RuntimeError(f"tar in {pod}: {err!r}")
            t2 = time.perf_counter()
            proc = subprocess.run([str(Path(plane.bin_dir) / "kubectl"), f"--kubeconfig={plane.kubeconfig}", "exec",
                                   "-i", "-n", namespace, pod, "-c", "web", "--", "tar", "-xmf", "-", "-C", "/"],
                                  input=data, capture_output=True, timeout=60)
            kubectl_s = time.perf_counter() - t2
            if i == 0:
                continue  # warm-up
            sync_s.append(seconds)
            floor_exec.append(exec_s)
            floor_kubectl.append(kubectl_s if proc.returncode == 0 else float("nan"))
            log(f"    sync {i}: served after {seconds:.2f}s (one exec+tar: {exec_s:.2f}s, kubectl exec: "
                f"{kubectl_s:.2f}s)")

        version = root / "web" / "version" / "version.txt"
        rebuild_s, build_s, build_push_s = [], [], []
        for i in range(args.dev_rebuild_runs):
            token = f"rebuild-{i}-{uuid.uuid4().hex[:8]}"
            t0 = time.perf_counter()
            version.write_text(f"{token}\n")
            seconds = _until_served(port, "/version.txt", token, t0)
            # the floor: the same context with another new token, built alone, then pushed
            ctx = tmp / f"floor-{i}"
            shutil.copytree(root / "web", ctx)
            (ctx / "version" / "version.txt").write_text(f"floor-{token}\n")
            tag = f"{registry}/devloop/floor:{i}-{uuid.uuid4().hex[:6]}"
            t1 = time.perf_counter()
            subprocess.run(["docker", "build", "-q", "-t", tag, str(ctx)], check=True, capture_output=True)
            b = time.perf_counter() - t1
            subprocess.run(["docker", "push", "-q", tag], check=True, capture_output=True)
            bp = time.perf_counter() - t1
            subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
            rebuild_s.append(seconds)
            build_s.append(b)
            build_push_s.append(bp)
            log(f"    rebuild {i}: served after {seconds:.2f}s (docker build: {b:.2f}s, build + push: {bp:.2f}s)")
    finally:
        if cluster is not None:
            cluster.close()
        if dev is not None:
            dev.stop()
        plane.request("DELETE", f"/api/v1/namespaces/{namespace}")
        images = subprocess.run(["docker", "images", "-q", f"{registry}/devloop/*"], capture_output=True,
                                text=True).stdout.split()
        if images:
            subprocess.run(["docker", "rmi", "-f", *sorted(set(images))], capture_output=True)
        plane.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    out = {
        "first_promote_seconds": round(first, 2),
        "sync": {"seconds": [round(x, 3) for x in sync_s], "median": med(sync_s),
                 "floor_exec_tar_median": med(floor_exec), "floor_kubectl_exec_tar_median": med(floor_kubectl)},
        "rebuild": {"seconds": [round(x, 3) for x in rebuild_s], "median": med(rebuild_s),
                    "floor_docker_build_median": med(build_s), "floor_build_push_median": med(build_push_s)},
        "passed": None,
    }
    sync, rebuild = out["sync"], out["rebuild"]
    out["summary"] = (f"sync {sync['median']}s (floor: exec+tar {sync['floor_exec_tar_median']}s, kubectl exec "
                      f"{sync['floor_kubectl_exec_tar_median']}s); rebuild {rebuild['median']}s (floor: docker build "
                      f"{rebuild['floor_docker_build_median']}s, build + push {rebuild['floor_build_push_median']}s)")
    return out
