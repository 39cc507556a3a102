#!/usr/bin/env python3
"""Crash safety of the secrets store: kill -9 `rotate` / `generate` / `rekey` at random points.

Each trial starts a real `stackctl` process on a scratch project (temp dir, temp HOME), kills it with
SIGKILL after a random delay, then checks with a separate `stackctl secrets verify -o json` that

- the store still opens (MAC verified, every kept version decrypts), and
- it holds either the old or the new complete state:
    rotate --all   every secret at its old version, or every one exactly one version further;
    generate       none of the trial's new secrets, or all of them (old ones untouched);
    rekey          values and versions untouched; the old data key, the new one, or (killed between
                   the two committed steps) both wrapped with the old still active.

Half the kill delays are uniform over the whole run of the command (start-up included), half land
within ±`--window` ms of a moment the store file was replaced, measured on an unkilled calibration
run — that is where a non-atomic writer would be caught half-way.

    .venv/bin/python bench/secrets_crash.py --trials 200
    .venv/bin/python bench/run.py secrets_crash --trials 200

Standard library only; writes nothing but bench/results/secrets_crash.json (when run alone).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TITLE = "secrets store crash safety: kill -9 rotate/generate/rekey at random points (target: 0 failures)"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRIALS = 200
DEFAULT_SECRETS = 60
DEFAULT_WINDOW_MS = 25.0
COMMANDS = ("rotate", "generate", "rekey")


def add_arguments(group) -> None:
    group.add_argument("--trials", type=int, default=DEFAULT_TRIALS,
                       help=f"kill -9 trials, spread over rotate/generate/rekey (default {DEFAULT_TRIALS})")
    group.add_argument("--secrets", type=int, default=DEFAULT_SECRETS,
                       help=f"secrets in the scratch store (default {DEFAULT_SECRETS})")
    group.add_argument("--window", type=float, default=DEFAULT_WINDOW_MS,
                       help=f"ms around a measured commit for focused kills (default {DEFAULT_WINDOW_MS:g})")
    group.add_argument("--seed", type=int, default=None, help="random seed (default: random, reported)")
    group.add_argument("--stackctl-bin", default=str(REPO_ROOT / ".venv" / "bin" / "stackctl"),
                       help="stackctl executable (default .venv/bin/stackctl)")


class Scratch:
    """A throwaway project + HOME in a temp dir."""

    def __init__(self, stackctl: str, secrets: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="stackctl-crash-"))
        self.root = self.dir / "proj"
        self.home = self.dir / "home"
        (self.root / "profiles").mkdir(parents=True)
        self.home.mkdir()
        self.stackctl = stackctl
        self.store = self.root / ".stackctl" / "secrets" / "local.json"
        self.base_keys = [f"K{i:03d}" for i in range(secrets)]
        self.extra_keys: list[str] = []
        (self.root / "compose.yaml").write_text("services:\n  app:\n    image: busybox\n")
        (self.root / "profiles" / "local.yaml").write_text(
            "compose:\n  files: [compose.yaml]\nsecrets:\n  history: 3\n")
        self.write_template()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STACKCTL_")}
        self.env.update({"HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config"), "NO_COLOR": "1",
                         "STACKCTL_PROJECT_DIR": str(self.root)})

    def write_template(self) -> None:
        lines = []
        for i, key in enumerate(self.base_keys + self.extra_keys):
            spec = "ed25519" if i % 20 == 7 else "hex:32"
            lines.append(f"# @secret {spec}\n{key}=\n")
        (self.root / ".env.example").write_text("".join(lines))

    def argv(self, command: str) -> list[str]:
        return [self.stackctl, "secrets", *{"rotate": ["rotate", "--all"], "generate": ["generate"],
                                            "rekey": ["rekey"]}[command]]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.stackctl, *args], env=self.env, capture_output=True, text=True, timeout=120)

    def verify(self) -> tuple[dict | None, str]:
        proc = self.run("secrets", "verify", "-o", "json")
        if proc.returncode != 0:
            return None, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        return json.loads(proc.stdout), ""

    def leftover_temps(self) -> int:
        return len(list(self.store.parent.glob(f".{self.store.name}.*.tmp")))

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _commit_times(scratch: Scratch, argv: list[str]) -> tuple[float, list[float]]:
    """Run once unkilled; (duration, seconds after start at which the store file was replaced)."""
    seen: list[float] = []
    stop = threading.Event()

    def ident() -> tuple[int, int] | None:
        try:
            st = scratch.store.stat()
            return st.st_ino, st.st_mtime_ns
        except FileNotFoundError:
            return None

    start = time.perf_counter()
    last = ident()

    def watch() -> None:
        nonlocal last
        while not stop.is_set():
            now = ident()
            if now != last:
                seen.append(time.perf_counter() - start)
                last = now
            time.sleep(0.0005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    proc = subprocess.run(argv, env=scratch.env, capture_output=True, text=True, timeout=120)
    duration = time.perf_counter() - start
    time.sleep(0.01)
    stop.set()
    thread.join()
    if proc.returncode != 0:
        raise RuntimeError(f"calibration run `{' '.join(argv[1:])}` failed: {proc.stderr.strip()[-300:]}")
    return duration, seen


def _classify(command: str, before: dict, after: dict, new_keys: list[str]) -> str:
    """'old' | 'new' | 'pending' for a consistent state, else a description of the inconsistency."""
    b, a = before["secrets"], after["secrets"]
    if command == "rotate":
        if set(a) != set(b):
            return "FAIL: the set of secrets changed during a rotation"
        moved = {n for n in a if a[n]["version"] != b[n]["version"] or a[n]["digest"] != b[n]["digest"]}
        if not moved:
            return "old"
        if moved == set(b) and all(a[n]["version"] == b[n]["version"] + 1 for n in a):
            return "new"
        return f"FAIL: partial rotation ({len(moved)} of {len(b)} secrets moved)"
    if command == "generate":
        untouched = all(a.get(n) == b[n] for n in b)
        present = [n for n in new_keys if n in a]
        if not untouched:
            return "FAIL: generate changed an existing secret"
        if not present and set(a) == set(b):
            return "old"
        if len(present) == len(new_keys) and all(a[n]["version"] == 1 for n in present):
            return "new"
        return f"FAIL: partial generate ({len(present)} of {len(new_keys)} new secrets)"
    # rekey
    if a != b:
        return "FAIL: rekey changed a value or a version"
    if after["key"] == before["key"] and after["keys"] == before["keys"]:
        return "old"
    if after["key"] == before["key"] and len(after["keys"]) == 2:
        return "pending"
    if after["key"] != before["key"] and after["keys"] == [after["key"]]:
        return "new"
    return f"FAIL: unexpected data keys {after['keys']} (active {after['key']})"


def run(args: argparse.Namespace) -> dict:
    trials = args.trials if getattr(args, "runs", None) is None else args.runs
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    stackctl = args.stackctl_bin
    if not Path(stackctl).exists():
        raise RuntimeError(f"{stackctl} not found (run `make setup`)")
    scratch = Scratch(stackctl, args.secrets)
    started = time.perf_counter()
    try:
        first = scratch.run("secrets", "generate")
        if first.returncode != 0:
            raise RuntimeError(f"setup failed: {first.stderr.strip()[-300:]}")
        calib: dict[str, tuple[float, list[float]]] = {}
        extra_counter = 0

        def prepare(command: str) -> list[str]:
            nonlocal extra_counter
            if command != "generate":
                return []
            new = [f"X{extra_counter:04d}_{i}" for i in range(5)]
            extra_counter += 1
            scratch.extra_keys.extend(new)
            scratch.write_template()
            return new

        for command in COMMANDS:
            prepare(command)
            calib[command] = _commit_times(scratch, scratch.argv(command))
        state, err = scratch.verify()
        if state is None:
            raise RuntimeError(f"store does not verify after calibration: {err}")

        outcomes = {c: {"old": 0, "new": 0, "pending": 0} for c in COMMANDS}
        failures: list[dict] = []
        near_commit = 0
        completed = 0
        leftovers = 0
        kill_delays: list[float] = []
        for trial in range(trials):
            command = COMMANDS[trial % len(COMMANDS)]
            new_keys = prepare(command)
            duration, commits = calib[command]
            if commits and rng.random() < 0.5:
                delay = max(0.0, rng.choice(commits) + rng.uniform(-args.window, args.window) / 1000)
            else:
                delay = rng.uniform(0, duration * 1.1)
            if any(abs(delay - c) <= args.window / 1000 for c in commits):
                near_commit += 1
            kill_delays.append(delay)
            proc = subprocess.Popen(scratch.argv(command), env=scratch.env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(delay)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            else:
                completed += 1
            proc.wait()
            leftovers += scratch.leftover_temps()
            after, err = scratch.verify()
            if after is None:
                failures.append({"trial": trial, "command": command, "delay_ms": round(delay * 1000, 1),
                                 "problem": f"store does not open: {err}"})
                break  # nothing further is meaningful on a broken store
            verdict = _classify(command, state, after, new_keys)
            if verdict.startswith("FAIL"):
                failures.append({"trial": trial, "command": command, "delay_ms": round(delay * 1000, 1),
                                 "problem": verdict})
            else:
                outcomes[command][verdict] += 1
            state = after
        elapsed = time.perf_counter() - started
        done = sum(sum(o.values()) for o in outcomes.values()) + len(failures)
        result = {
            "passed": not failures and done == trials,
            "summary": f"{done} trials, {len(failures)} failures; old/new/pending "
                       + ", ".join(f"{c} {o['old']}/{o['new']}/{o['pending']}" for c, o in outcomes.items())
                       + f"; {near_commit} kills within ±{args.window:g} ms of a commit",
            "trials": done,
            "failures": len(failures),
            "failure_details": failures[:20],
            "outcomes": outcomes,
            "kills_near_commit": near_commit,
            "finished_before_kill": completed,
            "leftover_temp_files_seen": leftovers,
            "calibration": {c: {"duration_ms": round(d * 1000, 1), "commits_ms": [round(x * 1000, 1) for x in cs]}
                            for c, (d, cs) in calib.items()},
            "kill_delay_ms": {"min": round(min(kill_delays) * 1000, 1) if kill_delays else None,
                              "median": round(statistics.median(kill_delays) * 1000, 1) if kill_delays else None,
                              "max": round(max(kill_delays) * 1000, 1) if kill_delays else None},
            "secrets_in_store": len(state["secrets"]),
            "seed": seed,
            "seconds": round(elapsed, 1),
        }
        return result
    finally:
        scratch.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/secrets_crash.py", description=TITLE)
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.runs = None
    result = run(args)
    print(f"trials: {result['trials']}  failures: {result['failures']}")
    print(result["summary"])
    for failure in result["failure_details"]:
        print(f"  FAIL trial {failure['trial']} ({failure['command']}, killed at {failure['delay_ms']} ms): "
              f"{failure['problem']}")
    out_dir = REPO_ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "secrets_crash.json").write_text(json.dumps({"benchmark": "secrets_crash", **result}, indent=2) + "\n")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
