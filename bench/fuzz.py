#!/usr/bin/env python3
"""The long fuzz run (issue 18, "Done when"): 10,000 generated malformed inputs through the real CLI.

The inputs, the commands and the checks are tests/fuzzing.py's, which tests/unit/test_fuzz.py runs on
2,000 inputs per test run: one file of a working project (profile, .env.example, .env, compose.yaml,
the secrets store, the JSON `docker compose config` prints) replaced by a mutation, then a command on
it, in-process (no Docker: a fake `docker` prints the resolved JSON). Counts internal errors (an
"internal error" or a traceback, an exit code outside 0/1/2, an error naming no file), hangs (a run
over the 5 s bound) and the peak memory of the process (max RSS). Target: 0 internal errors, 0 hangs.

    .venv/bin/python bench/fuzz.py --inputs 10000 --seed 7
    .venv/bin/python bench/run.py fuzz --inputs 2000

Replay one failing input: `STACKCTL_FUZZ_SEED=S STACKCTL_FUZZ_ONLY=I pytest tests/unit/test_fuzz.py`.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import itertools
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

TITLE = "fuzz: 10,000 malformed inputs through the CLI (target: 0 internal errors, 0 hangs, bounded memory)"
REPO_ROOT = Path(__file__).resolve().parent.parent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", type=int, default=10_000, help="generated inputs (default 10,000)")
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (default: a random one)")
    parser.add_argument("--memory-target", type=int, default=512, help="peak RSS target in MiB (default 512)")


def _fuzzing() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzzing", REPO_ROOT / "tests" / "fuzzing.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzzing"] = module
    spec.loader.exec_module(module)
    return module


def run(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(REPO_ROOT))  # stackctl from this checkout
    fz = _fuzzing()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    tmp = Path(tempfile.mkdtemp(prefix="stackctl-fuzz-"))
    failures: list[str] = []
    hangs = internal = runs = 0
    kinds: collections.Counter[str] = collections.Counter()
    slowest = 0.0
    started = time.monotonic()
    with fz.environment(tmp / "home"):
        fz.build_base(tmp / "base", fz.run_cli)
        past = fz.regressions()
        total = len(past) + args.inputs
        # generated one at a time: a 3,000-level block is ~9 MB of text, 10,000 inputs held at once are GBs
        inputs = itertools.chain(past, (fz.generate(seed, i, tmp / "base") for i in range(args.inputs)))
        for n, inp in enumerate(inputs, 1):
            outcome = fz.check(inp, tmp / "base", tmp / "work")
            runs += len(inp.commands)
            kinds[inp.kind] += 1
            slowest = max(slowest, outcome.seconds / max(outcome.runs, 1))
            if outcome.problems:
                failures.append(fz.describe(outcome, seed))
                print(failures[-1][:1000], flush=True)
                if any("hang" in p or "took" in p for p in outcome.problems):
                    hangs += 1
                else:
                    internal += 1
            if n % 1000 == 0:
                print(f"  {n}/{total} inputs, {len(failures)} failing, "
                      f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    passed = not failures and peak <= args.memory_target
    summary = (f"seed {seed}: {total} inputs ({args.inputs} generated + {len(past)} "
               f"past failures), {runs} runs in {time.monotonic() - started:.0f} s: {internal} internal errors, "
               f"{hangs} hangs, slowest run {slowest:.2f} s, peak memory {peak:.0f} MiB")
    print(summary)
    return {"passed": passed, "summary": summary, "seed": seed, "inputs": total, "runs": runs,
            "internal_errors": internal, "hangs": hangs, "peak_rss_mib": round(peak), "kinds": dict(kinds),
            "slowest_run_s": round(slowest, 3), "failures": failures[:100]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    result = run(parser.parse_args())
    print(json.dumps({k: v for k, v in result.items() if k != "failures"}, indent=2))
    sys.exit(0 if result["passed"] else 1)
