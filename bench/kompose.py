"""`stackctl render kubernetes` beside kompose 1.37 (`kompose convert`), same inputs, same machine.

Both tools run as whole processes on the same generated Compose project (`generate`), paired and
alternating (A B, B A, ...), so drift in the load of a shared machine hits both alike; the figure is
the median of the per-pair ratios stackctl / kompose. Cases and goals (issue 15):

- 300 services to stdout: <= 1.0x; 300 services to a directory (`--out-dir DIR` / `-o DIR`): <= 1.0x;
- 300 services with `--validate` (kompose has no validation: against its plain convert): <= 1.2x;
- one small project (5 services; what a user pays on every command): <= 1.5x;
- 3,000 services to stdout: stackctl's cost per service within +-30 % of its 300-service cost
  (linear), and the peak memory (ru_maxrss of the child) of both tools.

The generated project is realistic and accepted by both tools: groups of 10 services (PostgreSQL
with a named volume, a health check and a password from `.env`; a one-shot migration that waits for
it; six web services with ports, environment, HTTP health checks, a read-only bind-mounted config
file and `depends_on` with conditions; two workers). Everything goes through `docker compose config`
for stackctl, as on a user's machine; its cached result (stackctl/compose/cache.py) is what an
unchanged project pays from the second command on, so each command gets one warm-up run first.

The small case is the one a user meets on every command of an unchanged project: the render result
cache (stackctl/cli/resultcache.py) replays it. Every other case turns that cache off
(`STACKCTL_RESULT_CACHE=0`) and measures the render itself, and the small project is also reported
that way (`small-render`: what a render costs after an edit of a file only the render reads) and
with no cache at all (`small-no-cache`: `docker compose config` runs, as after an edit of a Compose
file or on the first command).

kompose is built from the Go module proxy into the cache (scripts/kompose.sh) when it is missing.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TITLE = "render vs kompose 1.37: 300 services stdout/dir/validate, small project, 3,000 linear (ratios)"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUNS = 7
GOALS = {"stdout-300": 1.0, "dir-300": 1.0, "validate-300": 1.2, "small": 1.5}
LINEAR_TOLERANCE = 0.30
RENDER_IMPORTS = ("import stackctl.cli.fast, stackctl.cli.rendering, stackctl.kubernetes.gather, "
                  "stackctl.compose.cache, stackctl.secrets.envfile, stackctl.kubernetes.write, "
                  "stackctl.kubernetes.yamltext")


def add_arguments(group: Any) -> None:
    group.add_argument("--kompose", default=None, metavar="PATH",
                       help="kompose binary (default: build v1.37.0 into the cache with scripts/kompose.sh)")
    group.add_argument("--kompose-cases",
                       default="stdout-300,stdout-300-recorded,dir-300,validate-300,small,linear-3000",
                       help="comma-separated cases (default: all)")


# ---------------------------------------------------------------------------------------------
# The generated project
# ---------------------------------------------------------------------------------------------
def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def compose_text(n: int) -> str:
    """A compose.yaml of `n` services (groups of 10: a database, a migration, 6 web, 2 workers;
    a smaller `n` takes the first `n` of one group)."""
    lines = ["name: bench", "services:"]
    volumes: list[str] = []
    count = 0
    g = 0
    while count < n:
        db, migrate = f"db-{g}", f"migrate-{g}"
        group: list[list[str]] = [[
            f"  {db}:",
            "    image: postgres:16.4",
            "    environment:",
            f"      POSTGRES_DB: app{g}",
            "      POSTGRES_USER: app",
            "      POSTGRES_PASSWORD: ${DB_PASSWORD}",
            "    expose: [\"5432\"]",
            "    volumes:",
            f"      - data-{g}:/var/lib/postgresql/data",
            "    healthcheck:",
            "      test: [\"CMD-SHELL\", \"pg_isready -U app\"]",
            "      interval: 10s",
            "      timeout: 5s",
            "      retries: 5",
            "    restart: unless-stopped",
        ], [
            f"  {migrate}:",
            f"    image: registry.example.com/app-{g}:1.0",
            "    command: [\"migrate\", \"up\"]",
            "    environment:",
            f"      DATABASE_URL: postgres://app:${{DB_PASSWORD}}@{db}:5432/app{g}",
            "    depends_on:",
            f"      {db}:",
            "        condition: service_healthy",
            "    restart: \"no\"",
        ]]
        for i in range(8):
            web = i < 6
            svc = [
                f"  {'web' if web else 'worker'}-{g}-{i}:",
                f"    image: registry.example.com/app-{g}:1.0",
                "    environment:",
                "      LOG_LEVEL: ${LOG_LEVEL:-info}",
                "      REGION: eu-west-1",
                f"      DATABASE_URL: postgres://app:${{DB_PASSWORD}}@{db}:5432/app{g}",
                "      CACHE_TTL: \"300\"",
                f"      SERVICE_NAME: {'web' if web else 'worker'}-{g}-{i}",
                "    depends_on:",
                f"      {db}:",
                "        condition: service_healthy",
                f"      {migrate}:",
                "        condition: service_completed_successfully",
                "    deploy:",
                "      resources:",
                "        limits: {cpus: \"0.50\", memory: 256M}",
                "        reservations: {cpus: \"0.10\", memory: 128M}",
                "    restart: unless-stopped",
                "    labels:",
                f"      com.example.team: team-{g % 7}",
            ]
            if web:
                port = 8000 + i
                svc += [
                    "    ports:",
                    f"      - \"{port}\"",
                    "    healthcheck:",
                    f"      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost:{port}/health\"]",
                    "      interval: 10s",
                    "      timeout: 2s",
                    "      retries: 3",
                    "      start_period: 20s",
                    "    volumes:",
                    "      - ./conf/app.conf:/etc/app/app.conf:ro",
                ]
            else:
                svc += ["    command: [\"worker\", " + _q(f"--queue=q{g}-{i}") + "]"]
            group.append(svc)
        volumes.append(f"  data-{g}: {{}}")
        for svc in group:
            if count >= n:
                break
            lines += svc
            count += 1
        g += 1
    lines += ["volumes:", *volumes] if volumes else []
    return "\n".join(lines) + "\n"


def generate(root: Path, n: int) -> Path:
    """Write a project of `n` services under root/<n>/ and return its directory."""
    project = root / str(n)
    (project / "profiles").mkdir(parents=True, exist_ok=True)
    (project / "conf").mkdir(exist_ok=True)
    (project / "conf" / "app.conf").write_text("listen = 0.0.0.0\nworkers = 4\n" * 20)
    (project / "compose.yaml").write_text(compose_text(n))
    (project / ".env").write_text("DB_PASSWORD=bench-password\nLOG_LEVEL=info\n")
    (project / "profiles" / "bench.yaml").write_text(
        "stack: bench\ncompose:\n  files: [compose.yaml]\n  env_files: [.env]\n"
        "kubernetes:\n  namespace: bench\n  registry: registry.example.com\n")
    return project


# ---------------------------------------------------------------------------------------------
# Running a command
# ---------------------------------------------------------------------------------------------
Sample = tuple[float, int, float]


def run_once(cmd: list[str], cwd: Path, env: dict[str, str]) -> Sample:
    """(wall seconds, peak RSS in KiB, CPU seconds) of one run of the child (its CPU includes the
    processes it waited for: `docker compose config`); raises when it fails."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"`{' '.join(cmd)}` exited {proc.returncode}: " + " | ".join(tail))
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def paired(a: Callable[[], Sample], b: Callable[[], Sample], runs: int) -> dict[str, Any]:
    """Alternating pairs after one warm-up of each; the median of the per-pair ratios a/b."""
    a()
    b()
    ta: list[float] = []
    tb: list[float] = []
    ma: list[int] = []
    mb: list[int] = []
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    for i in range(runs):
        first, second = (a, b) if i % 2 == 0 else (b, a)
        r1, r2 = first(), second()
        (sa, xa, ca), (sb, xb, cb) = (r1, r2) if i % 2 == 0 else (r2, r1)
        ta.append(sa)
        tb.append(sb)
        ma.append(xa)
        mb.append(xb)
        ratios.append(sa / sb)
        cpu_ratios.append(ca / cb if cb else float("inf"))
    return {"stackctl_median_s": round(statistics.median(ta), 4), "kompose_median_s": round(statistics.median(tb), 4),
            "ratio": round(statistics.median(ratios), 3), "ratios": [round(r, 3) for r in ratios],
            "cpu_ratio": round(statistics.median(cpu_ratios), 3),
            "stackctl_peak_mib": round(max(ma) / 1024, 1), "kompose_peak_mib": round(max(mb) / 1024, 1)}


