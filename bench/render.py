"""Kubernetes render time for generated stacks of 30, 300 and 3,000 services.

What is measured, per size, in-process: the pure render step (stack model + profile settings →
Kubernetes objects, `stackctl.kubernetes.render.render`) and the serialization of those objects to
one YAML stream (`stackctl.kubernetes.write.to_stream`), timed separately and together (median of
`--runs`, after one warm-up). Not measured: `docker compose config` (an external process, the same
for every backend) and reading the Compose JSON into the model. The generated stack is realistic:
web services with ports, HTTP health checks and secrets; workers; PostgreSQL with volumes; one-shot
migrations that others wait for; an internal network; bind-mounted config files.

Targets: render + serialize of 300 services under 1 s (median), and linear growth: the cost per
service of the fastest run grows by at most 1.5× from one size to the next (the fastest run, because
medians on a busy machine measure the machine; slack for cache effects of a 10 MB output).
"""

from __future__ import annotations

import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

TITLE = "render: Kubernetes objects for 30 → 300 → 3,000 generated services (target < 1 s at 300, linear)"
REPO_ROOT = Path(__file__).resolve().parent.parent
SIZES = (30, 300, 3000)
DEFAULT_RUNS = 5
TARGET_300_S = 1.0
MAX_PER_SERVICE_GROWTH = 1.5


def add_arguments(group: Any) -> None:
    group.add_argument("--sizes", default=",".join(map(str, SIZES)),
                       help=f"comma-separated service counts (default {','.join(map(str, SIZES))})")
    group.add_argument("--validate-too", action="store_true",
                       help="also time schema validation of the objects (reported, not part of the target)")


