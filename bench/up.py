"""Time from command start until every service is healthy/done: `stackctl up` vs `docker compose up -d --wait`.

On the bundled example (examples/shop through profiles/local.yaml): PostgreSQL, Redis, a one-shot
migration and a FastAPI service, with the healthchecks teams usually write (10 s intervals, 20-30 s
start periods). The benchmark works in a sandbox: a temporary project root holding a copy of the
profile and of `.env.example` and links to everything else, with its own HOME, so it never touches the
repository's env file or secrets store nor your keys; there `stackctl secrets generate` + `env render`
write the env file (without a template: random values for the example's two required secrets).
Both tools get the same Compose files, env file and project name (taken from the profile by
stackctl's own code), the images are built once before any timing, and the stack is
removed with its volumes (`down -v`) before every run, so each run is a first start (PostgreSQL
initialises its data directory every time). Runs alternate which tool goes first, so drift in
machine load hits both alike. After every run the result is checked the same way for both tools:
`stackctl status` probes every service (healthcheck passes, one-shots exited 0).

The figure is the ratio of medians (docker compose / stackctl): how many times faster stackctl
brings the stack up. Target: stackctl faster (ratio > 1).
"""

from __future__ import annotations

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

TITLE = "stackctl up vs docker compose up -d --wait on examples/shop (until all healthy/done)"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUNS = 5

_PROFILE_INFO = """
import json, sys
from pathlib import Path
from stackctl.profile import load_profile
from stackctl.profile.compose import invocation_for
p = load_profile(Path(sys.argv[1]), sys.argv[2])
inv, _ = invocation_for(p)
print(json.dumps({"args": inv.global_args(), "project": p.stack, "env_file": str(p.env.file),
                  "template": p.env.template.exists(), "uses_env_file": p.env.file in p.compose.env_files}))
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

    print(f"    building images once: {' '.join(compose[2:])} build", flush=True)
    _sh([*compose, "build"], timeout=1800)
    commands = {
        "stackctl": [stackctl, "up", "-p", profile, "--timeout", str(int(timeout)), "-o", "json"],
        "compose": [*compose, "up", "-d", "--wait", "--wait-timeout", str(int(timeout))],
    }
    samples: dict[str, list[float]] = {k: [] for k in commands}
    ready: list[dict[str, float]] = []  # per stackctl run: when each service was healthy/done
    order = list(commands)
    try:
        for i in range(runs):
            for key in (order if i % 2 == 0 else order[::-1]):
                _down(compose)
                took, proc = _time(commands[key], timeout + 60)
                if proc.returncode != 0:
                    tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
                    raise RuntimeError(f"{key} run {i + 1} exited {proc.returncode}: {tail}")
                problems = _verify(stackctl, profile)
                if problems:
                    raise RuntimeError(f"{key} run {i + 1}: returned but not all healthy/done: {problems}")
                samples[key].append(took)
                if key == "stackctl":
                    ready.append({s["service"]: s["ready_at"] for s in json.loads(proc.stdout)["services"]})
                print(f"    run {i + 1}/{runs} {key:<8} {took:6.2f} s", flush=True)
    finally:
        if not getattr(args, "up_keep", False):
            _down(compose)

    med = {k: statistics.median(v) for k, v in samples.items()}
    speedup = med["compose"] / med["stackctl"]
    print(f"    median: stackctl up {med['stackctl']:.2f} s, docker compose up -d --wait {med['compose']:.2f} s; "
          f"stackctl is {speedup:.2f}x as fast")
    return {
        "passed": speedup > 1.0,
        "summary": (f"stackctl up median {med['stackctl']:.2f} s vs docker compose up -d --wait "
                    f"{med['compose']:.2f} s: {speedup:.2f}x as fast (ratio stackctl/compose "
                    f"{med['stackctl'] / med['compose']:.3f})"),
        "runs": runs,
        "profile": profile,
        "project": project,
        "env_file": env_source,
        "commands": {k: " ".join(v).replace(str(_SANDBOX.root) + "/", "") for k, v in commands.items()},
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "samples_s": {k: [round(x, 3) for x in v] for k, v in samples.items()},
        "stackctl_ready_at_s": ready,  # per run, per service (stackctl's clock: from its own start)
        "speedup": round(speedup, 3),
        "ratio_stackctl_over_compose": round(med["stackctl"] / med["compose"], 4),
        "python": sys.version.split()[0],
    }