def kompose_binary(given: str | None) -> str:
    if given:
        return given
    proc = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "kompose.sh")], stdout=subprocess.PIPE, text=True,
                          check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        raise RuntimeError("scripts/kompose.sh could not build kompose (see its output above)")
    return lines[-1]


def run(args: Any) -> dict[str, Any]:
    runs = args.runs if getattr(args, "runs", None) else DEFAULT_RUNS
    cases = [c for c in str(getattr(args, "kompose_cases", "")).split(",") if c]
    kompose = kompose_binary(getattr(args, "kompose", None))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKCTL_", "COMPOSE_"))}
    env["PYTHONPATH"] = str(REPO_ROOT)  # this checkout's stackctl, whatever the venv has installed
    env["NO_COLOR"] = "1"
    stackctl = [sys.executable, "-m", "stackctl", "render", "kubernetes", "--profile", "bench"]

    work = Path(tempfile.mkdtemp(prefix="stackctl-bench-kompose-"))
    results: dict[str, Any] = {}
    counter = iter(range(10**9))

    def fresh_dir() -> Path:
        d = work / "out" / str(next(counter))
        d.mkdir(parents=True)
        return d

    def cleanup_out() -> None:
        shutil.rmtree(work / "out", ignore_errors=True)

    try:
        projects = {n: generate(work, n) for n in (5, 300, 3000)}

        def stk(n: int, *extra: str, out: bool = False, cache: bool = True, result: bool = False,
                touch: bool = False) -> Callable[[], Sample]:
            """stackctl's render of the n-service project. The render result cache (an unchanged
            project renders once) only where `result`: every other case measures the render itself.
            `cache=False`: no compose config cache either. `touch`: the Compose file's mtime is
            moved before each run, so the result cache misses and records (what the first render
            after an edit pays with it on)."""
            e = {**env, "STACKCTL_RESULT_CACHE": "1" if result else "0"}
            if not cache:
                e["STACKCTL_COMPOSE_CACHE"] = "0"

            def go() -> tuple[float, int]:
                more = ["--out-dir", str(fresh_dir())] if out else []
                if touch:
                    os.utime(projects[n] / "compose.yaml")
                return run_once([*stackctl, *extra, *more], projects[n], e)
            return go

        def kmp(n: int, *, out: bool = False) -> Callable[[], Sample]:
            def go() -> tuple[float, int]:
                more = ["-o", str(fresh_dir()) + "/"] if out else ["--stdout"]
                return run_once([kompose, "convert", "-f", "compose.yaml", *more], projects[n], env)
            return go

        plan: dict[str, tuple[Callable[[], Sample], Callable[[], Sample]]] = {
            "stdout-300": (stk(300), kmp(300)),
            # the same with the result cache on, every run a miss that records (info)
            "stdout-300-recorded": (stk(300, result=True, touch=True), kmp(300)),
            "dir-300": (stk(300, out=True), kmp(300, out=True)),
            "validate-300": (stk(300, "--validate"), kmp(300)),
            # an unchanged project: the result cache replays it (stackctl/cli/resultcache.py)
            "small": (stk(5, result=True), kmp(5)),
            # the render itself (after an edit of a file only the render reads), Compose's JSON from its cache
            "small-render": (stk(5), kmp(5)),
            # no cache at all: `docker compose config` runs (an edit of the Compose files, a first run)
            "small-no-cache": (stk(5, cache=False), kmp(5)),
            # the floor of the small case: Python itself, then Python importing stackctl's CLI (typer, rich)
            "floor-python": (lambda: run_once([sys.executable, "-c", "pass"], projects[5], env), kmp(5)),
            "floor-cli-import": (lambda: run_once([sys.executable, "-c", "import stackctl.cli.app"], projects[5], env),
                                 kmp(5)),
            # what the render fast path imports (stackctl/cli/fast.py: no typer, no rich), without running
            "floor-render-import": (lambda: run_once([sys.executable, "-c", RENDER_IMPORTS], projects[5], env), kmp(5)),
        }
        for name in cases:
            if name == "linear-3000":
                big = paired(stk(3000), kmp(3000), max(3, runs // 2))
                # The cost per service, measured in one loop (5, 300 and 3,000 services back to back, so
                # the machine's load hits all three alike): the time above the 5-service run (Python's
                # start, the imports: paid once, not per service) divided by the services added.
                s5: list[float] = []
                s300: list[float] = []
                s3000: list[float] = []
                for _ in range(max(3, runs // 2)):
                    s5.append(stk(5)()[0])
                    s300.append(stk(300)()[0])
                    s3000.append(stk(3000)()[0])
                t5, t300, t3000 = (statistics.median(x) for x in (s5, s300, s3000))
                big["per_service_vs_300"] = round(((t3000 - t5) / 2995) / ((t300 - t5) / 295), 3)
                big["whole_per_service_vs_300"] = round((t3000 / 3000) / (t300 / 300), 3)
                big["loop_medians_s"] = {"5": round(t5, 4), "300": round(t300, 4), "3000": round(t3000, 4)}
                results[name] = big
            elif name == "small":
                for _ in range(2):  # the first run may start Compose (not stored); the second is stored
                    plan["small"][0]()
                for case in ("small", "small-render", "small-no-cache", "floor-python", "floor-render-import",
                             "floor-cli-import"):
                    results[case] = paired(*plan[case], runs)
            elif name in plan:
                results[name] = paired(*plan[name], runs)
                cleanup_out()
            else:
                raise RuntimeError(f"unknown case {name!r} (have: {', '.join([*plan, 'linear-3000'])})")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"    paired alternating runs ({runs} pairs after a warm-up each); ratio = median of the pairs' "
          "stackctl/kompose wall times (cpu ratio: the same of user+sys CPU, for a loaded machine)")
    print(f"    {'case':<21} {'stackctl s':>10} {'kompose s':>10} {'ratio':>7} {'goal':>8}  "
          f"{'peak MiB stackctl/kompose':>26}  cpu ratio")
    passed = True
    for name, r in results.items():
        if name == "linear-3000":
            ok = abs(r["per_service_vs_300"] - 1) <= LINEAR_TOLERANCE
            goal = f"±{LINEAR_TOLERANCE:.0%}"
            shown = f"x{r['per_service_vs_300']:.2f}/svc"
        else:
            limit = GOALS.get(name)
            ok = limit is None or r["ratio"] <= limit
            goal = f"<= {limit:.1f}" if limit is not None else "(info)"
            shown = f"{r['ratio']:.2f}"
        r["passed"] = ok
        passed = passed and ok
        print(f"    {name:<21} {r['stackctl_median_s']:>10.3f} {r['kompose_median_s']:>10.3f} {shown:>7} {goal:>8}  "
              f"{r['stackctl_peak_mib']:>12.0f} / {r['kompose_peak_mib']:<12.0f} {r['cpu_ratio']:>6.2f}"
              f"{'' if ok else '  MISSED'}")
    summary = ", ".join(f"{k} {v['ratio']:.2f}x" for k, v in results.items() if k in GOALS)
    if "linear-3000" in results:
        summary += f", 3000 per-service x{results['linear-3000']['per_service_vs_300']:.2f}"
    return {"passed": passed, "summary": f"stackctl/kompose: {summary}", "runs": runs, "cases": results,
            "goals": GOALS, "linear_tolerance": LINEAR_TOLERANCE}
