"""Which Docker client for which call: import cost and per-call wall time of stackctl's own Engine API
client (`stackctl.compose.engine`, stdlib over the unix socket) against the `docker` SDK, python-on-whales
and the docker CLI (`stackctl.compose.cli`), on the local engine.

    .venv/bin/python bench/run.py docker_clients
    .venv/bin/python bench/run.py docker_clients --runs 21

Imports: each module in a fresh interpreter (`python -X importtime`), its cumulative import time,
median of the runs; a library counted on top of what `stackctl.compose.engine` already imports (the
stdlib's http.client, json, socket: what choosing it would add); one not installed is reported as such. Calls: on one
busybox container (`stackctl-test/busybox:latest`, which `make setup` builds), the calls `stackctl
up` makes by the dozen (list the project's containers, inspect one, run a probe in it) through each
client, interleaved, median ms; and `docker compose down` of a one-service project through the CLI
runner and through python-on-whales. The numbers in `stackctl/compose/engine.py`'s docstring come
from this benchmark. It only reports (no target).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TITLE = "docker clients: import cost and per-call time, own Engine client vs docker SDK vs python-on-whales vs CLI"
IMAGE = "stackctl-test/busybox:latest"
LABEL = "stackctl.bench=docker_clients"
MODULES = ("stackctl.compose.engine", "stackctl.compose.cli", "docker", "python_on_whales",
           "testcontainers.core.container")
REPO = Path(__file__).resolve().parent.parent


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--clients-import-runs", type=int, default=7, help="fresh interpreters per module")


def _cpu_ms(code: str) -> float:
    """CPU time (user + system) of a fresh interpreter running `code`, in ms: unlike wall time, it
    hardly moves when other processes load the machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000


def _import_ms(module: str, runs: int) -> dict[str, float] | None:
    """What importing `module` costs a fresh interpreter, median of `runs`: `cpu`, the CPU time it
    adds (stable under load), and `wall`, its cumulative time in `python -X importtime` (what a user
    waits, machine load included). None: not installed. A library is imported after
    `stackctl.compose.engine`, so it is counted on top of the stdlib modules stackctl's own client
    already loads (http.client, json, socket ...): what choosing it would add."""
    base = "pass" if module.startswith("stackctl.") else "import stackctl.compose.engine"
    code = f"{base}; import {module}"
    if subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, check=False).returncode != 0:
        return None
    cpu, wall = [], []
    for _ in range(runs):  # interleaved with the baseline, so both see the same machine
        cpu.append(_cpu_ms(code) - _cpu_ms(base))
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=REPO,
                              capture_output=True, text=True, check=True)
        # "import time: self [us] | cumulative | imported package"; the module's own line is the last of it
        for line in reversed(proc.stderr.splitlines()):
            match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)$", line)
            if match and match.group(2) == module:
                wall.append(int(match.group(1)) / 1000)
                break
    return {"cpu": round(statistics.median(cpu), 1), "wall": round(statistics.median(wall), 1) if wall else -1.0}


def _median_ms(fn: Callable[[], Any], runs: int) -> float:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(samples), 1)


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


