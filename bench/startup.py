"""Cold start of `stackctl --help` against `docker compose version`.

Each measurement is a fresh process (exec, imports, output to /dev/null),
timed from the parent. The two commands run interleaved, alternating which
goes first, so drift in machine load hits both alike. The target is a ratio
of medians (stackctl / reference) <= 1.2.

Also runs ``python -X importtime -c 'import stackctl.cli'`` and reports the ten
imports with the largest cumulative time, to find what slows startup.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TITLE = "cold start: stackctl --help vs docker compose version (target ratio <= 1.2)"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUNS = 21
DEFAULT_WARMUP = 2
DEFAULT_TARGET = 1.2
IMPORTTIME_MODULE = "stackctl.cli"
IMPORTTIME_TOP = 10


def add_arguments(group) -> None:
    group.add_argument(
        "--warmup", type=int, default=DEFAULT_WARMUP,
        help=f"unmeasured runs of each command first (default {DEFAULT_WARMUP})",
    )
    group.add_argument(
        "--target", type=float, default=DEFAULT_TARGET,
        help=f"max ratio of medians stackctl/reference (default {DEFAULT_TARGET})",
    )
    group.add_argument(
        "--stackctl", default=str(REPO_ROOT / ".venv" / "bin" / "stackctl"),
        help="stackctl executable to time (default .venv/bin/stackctl)",
    )
    group.add_argument(
        "--reference", default="docker compose version",
        help="reference command line (default 'docker compose version')",
    )


def _time_once(cmd: list[str]) -> float:
    """Wall time in ms of one run of cmd; raises if it fails."""
    start = time.perf_counter_ns()
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    elapsed = (time.perf_counter_ns() - start) / 1e6
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"`{' '.join(cmd)}` exited {proc.returncode}: " + " | ".join(err))
    return elapsed


def _stats(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]  # nearest rank
    return {
        "min_ms": round(ordered[0], 2),
        "median_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(p90, 2),
        "max_ms": round(ordered[-1], 2),
        "samples_ms": [round(s, 2) for s in samples],
    }


def _python_for(stackctl: str) -> str:
    """The interpreter the stackctl entry point runs on."""
    candidate = Path(stackctl).parent / "python"
    if candidate.exists():
        return str(candidate)
    try:
        first = Path(stackctl).read_text(errors="replace").splitlines()[0]
        if first.startswith("#!") and "python" in first:
            return first[2:].strip().split()[0]
    except (OSError, IndexError):
        pass
    return sys.executable


def _importtime_rows(python: str, code: str) -> tuple[int, list[dict], str]:
    """Run `python -X importtime -c code`; return (returncode, rows, stderr)."""
    cmd = [python, "-X", "importtime", "-c", code]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:"):].split("|")
        if len(parts) != 3:
            continue
        try:
            self_us, cum_us = int(parts[0]), int(parts[1])
        except ValueError:  # the header line
            continue
        raw = parts[2].rstrip()
        depth = max(0, (len(raw) - len(raw.lstrip(" ")) - 1) // 2)
        rows.append({"module": raw.strip(), "self_us": self_us, "cumulative_us": cum_us,
                     "depth": depth})
    return proc.returncode, rows, proc.stderr


# What `.venv/bin/stackctl --help` does: stackctl.cli imports lazily inside
# main(), so `import stackctl.cli` alone would miss most of the cost.
HELP_CODE = ("import sys; sys.argv = ['stackctl', '--help']; "
             f"from {IMPORTTIME_MODULE} import main; sys.exit(main())")


def importtime(python: str, module: str = IMPORTTIME_MODULE, top: int = IMPORTTIME_TOP) -> dict:
    """Top imports by cumulative time of `stackctl --help` (via stackctl.cli.main).

    Interpreter start-up imports (site, encodings, .pth files) are left out:
    they are the modules a bare `python -c pass` imports too. Also reports the
    total for a bare `import stackctl.cli`.
    """
    _, baseline, _ = _importtime_rows(python, "pass")
    startup = {row["module"] for row in baseline}

    def own_rows(code: str) -> tuple[int, list[dict], str]:
        for _ in range(2):  # the first run may compile .pyc files; keep the second
            rc, rows, stderr = _importtime_rows(python, code)
        return rc, [row for row in rows if row["module"] not in startup], stderr

    def total(rows: list[dict]) -> int:
        return sum(row["cumulative_us"] for row in rows if row["depth"] == 0)

    rc, bare, stderr = own_rows(f"import {module}")
    if rc != 0:
        tail = stderr.strip().splitlines()[-3:]
        return {"module": module, "error": f"import {module} failed: " + " | ".join(tail),
                "top": []}
    rc, rows, stderr = own_rows(HELP_CODE)
    if rc != 0:
        tail = stderr.strip().splitlines()[-3:]
        return {"module": module, "error": f"stackctl --help via {module}.main failed: "
                + " | ".join(tail), "top": []}
    rows.sort(key=lambda r: r["cumulative_us"], reverse=True)
    return {
        "module": module,
        "code": HELP_CODE,
        "import_module_us": total(bare),
        "help_total_us": total(rows),
        "help_imported_modules": len(rows),
        "top": rows[:top],
    }


def run(args) -> dict:
    runs = args.runs if getattr(args, "runs", None) else DEFAULT_RUNS
    warmup = getattr(args, "warmup", DEFAULT_WARMUP)
    target = getattr(args, "target", DEFAULT_TARGET)
    stackctl = getattr(args, "stackctl", str(REPO_ROOT / ".venv" / "bin" / "stackctl"))
    reference = getattr(args, "reference", "docker compose version").split()
    if runs < 1:
        raise ValueError("--runs must be >= 1")

    if not os.access(stackctl, os.X_OK):
        raise FileNotFoundError(f"{stackctl} not found or not executable; run `make setup` first")
    if shutil.which(reference[0]) is None:
        raise FileNotFoundError(f"reference command {reference[0]!r} not on PATH; run `make setup` first")
    commands = {
        "stackctl": [stackctl, "--help"],
        "reference": reference,
    }
    labels = {"stackctl": "stackctl --help", "reference": " ".join(reference)}

    for _ in range(max(0, warmup)):
        for cmd in commands.values():
            _time_once(cmd)  # also checks that both commands work

    samples: dict[str, list[float]] = {key: [] for key in commands}
    order = list(commands)
    for i in range(runs):
        for key in (order if i % 2 == 0 else order[::-1]):
            samples[key].append(_time_once(commands[key]))

    stats = {key: {"command": labels[key], **_stats(samples[key])} for key in commands}
    ratio = stats["stackctl"]["median_ms"] / stats["reference"]["median_ms"]
    passed = ratio <= target
    imports = importtime(_python_for(stackctl))

    # ---- report
    print(f"    {runs} interleaved runs per command after {warmup} warm-up run(s); times in ms")
    header = f"    {'command':<28} {'min':>8} {'median':>8} {'p90':>8}"
    print(header)
    print("    " + "-" * (len(header) - 4))
    for key in commands:
        s = stats[key]
        print(f"    {s['command']:<28} {s['min_ms']:>8.1f} {s['median_ms']:>8.1f} {s['p90_ms']:>8.1f}")
    verdict = "PASS" if passed else "FAIL"
    print(f"    ratio of medians stackctl/reference = {ratio:.3f} (target <= {target}): {verdict}")
    print()
    if imports.get("error"):
        print(f"    importtime: {imports['error']}")
    else:
        print(f"    python -X importtime: 'import {IMPORTTIME_MODULE}' "
              f"{imports['import_module_us'] / 1000:.1f} ms; 'stackctl --help' imports "
              f"{imports['help_imported_modules']} modules beyond interpreter start-up in "
              f"{imports['help_total_us'] / 1000:.1f} ms; top {len(imports['top'])} by cumulative time:")
        print(f"    {'cumulative ms':>13} {'self ms':>8}  module")
        for row in imports["top"]:
            print(f"    {row['cumulative_us'] / 1000:>13.1f} {row['self_us'] / 1000:>8.1f}  {row['module']}")

    return {
        "passed": passed,
        "summary": (f"stackctl --help median {stats['stackctl']['median_ms']:.1f} ms vs "
                    f"{labels['reference']} {stats['reference']['median_ms']:.1f} ms: "
                    f"ratio {ratio:.3f} (target <= {target})"),
        "runs": runs,
        "warmup": warmup,
        "target_ratio": target,
        "ratio_of_medians": round(ratio, 4),
        "commands": stats,
        "importtime": imports,
    }
