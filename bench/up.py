"""Time from command start until every service is healthy/done: `stackctl up` vs `docker compose up -d --wait`,
and both against the physical bound.

On the bundled example (examples/shop through profiles/local.yaml): PostgreSQL, Redis, a one-shot
migration and a FastAPI service, with the healthchecks teams usually write (10 s intervals, 20-30 s
start periods). The benchmark works in a sandbox: a temporary project root holding a copy of the
profile and of `.env.example` and links to everything else, with its own HOME, so it never touches the
repository's env file or secrets store nor your keys; there `stackctl secrets generate` + `env render`
write the env file (without a template: random values for the example's two required secrets).
Both tools get the same Compose files, env file and project name (taken from the profile by
stackctl's own code), the images are built once before any timing, and the stack is
removed with its volumes (`down -v`) before every run, so each run is a first start (PostgreSQL
initialises its data directory every time). Every round runs the three measurements below in a
different order (cycling through all six), so drift in machine load hits them alike; the load
average is recorded with every run. After every tool run the result is checked the same way for
both tools: `stackctl status` probes every service (healthcheck passes, one-shots exited 0).

Figures (medians over the rounds; a round runs all three back to back):

* ratio = stackctl / docker compose (the issue's direction; target <= 0.2): the median of the
  rounds' ratios (each compares two runs made under the same machine load), and its inverse, the
  speed-up (how many times faster stackctl brings the stack up). The ratio of the medians is
  printed beside it.
* physical bound: how long the stack takes when nothing but the services themselves costs time.
  Measured in runs of its own, independently of stackctl's scheduling and probing: the containers
  are created (`docker compose up --no-start`, not timed), then each service is started on its own
  (`docker start`) in dependency order, only once everything before it is healthy/done (so its
  dependencies are up and no other container is starting or being probed), and its readiness
  latency is taken from its container's `State.StartedAt` (the engine's clock, the host's on a local
  engine) to the end of its first passing probe (its own healthcheck command run with `docker exec` back to back, 50 ms
  apart, each bounded by the check's timeout), or to `State.FinishedAt` for a one-shot (which must
  exit 0); 0 for a service with neither. The bound is the longest path through the dependency graph
  (the required `depends_on` edges that gate a start, as stackctl plans them) with each service
  weighted by its latency: Docker's own cost of creating and starting containers, the time between
  one service being ready and the next being started, and any detection delay beyond one `docker
  exec` are all outside it, so no tool can beat it. Two effects pull in opposite directions and are
  left as they are: each service is measured alone (in a real start-up, db and cache start together
  and compete for the CPU: the bound is lower than what any concurrent start-up reaches), and
  probing back to back costs some CPU (~0.05 CPU-s per probe), which can slow the service measured.
* distance = stackctl / physical bound, the median of the rounds' ratios (target <= 1.5; the ratio
  of the medians beside it): what stackctl's own overhead
  (Python, Compose's create, `docker start`s, scheduling, detection) adds on top of the work itself.
  For scale, the bound runs also time what Docker itself costs along the critical path and any
  Compose-based tool must pay: `docker compose up --no-start` and each `docker start` call (CLI).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TITLE = "stackctl up vs docker compose up -d --wait vs the physical bound on examples/shop (until all healthy/done)"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUNS = 5
TARGET_RATIO = 0.2  # stackctl / compose
TARGET_DISTANCE = 1.5  # stackctl / physical bound
BOUND_PAUSE = 0.05  # between two probes of the bound's prober
KINDS = ("stackctl", "compose", "bound")
# Round i runs the three in ORDERS[i % 6]: the three rotations, then the three rotations of the reverse,
# so over six rounds each goes first, second and last twice, and stackctl/compose alternate.
ORDERS = [KINDS[k:] + KINDS[:k] for k in range(3)] + [KINDS[::-1][k:] + KINDS[::-1][:k] for k in range(3)]

_PROFILE_INFO = """
import json, sys
from pathlib import Path
from stackctl.profile import load_profile
from stackctl.compose.loader import invocation_for
p = load_profile(Path(sys.argv[1]), sys.argv[2])
inv, _ = invocation_for(p)
plan = None
if p.env.file.exists() or p.env.file not in p.compose.env_files:
    from stackctl.up.plan import plan_up
    from stackctl.pipeline import load_stack
    pl = plan_up(load_stack(p).stack)
    plan = {"services": list(pl.services), "one_shot": sorted(pl.one_shot),
            "gates": {n: [[d.service, d.condition] for d in g] for n, g in pl.gates.items()}}
