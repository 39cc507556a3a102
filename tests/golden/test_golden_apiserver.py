"""The golden outputs against a real Kubernetes API server: every expected/<profile>.yaml is applied
(server-side apply, full validation and admission) to the session's control plane (tests/k8s/rig.py,
the version scripts/k8s-versions.env pins; the `control_plane` fixture of tests/conftest.py), and
applying it again must change nothing. Everything applied is deleted afterwards, pass or fail.

Without the control-plane binaries the test skips, unless STACKCTL_REQUIRE_K8S=1, where it fails.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
EXPECTED = sorted(HERE.glob("*/expected/*.yaml"))
FILES = [arg for path in EXPECTED for arg in ("-f", str(path))]


@pytest.fixture
def kubectl(control_plane: Any) -> Iterator[list[str]]:
    kubectl_bin = control_plane.bin_dir / "kubectl"
    if not kubectl_bin.is_file():
        pytest.fail(f"{kubectl_bin} is missing (scripts/k8s-binaries.sh builds it)")
    cmd = [str(kubectl_bin), "--kubeconfig", str(control_plane.kubeconfig), "--context", "stackctl-test"]
    try:
        yield cmd
    finally:  # the control plane is shared: leave nothing behind (namespaces take their contents along)
        subprocess.run([*cmd, "delete", "--ignore-not-found", "--wait=false", *FILES], check=False,
                       capture_output=True, timeout=300)


def test_api_server_accepts_every_golden_output(kubectl: list[str]) -> None:
    apply = [*kubectl, "apply", "--server-side", "--field-manager=stackctl", *FILES]
    first = subprocess.run(apply, check=False, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr  # kubectl names the file and the object
    assert "Warning" not in first.stderr, first.stderr
    again = subprocess.run(apply, check=False, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    changed = [line for line in again.stdout.splitlines() if not line.endswith("serverside-applied")]
    assert not changed, changed
    assert len(again.stdout.splitlines()) == sum(p.read_text().count("\n---\n") + 1 for p in EXPECTED)