def compose_project(n: int) -> dict[str, Any]:
    """A `docker compose config`-shaped project of `n` services (groups of 10: 6 web, 2 workers,
    1 database, 1 one-shot migration)."""
    services: dict[str, Any] = {}
    for g in range(max(1, n // 10)):
        db, migrate = f"db-{g}", f"migrate-{g}"
        services[db] = {
            "image": "postgres:16", "expose": ["5432"],
            "environment": {"POSTGRES_DB": f"app{g}", "POSTGRES_PASSWORD": f"pw-{g}"},
            "volumes": [{"type": "volume", "source": f"data-{g}", "target": "/var/lib/postgresql/data"}],
            "healthcheck": {"test": ["CMD-SHELL", "pg_isready"], "interval": "10s", "retries": 5},
            "networks": {"backend": None},
        }
        services[migrate] = {
            "image": f"registry.example.com/app-{g}:1.0", "command": ["migrate", "up"],
            "environment": {"DATABASE_URL": f"postgres://app:pw-{g}@{db}:5432/app{g}"},
            "depends_on": {db: {"condition": "service_healthy", "required": True}},
            "networks": {"backend": None},
        }
        for i in range(8):
            name = f"{'web' if i < 6 else 'worker'}-{g}-{i}"
            svc: dict[str, Any] = {
                "image": f"registry.example.com/app-{g}:1.0",
                "environment": {"LOG_LEVEL": "info", "REGION": "eu-west-1", "FEATURE_X": "on",
                                "DATABASE_URL": f"postgres://app:pw-{g}@{db}:5432/app{g}",
                                "API_TOKEN": f"token-{g}-{i}", "CACHE_TTL": "300"},
                "depends_on": {db: {"condition": "service_healthy", "required": True},
                               migrate: {"condition": "service_completed_successfully", "required": True}},
                "deploy": {"replicas": 2, "resources": {"limits": {"cpus": 0.5, "memory": "268435456"},
                                                        "reservations": {"cpus": 0.1, "memory": "134217728"}}},
                "networks": {"frontend": None, "backend": None},
                "labels": {"com.example.team": f"team-{g % 7}"},
            }
            if i < 6:
                svc["ports"] = [{"target": 8000 + i, "protocol": "tcp"}]
                svc["healthcheck"] = {"test": ["CMD", "curl", "-f", f"http://localhost:{8000 + i}/health"],
                                      "interval": "10s", "timeout": "2s", "retries": 3, "start_period": "20s"}
            if i == 0:
                svc["volumes"] = [{"type": "bind", "source": "/project/conf/app.conf", "target": "/etc/app.conf",
                                   "read_only": True}]
            services[name] = svc
    return {"name": "bench", "services": services,
            "volumes": {f"data-{g}": {} for g in range(max(1, n // 10))},
            "networks": {"frontend": {}, "backend": {"internal": True}}}


def _measure(n: int, runs: int, validate_too: bool) -> dict[str, Any]:
    from stackctl.compose.loader import to_model
    from stackctl.kubernetes import write
    from stackctl.kubernetes.inputs import HostPath, SecretInputs, Target
    from stackctl.kubernetes.render import render
    from stackctl.profile.types import KubernetesSettings

    stack = to_model(compose_project(n))
    target = Target(profile="bench", profile_file="profiles/bench.yaml",
                    kubernetes=KubernetesSettings(namespace="bench", registry="registry.example.com"))
    secrets = SecretInputs(keys=frozenset({"API_TOKEN", "POSTGRES_PASSWORD"}))
    host = {"/project/conf/app.conf": HostPath(kind="file", display="conf/app.conf", files={"": b"x = 1\n" * 50})}
    render_s, serialize_s, total_s = [], [], []
    objects: tuple[dict[str, Any], ...] = ()
    size = 0
    for i in range(runs + 1):  # the first run warms caches and is not counted
        t0 = time.perf_counter()
        objects = render(stack, target, secrets=secrets, host=host).objects
        t1 = time.perf_counter()
        text = write.to_stream(list(objects))
        t2 = time.perf_counter()
        size = len(text.encode("utf-8"))
        if i:
            render_s.append(t1 - t0)
            serialize_s.append(t2 - t1)
            total_s.append(t2 - t0)
    row: dict[str, Any] = {
        "services": len(stack.services), "objects": len(objects), "yaml_bytes": size,
        "render_median_s": round(statistics.median(render_s), 4),
        "serialize_median_s": round(statistics.median(serialize_s), 4),
        "total_median_s": round(statistics.median(total_s), 4),
        "total_min_s": round(min(total_s), 4),
    }
    if validate_too:
        from stackctl.kubernetes.validate import validate

        t0 = time.perf_counter()
        problems = validate(list(objects), "1.35")
        row["validate_s"] = round(time.perf_counter() - t0, 4)
        row["validate_problems"] = len(problems)
    return row


def run(args: Any) -> dict[str, Any]:
    runs = args.runs if getattr(args, "runs", None) else DEFAULT_RUNS
    sizes = tuple(int(s) for s in str(getattr(args, "sizes", ",".join(map(str, SIZES)))).split(",") if s)
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    try:
        import stackctl.kubernetes.render  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"cannot import stackctl ({exc}); run with .venv/bin/python after `make setup`") from None
    rows = [_measure(n, runs, bool(getattr(args, "validate_too", False))) for n in sizes]

    print(f"    median of {runs} runs after 1 warm-up; seconds; render = model → objects, "
          "serialize = objects → YAML")
    header = f"    {'services':>8} {'objects':>8} {'render':>8} {'serialize':>10} {'total':>8} {'MB':>6}"
    print(header)
    print("    " + "-" * (len(header) - 4))
    for r in rows:
        print(f"    {r['services']:>8} {r['objects']:>8} {r['render_median_s']:>8.3f} {r['serialize_median_s']:>10.3f} "
              f"{r['total_median_s']:>8.3f} {r['yaml_bytes'] / 1e6:>6.1f}"
              + (f"   validate {r['validate_s']:.2f}s ({r['validate_problems']} problems)"
                 if "validate_s" in r else ""))
    ratios = []
    for a, b in itertools.pairwise(rows):
        ratio = b["total_min_s"] / a["total_min_s"]
        per_service = (b["total_min_s"] / b["services"]) / (a["total_min_s"] / a["services"])
        ratios.append({"from": a["services"], "to": b["services"], "time_ratio": round(ratio, 2),
                       "per_service_ratio": round(per_service, 2)})
        print(f"    {a['services']} → {b['services']} services: fastest run ×{ratio:.1f} "
              f"(cost per service ×{per_service:.2f}, limit ×{MAX_PER_SERVICE_GROWTH})")
    at_300 = next((r for r in rows if r["services"] == 300), None)
    passed: bool | None = None
    if at_300 is not None:
        linear = all(r["per_service_ratio"] <= MAX_PER_SERVICE_GROWTH for r in ratios)
        passed = at_300["total_median_s"] < TARGET_300_S and linear
    summary = ", ".join(f"{r['services']}: {r['total_median_s'] * 1000:.0f} ms" for r in rows)
    return {
        "passed": passed,
        "summary": f"render+serialize {summary} (target < {TARGET_300_S:.0f} s at 300, linear growth)",
        "runs": runs,
        "measured": "pure render (model → objects) + YAML serialization; excludes docker compose config",
        "sizes": rows,
        "growth": ratios,
        "target_300_s": TARGET_300_S,
    }
