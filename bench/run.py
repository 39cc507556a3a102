#!/usr/bin/env python3
"""Run stackctl's benchmarks: all of them, or the ones named.

    .venv/bin/python bench/run.py                 # every bench/<name>.py
    .venv/bin/python bench/run.py startup --runs 41
    .venv/bin/python bench/run.py --list

A benchmark is a module ``bench/<name>.py`` with

    def run(args: argparse.Namespace) -> dict   # required
    def add_arguments(parser) -> None           # optional: its own options
    TITLE = "one line"                           # optional: for --list

``run`` returns a JSON-serialisable dict; by convention it holds
``"passed": bool`` (or None when there is no target) and ``"summary": str``.
The dict is written to ``bench/results/<name>.json``. Exit status: 0, or 1
with ``--strict`` when a benchmark missed its target, or 2 when a benchmark
raised (it could not measure at all).

Only the standard library is used, so this runs with any Python >= 3.11.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import platform
import sys
import traceback
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
NOT_BENCHMARKS = {"run"}


def discover() -> dict[str, Path]:
    """Benchmark name -> file, for every bench/<name>.py but run.py and _*.py."""
    found = {}
    for path in sorted(BENCH_DIR.glob("*.py")):
        name = path.stem
        if name in NOT_BENCHMARKS or name.startswith("_"):
            continue
        found[name] = path
    return found


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"stackctl_bench_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        raise ImportError(f"{path} has no run(args) function")
    return module


def build_parser(modules: dict[str, ModuleType]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Run stackctl benchmarks (all, or the ones named).",
        # two benchmarks may share an option (fuzz and secrets_crash both take --seed: one dest, one meaning)
        conflict_handler="resolve",
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME",
        help=f"benchmarks to run (default: all of {', '.join(modules) or 'none'})",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--strict", action="store_true",
        help="exit 1 when a benchmark misses its target (default: report only)",
    )
    parser.add_argument(
        "--runs", type=int, default=None,
        help="measured runs per command (default: each benchmark's own)",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR,
        help=f"where <name>.json results go (default: {RESULTS_DIR.relative_to(REPO_ROOT)})",
    )
    for name, module in modules.items():
        add = getattr(module, "add_arguments", None)
        if callable(add):
            add(parser.add_argument_group(f"{name} options"))
    return parser


def main(argv: list[str] | None = None) -> int:
    files = discover()
    modules: dict[str, ModuleType] = {}
    for name, path in files.items():
        modules[name] = load(name, path)
    parser = build_parser(modules)
    args = parser.parse_args(argv)

    if args.list:
        for name, module in modules.items():
            title = getattr(module, "TITLE", "") or (module.__doc__ or "").strip().splitlines()[0:1]
            if isinstance(title, list):
                title = title[0] if title else ""
            print(f"{name:<12} {title}")
        return 0

    unknown = [n for n in args.names if n not in modules]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)} (have: {', '.join(modules)})")
    selected = args.names or list(modules)
    if not selected:
        print("bench/run.py: no benchmarks found in bench/", file=sys.stderr)
        return 2

    args.results_dir.mkdir(parents=True, exist_ok=True)
    # Measure stackctl as installed: a regular `pip install` ships bytecode, an editable one does not
    # (and with PYTHONDONTWRITEBYTECODE set Python would recompile every module on every command).
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "stackctl"), quiet=1)
    status = 0
    overview = []
    for name in selected:
        print(f"==> bench {name}", flush=True)
        try:
            result = modules[name].run(args)
        except Exception as exc:  # report, keep going with the others
            traceback.print_exc()
            print(f"bench {name}: ERROR: {exc}", file=sys.stderr)
            overview.append((name, "ERROR", str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            status = 2
            continue
        result = {
            "benchmark": name,
            "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "host": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "machine": platform.machine(),
            },
            **result,
        }
        out = args.results_dir / f"{name}.json"
        out.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
        passed = result.get("passed")
        verdict = "PASS" if passed is True else "FAIL" if passed is False else "INFO"
        overview.append((name, verdict, result.get("summary", "")))
        print(f"    result written to {out}")
        if passed is False and args.strict and status == 0:
            status = 1

    print()
    for name, verdict, summary in overview:
        print(f"{verdict:<5} {name:<12} {summary}")
    if status == 1:
        print("bench/run.py: a benchmark missed its target (--strict)", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