print(json.dumps({"args": inv.global_args(), "project": p.stack, "env_file": str(p.env.file),
                  "template": p.env.template.exists(), "uses_env_file": p.env.file in p.compose.env_files,
                  "plan": plan}))
"""


def add_arguments(group) -> None:
    group.add_argument("--up-profile", default="local", help="profile to bring up (default local: examples/shop)")
    group.add_argument("--up-timeout", type=float, default=300, help="give up on one run after this (s)")
    group.add_argument("--up-replace", action="store_true",
                       help="take over (down -v) a running stack of the same project name instead of refusing")
    group.add_argument("--up-keep", action="store_true", help="leave the stack up after the last run")


class Sandbox:
    """A throwaway project root: profiles/ and .env.example copied, the rest of the repository linked,
    no env file, no secrets store; HOME (keys) inside it too."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="stackctl-bench-up-"))
        for entry in REPO_ROOT.iterdir():
            if entry.name in (".stackctl", "profiles", ".git") or entry.name.startswith(".env"):
                continue
            (self.root / entry.name).symlink_to(entry)
        shutil.copytree(REPO_ROOT / "profiles", self.root / "profiles")
        if (REPO_ROOT / ".env.example").is_file():
            shutil.copy2(REPO_ROOT / ".env.example", self.root / ".env.example")
        home = self.root / "home"
        home.mkdir()
        real_docker = Path(os.path.expanduser("~")) / ".docker"
        self.env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                    "STACKCTL_PROJECT_DIR": str(self.root)}
        self.env.pop("STACKCTL_PROFILE", None)
        if "DOCKER_CONFIG" not in os.environ and real_docker.is_dir():  # Compose is a plugin found there
            self.env["DOCKER_CONFIG"] = str(real_docker)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


_SANDBOX: Sandbox | None = None


def _sh(cmd: list[str], *, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    cwd, env = (_SANDBOX.root, _SANDBOX.env) if _SANDBOX else (REPO_ROOT, None)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"`{' '.join(cmd[:4])} ...` exited {proc.returncode}: {tail}")
    return proc


def _profile_info(python: str, profile: str) -> dict:
    assert _SANDBOX is not None
    return json.loads(_sh([python, "-c", _PROFILE_INFO, str(_SANDBOX.root), profile]).stdout)


def _ensure_env(stackctl: str, profile: str, info: dict) -> str:
    """The env file both tools read: rendered from the secrets store when the project has a template,
    else (no template yet) written once with random values for the example's two required secrets."""
    env_file = Path(info["env_file"])
    if info["template"] and info["uses_env_file"]:
        _sh([stackctl, "secrets", "generate", "-p", profile])
        _sh([stackctl, "env", "render", "-p", profile])
        return "rendered by `stackctl env render` from the secrets store"
    old = os.umask(0o077)
    try:
        env_file.write_text(f"DB_PASSWORD={secrets.token_hex(16)}\nJWT_SECRET={secrets.token_hex(32)}\n")
    finally:
        os.umask(old)
    return "written by the benchmark (random DB_PASSWORD, JWT_SECRET)"


def _down(compose: list[str]) -> None:
    _sh([*compose, "down", "-v", "--remove-orphans", "-t", "10"], check=False, timeout=180)


def _verify(stackctl: str, profile: str) -> list[str]:
    """Problems with the running stack as stackctl's probes see it (empty: all healthy/done)."""
    proc = _sh([stackctl, "status", "-p", profile, "-o", "json"], check=False)
    if proc.returncode != 0:
        return [f"stackctl status exited {proc.returncode}"]
    problems = []
    for row in json.loads(proc.stdout)["services"]:
        if row["state"] == "exited" and row["exit_code"] == 0:
            continue
        if row["state"] != "running" or row["health"] not in ("healthy", "-"):
            problems.append(f"{row['service']}: {row['state']} / {row['health']}")
    return problems


