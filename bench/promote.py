"""Time from command start until everything is rolled out: `stackctl promote` vs `kubectl apply
--server-side -f <rendered dir>` followed by `kubectl rollout status` for each workload.

On a real control plane started for the benchmark (tests/k8s/rig.py: etcd, kube-apiserver,
controller-manager, scheduler, KWOK nodes; binaries and a kubectl of the same Kubernetes version from
scripts/k8s-binaries.sh). Two stacks: the bundled example (examples/shop with the production
overlay: PostgreSQL and Redis StatefulSets with claims, a migration Job the api waits for, the api
Deployment, Services, NetworkPolicies) and a generated 100-service stack (90 Deployments, 10
StatefulSets with a volume, a migration Job that 20 of them wait for).

Every run is a fresh install into a new namespace, so both tools create everything. kubectl gets the
manifests `stackctl render kubernetes` wrote beforehand (rendering is not timed for kubectl; for
stackctl it is part of the command), applies them in file order (which is the apply order), then
waits with one `kubectl rollout status` per Deployment/StatefulSet and `kubectl wait
--for=condition=complete` per Job, one after the other as a script would. stackctl applies in waves
(the api only after its migration Job completed) and waits on every workload at once with watches.
Runs alternate which tool goes first; namespaces are deleted (and gone) between runs.

The figure is the ratio of medians stackctl / kubectl per stack; target <= 1.0 on each.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TITLE = "stackctl promote vs kubectl apply --server-side + rollout status (example and 100-service stacks)"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUNS = 5
TARGET = 1.0


def add_arguments(group: Any) -> None:
    group.add_argument("--promote-stacks", default="example,100", help="stacks to time (default: example,100)")
    group.add_argument("--promote-target", type=float, default=TARGET, help="max ratio stackctl/kubectl")
    group.add_argument("--promote-timeout", type=float, default=300, help="give up on one run after this (s)")


def _rig() -> Any:
    spec = importlib.util.spec_from_file_location("stackctl_k8s_rig", REPO_ROOT / "tests" / "k8s" / "rig.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["stackctl_k8s_rig"] = module
    spec.loader.exec_module(module)
    return module


def _sh(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise RuntimeError(f"`{' '.join(cmd[:5])} ...` exited {proc.returncode}: {tail}")
    return proc


# ---------------------------------------------------------------------------------------------
# Stacks
# ---------------------------------------------------------------------------------------------
def _hundred(root: Path) -> None:
    lines = ["name: hundred", "services:", "  migrate:", "    image: stackctl-test/busybox:latest",
             '    command: ["true"]']
    for i in range(99):
        name = f"svc{i:03d}"
        lines += [f"  {name}:", "    image: stackctl-test/busybox:latest",
                  '    command: ["httpd", "-f", "-p", "8080"]', "    expose: ['8080']",
                  "    environment:", f"      SERVICE_NAME: {name}", "      LOG_LEVEL: info"]
        if i < 10:
            lines += ["    volumes:", f"      - data{i:03d}:/data"]
        if 10 <= i < 30:
            lines += ["    depends_on:", "      migrate:", "        condition: service_completed_successfully"]
    lines.append("volumes:")
    lines += [f"  data{i:03d}: {{}}" for i in range(10)]
    (root / "compose.yaml").write_text("\n".join(lines) + "\n")


def _project(kind: str, root: Path) -> tuple[str, str]:
    """Write the project; returns (profile text template with {namespace}, description)."""
    (root / "profiles").mkdir(parents=True, exist_ok=True)
    if kind == "example":
        (root / ".env.bench").write_text("DB_PASSWORD=bench-password-1\nJWT_SECRET=0123456789abcdef\n")
        shop = REPO_ROOT / "examples" / "shop"
        profile = ("stack: shop\ncompose:\n  files: [" + f"{shop / 'compose.yaml'}, {shop / 'compose.prod.yaml'}"
                   + "]\n  env_files: [.env.bench]\nkubernetes:\n  namespace: {namespace}\n  context: stackctl-test\n")
        return profile, "examples/shop + compose.prod.yaml"
    _hundred(root)
    profile = ("stack: hundred\ncompose:\n  files: [compose.yaml]\n  env_files: []\n"
               "kubernetes:\n  namespace: {namespace}\n  context: stackctl-test\n")
    return profile, "100 services (90 Deployments, 10 StatefulSets with claims, 1 Job awaited by 20)"


# ---------------------------------------------------------------------------------------------
# One run of each tool
# ---------------------------------------------------------------------------------------------
def _stackctl(root: Path, env: dict[str, str], profile: str, timeout: float) -> float:
    stackctl = str(Path(sys.executable).parent / "stackctl")
    t0 = time.perf_counter()
    _sh([stackctl, "promote", profile, "--timeout", str(int(timeout))], cwd=root, env=env, timeout=timeout + 60)
    return time.perf_counter() - t0


def _render(root: Path, env: dict[str, str], profile: str, out: Path) -> list[tuple[str, str]]:
    stackctl = str(Path(sys.executable).parent / "stackctl")
    _sh([stackctl, "render", "kubernetes", "-p", profile, "-d", str(out), "--include-secrets"], cwd=root, env=env)
    workloads = []
    for f in sorted(out.glob("*.yaml")):
        parts = f.stem.split("-", 2)  # 005-deployment-api
        if len(parts) == 3 and parts[1] in ("deployment", "statefulset", "daemonset", "job"):
            workloads.append((parts[1], parts[2]))
    return workloads


def _kubectl(kubectl: str, env: dict[str, str], out: Path, namespace: str, workloads: list[tuple[str, str]],
             timeout: float) -> float:
    t0 = time.perf_counter()
    _sh([kubectl, "apply", "--server-side", "-f", str(out)], env=env, timeout=timeout)
    for kind, name in workloads:
        if kind == "job":
            _sh([kubectl, "wait", "-n", namespace, "--for=condition=complete", f"job/{name}",
                 f"--timeout={int(timeout)}s"], env=env, timeout=timeout + 30)
        else:
            _sh([kubectl, "rollout", "status", "-n", namespace, f"{kind}/{name}", f"--timeout={int(timeout)}s"],
                env=env, timeout=timeout + 30)
    return time.perf_counter() - t0


def _delete_namespaces(plane: Any, names: list[str]) -> None:
    for ns in names:
        plane.request("DELETE", f"/api/v1/namespaces/{ns}")
    end = time.monotonic() + 180
    while time.monotonic() < end:
        if all(plane.request("GET", f"/api/v1/namespaces/{ns}")[0] == 404 for ns in names):
            return
        time.sleep(0.5)
    raise RuntimeError(f"namespaces {names} were not deleted within 180s")


def _bench_stack(kind: str, plane: Any, kubectl: str, runs: int, timeout: float, log: Any) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"stackctl-bench-{kind}-"))
    try:
        profile_text, description = _project(kind, root)
        env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig), "NO_COLOR": "1"}
        env.pop("STACKCTL_PROFILE", None)
        times: dict[str, list[float]] = {"stackctl": [], "kubectl": []}
        for run in range(runs + 1):  # run 0 warms caches (images, compose, the API server) and is not counted
            order = ["stackctl", "kubectl"] if run % 2 == 0 else ["kubectl", "stackctl"]
            used = []
            for tool in order:
                ns = f"bench-{kind}-{tool}-{run}"
                used.append(ns)
                (root / "profiles" / "bench.yaml").write_text(profile_text.format(namespace=ns))
                if tool == "stackctl":
                    seconds = _stackctl(root, env, "bench", timeout)
                else:
                    out = root / f"rendered-{run}"
                    workloads = _render(root, env, "bench", out)
                    seconds = _kubectl(kubectl, env, out, ns, workloads, timeout)
                if run > 0:
                    times[tool].append(seconds)
                log(f"    {kind} run {run}{' (warm-up)' if run == 0 else ''}: {tool} {seconds:.2f}s")
            _delete_namespaces(plane, used)
        med = {tool: statistics.median(v) for tool, v in times.items()}
        return {"stack": kind, "description": description, "runs": runs,
                "seconds": {tool: [round(x, 3) for x in v] for tool, v in times.items()},
                "median_seconds": {tool: round(m, 3) for tool, m in med.items()},
                "ratio": round(med["stackctl"] / med["kubectl"], 3)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(args: Any) -> dict[str, Any]:
    rig = _rig()
    bin_dir = rig.binaries()
    kubectl = str(bin_dir / "kubectl")
    if not os.access(kubectl, os.X_OK):
        raise RuntimeError(f"no kubectl in {bin_dir} (scripts/k8s-binaries.sh builds it)")
    version = _sh([kubectl, "version", "--client", "-o", "json"]).stdout
    runs = args.runs or DEFAULT_RUNS
    stacks = [s.strip() for s in args.promote_stacks.split(",") if s.strip()]
    plane = rig.ControlPlane.start(bin_dir=bin_dir)
    results = []
    try:
        for kind in stacks:
            results.append(_bench_stack(kind, plane, kubectl, runs, args.promote_timeout,
                                        lambda text: print(text, flush=True)))
    finally:
        plane.stop()
    passed = all(r["ratio"] <= args.promote_target for r in results)
    summary = "; ".join(f"{r['stack']}: stackctl {r['median_seconds']['stackctl']:.2f}s vs kubectl "
                        f"{r['median_seconds']['kubectl']:.2f}s = {r['ratio']:.2f}x" for r in results)
    return {"passed": passed, "summary": f"{summary} (target <= {args.promote_target:g}x)",
            "target": args.promote_target, "kubectl": json.loads(version).get("clientVersion", {}).get("gitVersion"),
            "stacks": results}
