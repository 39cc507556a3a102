"""The README's "A day with stackctl" runs as written, line by line, for `local` and `production`.

A fresh project is made of the bundled example's Compose files only (no profiles, no template), as a
user's repository would be; every command of the README block then runs in it as a real process, in
order, through a shell and on a terminal (the `script` utility gives it a pty: promote and rollback of
a protected profile ask, and the test answers "y"). A comment line of the block that tells the user to
edit something is done by the test, as the user would (and nothing else is):

- "edit profiles/production.yaml": the registry the node pulls from (127.0.0.1:5000/day), and a
  namespace of its own (`shop-day`: the shop module of this tier owns `shop-prod`); the context that
  `init` writes (`production`) is one of the rig's;
- "change the code": one line added to the API's source, so its image and only its Deployment change.

After the block: the local stack is down, the namespace deleted, and what the day promised is checked
(two revisions and a rollback in `history`, the API answering in the cluster)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from stackctl_k8s_helpers import cli_env

pytestmark = [pytest.mark.k8s, pytest.mark.node, pytest.mark.docker, pytest.mark.engine]

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "shop-day"


def readme_day() -> list[str]:
    """The lines of the README's "A day with stackctl" sh block, comments included."""
    text = (REPO / "README.md").read_text()
    section = text.split("## A day with stackctl", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README.md: no sh block under 'A day with stackctl'"
    return [line for line in block.group(1).splitlines() if line.strip()]


class Day:
    def __init__(self, root: Path, env: dict[str, str], cluster: Any) -> None:
        self.root, self.env, self.cluster = root, env, cluster
        self.log: list[str] = []

    def run(self, line: str) -> None:
        """One README line, on a pty, answering "y" to what it asks."""
        proc = subprocess.run(["script", "-qec", line, "/dev/null"], cwd=self.root, env=self.env,
                              input="y\ny\n", capture_output=True, text=True, timeout=900)
        self.log.append(f"$ {line}\n{proc.stdout}{proc.stderr}")
        ok = (0, 1) if "--diff" in line else (0,)  # a diff exits 1 when something differs, as kubectl diff
        assert proc.returncode in ok, f"README line failed (exit {proc.returncode}): {line}\n{proc.stdout}{proc.stderr}"

    def edit(self, comment: str) -> None:
        if "profiles/production.yaml" in comment:
            path = self.root / "profiles" / "production.yaml"
            profile = yaml.safe_load(path.read_text())
            kube = profile["kubernetes"]
            assert kube["context"] in {"production"}, kube  # what init wrote: one of the rig's contexts
            kube["registry"] = f"{self.cluster.registry}/day"
            kube["namespace"] = NAMESPACE
            path.write_text(yaml.safe_dump(profile, sort_keys=False))
        elif "change the code" in comment:
            app = self.root / "api" / "app.py"
            app.write_text(app.read_text() + "\n# a change of the day\n")
        else:
            raise AssertionError(f"README comment line the test does not know how to do: {comment}")


@pytest.fixture
def day(node_cluster: Any, tmp_path: Path) -> Iterator[Day]:
    root = tmp_path / "shop"
    shutil.copytree(REPO / "examples" / "shop", root, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    home = tmp_path / "home"
    home.mkdir()
    env = cli_env(home, node_cluster.kubeconfig, columns=120)
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{env['PATH']}"
    d = Day(root, env, node_cluster)
    try:
        yield d
    finally:
        subprocess.run([str(REPO / ".venv" / "bin" / "stackctl"), "down", "--volumes"], cwd=root, env=env,
                       capture_output=True, timeout=300)
        node_cluster.plane.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}")
        end = time.monotonic() + 120
        while time.monotonic() < end and node_cluster.get(f"/api/v1/namespaces/{NAMESPACE}") is not None:
            time.sleep(1)


def test_the_readme_day_runs_as_written(day: Day) -> None:
    lines = readme_day()
    assert any(line.startswith("stackctl promote production") for line in lines)
    for line in lines:
        if line.lstrip().startswith("#"):
            day.edit(line)
        else:
            day.run(line)
    # What the day promised: two promotes and a rollback recorded, the first version serving again.
    hist = subprocess.run(["stackctl", "history", "production", "-o", "json"], cwd=day.root, env=day.env,
                          capture_output=True, text=True, timeout=120)
    assert hist.returncode == 0, hist.stderr
    revisions = json.loads(hist.stdout)["revisions"]
    assert len(revisions) == 3, revisions
    assert revisions[-1]["status"] == "deployed"
    pods = day.cluster.pods(NAMESPACE, "app.kubernetes.io/name=api")
    assert pods and all(any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])
                        for p in pods if not p["metadata"].get("deletionTimestamp"))
