"""The local dev loop: edit → change served, `stackctl up --watch` vs `docker compose watch`, for a
`sync` rule and a `rebuild` rule.

Two copies of one small project, each its own Compose project: a busybox httpd (built FROM the local
`stackctl-test/busybox` image, nothing pulled) serving `www/` on a published port, with

    develop.watch:
      - {action: sync, path: ./web/www, target: /www}      # an edit of www/index.html
      - {action: rebuild, path: ./web/version}             # the image copies it to /www/version.txt

One copy runs under `stackctl up --watch`, the other under `docker compose up -d --wait` followed by
`docker compose watch --no-up`; both watchers run the whole time, idle between edits. A round edits
each copy in turn (which goes first alternates): a new token written into the watched file, then the
page fetched over HTTP every 10 ms until it serves the token. The time is from the write to the first
response with the token: what a developer waits for. The rebuild's time includes the image build
(Docker's layer cache keeps it small: one COPY changes), the recreate and, for stackctl, the health gate.

ratio = stackctl / compose, the median of the rounds' ratios (target <= 1.0), per action.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

TITLE = "edit -> change served: stackctl up --watch vs docker compose watch (sync and rebuild)"
REPO_ROOT = Path(__file__).resolve().parent.parent
BASE = "stackctl-test/busybox:latest"
DEFAULT_RUNS = 5
TARGET = 1.0
READY_WAIT = 180.0
EDIT_WAIT = 120.0

DOCKERFILE = f"""FROM {BASE}
COPY www /www
COPY version /www/version.txt
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""

COMPOSE = """services:
  web:
    build: ./web
    image: {image}
    stop_signal: SIGKILL
    ports: ["127.0.0.1:{port}:8080"]
    healthcheck: {{test: ["CMD-SHELL", "wget -q -O /dev/null http://localhost:8080/version.txt"], interval: 30s}}
    develop:
      watch:
        - {{action: sync, path: ./web/www, target: /www}}
        - {{action: rebuild, path: ./web/version}}
"""


def add_arguments(group) -> None:
    group.add_argument("--dev-rounds", type=int, default=None, help=f"edits per action and tool (default "
                                                                    f"{DEFAULT_RUNS}, or --runs)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Copy:
    """One copy of the project, watched by one tool."""

    def __init__(self, tool: str, env: dict[str, str]) -> None:
        self.tool = tool
        self.env = env
        self.name = f"benchdev-{tool}-{uuid.uuid4().hex[:6]}"
        self.root = Path(tempfile.mkdtemp(prefix=f"stackctl-bench-dev-{tool}-"))
        self.port = _free_port()
        self.image = f"stackctl-bench/{self.name}:dev"
        (self.root / "web" / "www").mkdir(parents=True)
        (self.root / "profiles").mkdir()
        (self.root / "web" / "Dockerfile").write_text(DOCKERFILE)
        (self.root / "web" / "www" / "index.html").write_text("start\n")
        (self.root / "web" / "version").write_text("start\n")
        (self.root / "compose.yaml").write_text(COMPOSE.format(image=self.image, port=self.port))
        (self.root / "profiles" / "local.yaml").write_text(
            f"stack: {self.name}\ncompose:\n  files: [compose.yaml]\n  env_files: []\n")
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []

    def start(self) -> None:
        if self.tool == "stackctl":
            argv = [sys.executable, "-m", "stackctl", "up", "--watch"]
            ready = "watching for changes"
        else:
            subprocess.run(["docker", "compose", "-p", self.name, "up", "-d", "--wait", "--build"], cwd=self.root,
                           env=self.env, check=True, capture_output=True, timeout=READY_WAIT)
            argv = ["docker", "compose", "-p", self.name, "watch", "--no-up"]
            ready = "Watch enabled"
        self.proc = subprocess.Popen(argv, cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        seen = threading.Event()

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line.rstrip())
                if ready in line:
                    seen.set()

        threading.Thread(target=read, daemon=True).start()
        if not seen.wait(READY_WAIT):
            raise RuntimeError(f"{self.tool} did not start watching: " + " | ".join(self.lines[-8:]))
        time.sleep(1.0)  # both settled (compose's first batch window, stackctl's watcher threads)

    def edit(self, action: str, token: str) -> float:
        """Write `token` into the watched file; seconds until the page serves it."""
        rel, page = ("web/www/index.html", "index.html") if action == "sync" else ("web/version", "version.txt")
        url = f"http://127.0.0.1:{self.port}/{page}"
        began = time.monotonic()
        (self.root / rel).write_text(token + "\n")
        deadline = began + EDIT_WAIT
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as res:
                if res.read().decode().strip() == token:
                    return time.monotonic() - began
            time.sleep(0.01)
        raise RuntimeError(f"{self.tool} {action}: {token} not served within {EDIT_WAIT:g} s: "
                           + " | ".join(self.lines[-8:]))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        subprocess.run(["docker", "compose", "-p", self.name, "down", "-v", "--remove-orphans", "-t", "0"],
                       cwd=self.root, env=self.env, capture_output=True)
        subprocess.run(["docker", "rmi", "-f", self.image], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def _load() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0


def run(args) -> dict:
    rounds = getattr(args, "dev_rounds", None) or getattr(args, "runs", None) or DEFAULT_RUNS
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    copies = {tool: Copy(tool, env) for tool in ("stackctl", "compose")}
    times: dict[str, dict[str, list[float]]] = {a: {t: [] for t in copies} for a in ("sync", "rebuild")}
    ratios: dict[str, list[float]] = {"sync": [], "rebuild": []}
    loads: list[float] = []
    try:
        for copy in copies.values():
            copy.start()
        for r in range(rounds):
            order = ["stackctl", "compose"] if r % 2 == 0 else ["compose", "stackctl"]
            for action in ("sync", "rebuild"):
                took = {}
                for tool in order:
                    took[tool] = copies[tool].edit(action, f"{action}-{r}-{uuid.uuid4().hex[:8]}")
                    times[action][tool].append(took[tool])
                    time.sleep(1.0)  # quiet between edits: no batch of one overlaps the next
                ratios[action].append(took["stackctl"] / took["compose"])
                loads.append(_load())
                print(f"  round {r + 1} {action:<7} stackctl {took['stackctl']:.3f} s  compose {took['compose']:.3f} s"
                      f"  ratio {took['stackctl'] / took['compose']:.2f}  (load {loads[-1]:.1f})", file=sys.stderr)
    finally:
        for copy in copies.values():
            copy.stop()
    out: dict[str, object] = {"rounds": rounds, "load_average": loads}
    summary = []
    passed = True
    for action in ("sync", "rebuild"):
        med = {t: statistics.median(v) for t, v in times[action].items()}
        ratio = statistics.median(ratios[action])
        passed = passed and ratio <= TARGET
        out[action] = {"stackctl_s": times[action]["stackctl"], "compose_s": times[action]["compose"],
                       "median_stackctl_s": round(med["stackctl"], 3), "median_compose_s": round(med["compose"], 3),
                       "ratio_median_of_rounds": round(ratio, 3),
                       "ratio_of_medians": round(med["stackctl"] / med["compose"], 3)}
        summary.append(f"{action}: stackctl {med['stackctl']:.2f} s vs compose {med['compose']:.2f} s, "
                       f"ratio {ratio:.2f}")
    out["passed"] = passed
    out["summary"] = "; ".join(summary) + f" (target <= {TARGET:g}, {rounds} rounds)"
    print(json.dumps({k: out[k] for k in ("sync", "rebuild")}, indent=1), file=sys.stderr)
    return out