def _time(cmd: list[str], timeout: float) -> tuple[float, subprocess.CompletedProcess[str]]:
    assert _SANDBOX is not None
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=_SANDBOX.root, capture_output=True, text=True, timeout=timeout,
                          env=_SANDBOX.env)
    return time.perf_counter() - start, proc


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _engine_time(stamp: str) -> float:
    """Docker's RFC 3339 timestamp with nanoseconds (`2024-01-02T03:04:05.123456789Z`) as Unix time."""
    main, _, frac = stamp.strip().rstrip("Z").partition(".")
    digits = "".join(ch for ch in frac if ch.isdigit())
    base = _dt.datetime.fromisoformat(main).replace(tzinfo=_dt.UTC).timestamp()
    return base + (float("0." + digits) if digits else 0.0)


def _inspect(ids: list[str]) -> list[dict]:
    return json.loads(_sh(["docker", "inspect", "--type", "container", *ids]).stdout)


def _probe_argv(config: dict) -> tuple[list[str], float] | None:
    """The healthcheck command as Docker runs it (CMD as is, CMD-SHELL through the image's shell), and
    its timeout; None without one."""
    hc = config.get("Healthcheck") or {}
    test = list(hc.get("Test") or [])
    if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
        return None
    argv = test[1:] if test[0] == "CMD" else [*(config.get("Shell") or ["/bin/sh", "-c"]), *test[1:]]
    return argv, (hc.get("Timeout") or 30e9) / 1e9


def _critical_path(plan: dict, latency: dict[str, float]) -> tuple[float, list[str]]:
    """Longest path through the gating dependencies, each service weighted by its latency."""
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for name in plan["services"]:  # dependencies first
        deps = [d for d, _cond in plan["gates"].get(name, []) if d in finish]
        before = max(deps, key=lambda d: finish[d], default=None)
        finish[name] = latency[name] + (finish[before] if before else 0.0)
        via[name] = before
    end = max(finish, key=lambda n: finish[n])
    path: list[str] = []
    node: str | None = end
    while node:
        path.append(node)
        node = via[node]
    return finish[end], path[::-1]


def _bound_run(compose: list[str], plan: dict, project: str, timeout: float
               ) -> tuple[dict[str, float], dict[str, float]]:
    """One measurement of each service's own readiness latency (see the module doc), and of Docker's
    costs (`create`: the Compose call, and each service's `docker start` call); the stack must have been
    removed before."""
    began = time.perf_counter()
    _sh([*compose, "up", "--no-start", *plan["services"]], timeout=180)
    costs = {"create": time.perf_counter() - began}
    latency: dict[str, float] = {}
    for name in plan["services"]:
        ids = _sh(["docker", "ps", "-a", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={project}",
                   "--filter", f"label=com.docker.compose.service={name}"]).stdout.split()
        if not ids:
            latency[name] = 0.0
            continue
        began = time.perf_counter()
        _sh(["docker", "start", *ids], timeout=120)
        costs[name] = time.perf_counter() - began
        worst = 0.0
        for data in _inspect(ids):
            cid = data["Id"]
            probe = _probe_argv(data.get("Config") or {})
            deadline = time.monotonic() + timeout
            if name in plan["one_shot"]:
                _sh(["docker", "wait", cid], timeout=timeout)
                state = _inspect([cid])[0]["State"]
                if state.get("ExitCode") != 0:
                    raise RuntimeError(f"bound run: one-shot {name} exited {state.get('ExitCode')}")
                took = _engine_time(state["FinishedAt"]) - _engine_time(state["StartedAt"])
            elif probe is not None:
                argv, limit = probe
                while True:
                    try:
                        ok = _sh(["docker", "exec", cid, *argv], check=False, timeout=limit).returncode == 0
                    except subprocess.TimeoutExpired:
                        ok = False
                    passed_at = time.time()
                    if ok:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"bound run: {name} not healthy within {timeout:g} s")
                    time.sleep(BOUND_PAUSE)
                took = passed_at - _engine_time(_inspect([cid])[0]["State"]["StartedAt"])
            else:
                took = 0.0
            worst = max(worst, took)
        latency[name] = max(0.0, worst)
    return latency, costs