def _calls(runs: int) -> dict[str, dict[str, float]]:
    import json

    from stackctl.compose import cli
    from stackctl.compose.engine import Engine, engine_socket

    path = engine_socket()
    if path is None:
        raise RuntimeError("the engine is not on a local unix socket here")
    engine = Engine(path)
    cid = _docker("run", "-d", "--label", LABEL, "--stop-signal", "SIGKILL", IMAGE, "sleep", "600")
    filters = json.dumps({"label": [LABEL]})
    clients: dict[str, dict[str, Callable[[], Any]]] = {
        "list": {"engine": lambda: engine.call("GET", "/containers/json", query={"all": "1", "filters": filters}),
                 "cli": lambda: cli.run(["ps", "-a", "-q", "--no-trunc", "--filter", f"label={LABEL}"])},
        "inspect": {"engine": lambda: engine.call("GET", f"/containers/{cid}/json"),
                    "cli": lambda: cli.run(["inspect", "--type", "container", cid])},
        "probe (exec true)": {"engine": lambda: engine.exec_run(cid, ["true"], timeout=10),
                              "cli": lambda: cli.run(["exec", cid, "true"])},
    }
    out: dict[str, dict[str, float]] = {}
    try:
        try:
            import docker

            began = time.perf_counter()
            sdk = docker.APIClient(base_url=f"unix://{path}")  # asks the engine its API version
            out["client setup"] = {"sdk": round((time.perf_counter() - began) * 1000, 1)}

            def sdk_exec() -> int:
                exec_id = sdk.exec_create(cid, ["true"])["Id"]
                sdk.exec_start(exec_id)
                return int(sdk.exec_inspect(exec_id)["ExitCode"])

            clients["list"]["sdk"] = lambda: sdk.containers(all=True, filters={"label": [LABEL]})
            clients["inspect"]["sdk"] = lambda: sdk.inspect_container(cid)
            clients["probe (exec true)"]["sdk"] = sdk_exec
        except ImportError:
            pass
        try:
            from python_on_whales import DockerClient

            pow_client = DockerClient()
            clients["inspect"]["python-on-whales"] = lambda: pow_client.container.inspect(cid)
            clients["probe (exec true)"]["python-on-whales"] = lambda: pow_client.execute(cid, ["true"])
        except ImportError:
            pass
        for call, by_client in clients.items():
            for fn in by_client.values():
                fn()  # warm-up (and a check that it works)
            samples: dict[str, list[float]] = {name: [] for name in by_client}
            for _ in range(runs):  # interleaved, so a busy moment of the machine hits every client alike
                for name, fn in by_client.items():
                    samples[name].append(_median_ms(fn, 1))
            out[call] = {name: round(statistics.median(s), 1) for name, s in samples.items()}
        out["compose down"] = _down(max(3, runs // 3))
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)
    return out


def _down(runs: int) -> dict[str, float]:
    """`docker compose down --remove-orphans` of a one-service project (created, not started)."""
    from stackctl.compose import cli

    with tempfile.TemporaryDirectory(prefix="stackctl-bench-down-") as tmp:
        root = Path(tmp)
        (root / "compose.yaml").write_text(f"services:\n  box:\n    image: {IMAGE}\n    command: [sleep, '600']\n")
        project = f"benchdown{int(time.time())}"
        base = ["-f", str(root / "compose.yaml"), "-p", project]

        def create() -> None:
            cli.compose([*base, "up", "--no-start"], cwd=root)

        def ours() -> None:
            cli.compose([*base, "down", "--remove-orphans"], cwd=root)

        downs: dict[str, Callable[[], Any]] = {"cli": ours}
        try:
            from python_on_whales import DockerClient

            pow_client = DockerClient(compose_files=[root / "compose.yaml"], compose_project_name=project)
            downs["python-on-whales"] = lambda: pow_client.compose.down(remove_orphans=True, quiet=True)
        except ImportError:
            pass
        samples: dict[str, list[float]] = {name: [] for name in downs}
        try:
            for _ in range(runs):
                for name, fn in downs.items():
                    create()
                    samples[name].append(_median_ms(fn, 1))
        finally:
            subprocess.run(["docker", "compose", *base, "down", "--remove-orphans"], cwd=root, capture_output=True,
                           check=False)
    return {name: round(statistics.median(s), 1) for name, s in samples.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    import_runs = getattr(args, "clients_import_runs", 7)
    imports = {module: _import_ms(module, import_runs) for module in MODULES}
    calls = _calls(args.runs or 15)
    shown = ", ".join(f"{m if m.startswith('stackctl') else m.split('.')[0]}: "
                      + ("not installed" if ms is None else f"{ms['cpu']:g} ms CPU") for m, ms in imports.items())
    probe = calls.get("probe (exec true)", {})
    summary = f"imports: {shown}; probe: " + ", ".join(f"{k} {v:g} ms" for k, v in probe.items())
    return {"passed": None, "summary": summary, "imports_ms": imports, "calls_ms": calls,
            "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
