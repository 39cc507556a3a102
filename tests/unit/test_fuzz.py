"""Generated malformed inputs through the real CLI (issue 18, "Bad input"): every run exits 0, 1 or 2,
never with "internal error", names the file at fault, and stays within a time and memory bound.

Per run: every past failure (`fuzzing.regressions()`) and `STACKCTL_FUZZ_INPUTS` (default 2,000) inputs
of a fresh random seed, printed on failure. Replay a seed with `STACKCTL_FUZZ_SEED=S`, one input of it
with `STACKCTL_FUZZ_ONLY=I` as well. `bench/fuzz.py` is the long run (10,000 inputs).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from pathlib import Path

import fuzzing  # tests/fuzzing.py: tests/ is on sys.path (the directory of the rootdir conftest.py)
import pytest


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("fuzz-home")
    root = tmp_path_factory.mktemp("fuzz") / "base"
    with fuzzing.environment(home):
        fuzzing.build_base(root, fuzzing.run_cli)
    return root


def _run(inputs: Iterable[fuzzing.Input], base: Path, work: Path, seed: int) -> None:
    failures = []
    count = 0
    with fuzzing.environment(base.parent / "home"):
        for inp in inputs:  # one at a time: some inputs are megabytes
            count += 1
            outcome = fuzzing.check(inp, base, work)
            if outcome.problems:
                failures.append(fuzzing.describe(outcome, seed))
    assert not failures, f"seed {seed}: {len(failures)} of {count} inputs failed:\n" + "\n".join(failures[:20])


@pytest.mark.parametrize("case", fuzzing.regressions(), ids=lambda c: c.label)
def test_past_failure(case: fuzzing.Input, base: Path, tmp_path: Path) -> None:
    _run([case], base, tmp_path / "work", seed=0)


def test_generated_inputs(base: Path, tmp_path: Path) -> None:
    seed = int(os.environ.get("STACKCTL_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
    only = os.environ.get("STACKCTL_FUZZ_ONLY")
    indexes = [int(only)] if only else range(int(os.environ.get("STACKCTL_FUZZ_INPUTS", "2000")))
    print(f"fuzz seed {seed} (replay: STACKCTL_FUZZ_SEED={seed})")
    _run((fuzzing.generate(seed, i, base) for i in indexes), base, tmp_path / "work", seed)