def run(args) -> dict:
    global _SANDBOX
    _SANDBOX = Sandbox()
    try:
        return _run(args)
    finally:
        _SANDBOX.remove()
        _SANDBOX = None


def _run(args) -> dict:
    runs = args.runs if getattr(args, "runs", None) else DEFAULT_RUNS
    profile = getattr(args, "up_profile", "local")
    timeout = getattr(args, "up_timeout", 300.0)
    bin_dir = REPO_ROOT / ".venv" / "bin"
    stackctl, python = str(bin_dir / "stackctl"), str(bin_dir / "python")
    if not os.access(stackctl, os.X_OK):
        raise FileNotFoundError(f"{stackctl} not found; run `make setup` first")
    _sh(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=30)

    info = _profile_info(python, profile)
    env_source = _ensure_env(stackctl, profile, info)
    info = _profile_info(python, profile)  # now that the env file exists
    project = info["project"] or json.loads(_sh([stackctl, "config", "-p", profile, "-o", "json"]).stdout)["name"]
    args_ = info["args"] if "-p" in info["args"] else [*info["args"], "-p", project]
    compose = ["docker", "compose", *args_]
    existing = _sh(["docker", "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}"]).stdout
    if existing.strip() and not getattr(args, "up_replace", False):
        raise RuntimeError(f"a stack named {project!r} is running; stop it (`stackctl down -p {profile}`) "
                           "or pass --up-replace to let the benchmark remove it (with its volumes)")

    plan = info["plan"]
    if not plan:
        raise RuntimeError("cannot plan the stack (no env file?)")
    print(f"    building images once: {' '.join(compose[2:])} build", flush=True)
    _sh([*compose, "build"], timeout=1800)
    commands = {
        "stackctl": [stackctl, "up", "-p", profile, "--timeout", str(int(timeout)), "-o", "json"],
        "compose": [*compose, "up", "-d", "--wait", "--wait-timeout", str(int(timeout))],
    }
    samples: dict[str, list[float]] = {k: [] for k in KINDS}
    loads: dict[str, list[float]] = {k: [] for k in KINDS}
    ready: list[dict[str, float]] = []  # per stackctl run: when each service was healthy/done
    latencies: list[dict[str, float]] = []  # per bound run: each service's own readiness latency
    docker_costs: list[dict[str, float]] = []  # per bound run: create, and each service's docker start
    paths: list[list[str]] = []
    load_before = os.getloadavg()
    try:
        for i in range(runs):
            for key in ORDERS[i % len(ORDERS)]:
                _down(compose)
                loads[key].append(_load())
                if key == "bound":
                    lat, costs = _bound_run(compose, plan, project, timeout)
                    took, path = _critical_path(plan, lat)
                    latencies.append({k: round(v, 3) for k, v in lat.items()})
                    docker_costs.append({k: round(v, 3) for k, v in costs.items()})
                    paths.append(path)
                    samples[key].append(took)
                    detail = " + ".join(f"{n} {lat[n]:.2f}" for n in path)
                    print(f"    run {i + 1}/{runs} {key:<8} {took:6.2f} s  ({detail}; load {loads[key][-1]})",
                          flush=True)
                    continue
                took, proc = _time(commands[key], timeout + 60)
                if proc.returncode != 0:
                    tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
                    raise RuntimeError(f"{key} run {i + 1} exited {proc.returncode}: {tail}")
                problems = _verify(stackctl, profile)
                if problems:
                    raise RuntimeError(f"{key} run {i + 1}: returned but not all healthy/done: {problems}")
                samples[key].append(took)
                extra = ""
                if key == "stackctl":
                    ready.append({s["service"]: s["ready_at"] for s in json.loads(proc.stdout)["services"]})
                    extra = "  (ready at " + ", ".join(f"{n} {t:.2f}" for n, t in ready[-1].items()) + ")"
                print(f"    run {i + 1}/{runs} {key:<8} {took:6.2f} s{extra}; load {loads[key][-1]}", flush=True)
    finally:
        if not getattr(args, "up_keep", False):
            _down(compose)
    load_after = os.getloadavg()

    med = {k: statistics.median(v) for k, v in samples.items()}
    # The issue's "median ratio": the median of the rounds' ratios. Each round measures the three
    # back to back, so a ratio compares runs made under the same machine load; on a shared machine
    # whose speed drifts during the benchmark that is the steadier estimate. The ratio of the medians
    # is reported beside it.
    ratios = [s / c for s, c in zip(samples["stackctl"], samples["compose"], strict=True)]
    distances = [s / b for s, b in zip(samples["stackctl"], samples["bound"], strict=True)]
    ratio = statistics.median(ratios)
    speedup = 1 / ratio
    distance = statistics.median(distances)
    ratio_of_medians = med["stackctl"] / med["compose"]
    distance_of_medians = med["stackctl"] / med["bound"]
    per_service = {n: round(statistics.median(lat[n] for lat in latencies), 3) for n in plan["services"]}
    path = max(paths, key=paths.count)
    docker_floor = statistics.median(c["create"] + sum(c[n] for n in path) for c in docker_costs)
    loads_txt = f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    print(f"    median: stackctl up {med['stackctl']:.2f} s, docker compose up -d --wait {med['compose']:.2f} s, "
          f"physical bound {med['bound']:.2f} s ({loads_txt})")
    print(f"    ratio stackctl/compose {ratio:.3f} (median of the rounds' ratios "
          f"{', '.join(f'{r:.3f}' for r in ratios)}; target <= {TARGET_RATIO}): stackctl is {speedup:.2f}x as "
          f"fast; ratio of the medians {ratio_of_medians:.3f}")
    print(f"    physical bound {med['bound']:.2f} s along {' -> '.join(path)} (per service: "
          + ", ".join(f"{n} {v:.2f} s" for n, v in per_service.items()) + ")")
    print(f"    distance stackctl/bound {distance:.3f} (median of the rounds' "
          f"{', '.join(f'{d:.2f}' for d in distances)}; target <= {TARGET_DISTANCE}; of the medians "
          f"{distance_of_medians:.3f}); for scale, Docker's own cost "
          f"along that path (compose create + {len(path)} docker start calls) is {docker_floor:.2f} s: "
          f"bound + that = {med['bound'] + docker_floor:.2f} s")
    passed = ratio <= TARGET_RATIO and distance <= TARGET_DISTANCE
    return {
        "passed": passed,
        "summary": (f"ratio stackctl/compose {ratio:.3f} (target <= {TARGET_RATIO}; {speedup:.2f}x as fast: "
                    f"{med['stackctl']:.2f} s vs {med['compose']:.2f} s); distance to the physical bound "
                    f"{distance:.2f} (target <= {TARGET_DISTANCE}; bound {med['bound']:.2f} s)"),
        "runs": runs,
        "profile": profile,
        "project": project,
        "env_file": env_source,
        "commands": {k: " ".join(v).replace(str(_SANDBOX.root) + "/", "") for k, v in commands.items()},
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "samples_s": {k: [round(x, 3) for x in v] for k, v in samples.items()},
        "ratio_stackctl_over_compose": round(ratio, 4),
        "ratios_per_round": [round(r, 4) for r in ratios],
        "ratio_of_medians": round(ratio_of_medians, 4),
        "target_ratio": TARGET_RATIO,
        "speedup": round(speedup, 3),
        "physical_bound": {
            "median_s": round(med["bound"], 3),
            "critical_path": path,
            "service_latency_median_s": per_service,
            "service_latency_s": latencies,  # per bound run
            "docker_cost_along_path_median_s": round(docker_floor, 3),
            "docker_cost_s": docker_costs,  # per bound run: compose create, each service's docker start (CLI)
            "method": "each service started alone in dependency order once its dependencies are up; "
                      "State.StartedAt -> end of first passing probe (docker exec back to back, "
                      f"{BOUND_PAUSE:g} s apart) or State.FinishedAt for one-shots; longest gating path",
        },
        "distance_stackctl_over_bound": round(distance, 4),
        "distances_per_round": [round(d, 4) for d in distances],
        "distance_of_medians": round(distance_of_medians, 4),
        "target_distance": TARGET_DISTANCE,
        "stackctl_ready_at_s": ready,  # per run, per service (stackctl's clock: from its own start)
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after],
                         "per_run_1min": loads},
        "python": sys.version.split()[0],
    }
