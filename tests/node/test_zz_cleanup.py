"""Clean-up after a crash: every process of the session's real node is killed with SIGKILL (as if
the machine's test run had died), then the node's clean-up (what the next `start` runs first) must
leave nothing behind, and the Docker engine's containers and chains must be exactly as before.
Runs last in the tier (marker node_last): it ends the session's node."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.k8s, pytest.mark.node, pytest.mark.node_last]

REALNODE = Path(__file__).resolve().parents[1] / "k8s" / "realnode.py"


def test_a_crashed_node_is_cleaned_up_completely(node_cluster: Any) -> None:
    realnode = sys.modules["stackctl_k8s_realnode"]
    state = realnode.STATE_DIR
    pids = json.loads((state / "pids.json").read_text())
    assert {"containerd", "kubelet", "kube-proxy", "coredns", "kube-apiserver"} <= set(pids)
    assert realnode.leftovers(state), "a running node must show up as something to clean"
    node_cluster.crashed = True
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    for pid in pids.values():
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    # The same clean-up a later `start` runs first, as its own process.
    proc = subprocess.run([sys.executable, str(REALNODE), "cleanup"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert realnode.leftovers(state) == []
    assert node_cluster.docker_state() == node_cluster.docker_before
    # Idempotent: a second clean-up finds nothing and says so.
    again = subprocess.run([sys.executable, str(REALNODE), "cleanup"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr
