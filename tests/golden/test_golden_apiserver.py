"""The golden outputs against a real Kubernetes API server: every expected/<profile>.yaml is applied
(server-side apply, full validation and admission) to the session's control plane (tests/k8s/rig.py,
the version scripts/k8s-versions.env pins; the `control_plane` fixture of tests/conftest.py), and
applying it again must change nothing: no object's stackctl-owned fields, nor the time the API server
records for their last change, may move (kubectl prints `serverside-applied` for every object, changed
or not, so its output cannot tell). Profiles of one case that render the same object differently are
applied in separate rounds. Everything applied is deleted afterwards, pass or fail.

Without the control-plane binaries the test skips, unless STACKCTL_REQUIRE_K8S=1, where it fails.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from stackctl_k8s_helpers import kubectl

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
EXPECTED = sorted(HERE.glob("*/expected/*.yaml"))
FILES = [arg for path in EXPECTED for arg in ("-f", str(path))]
MANAGER = "stackctl"


def key(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"


def documents(path: Path) -> dict[str, Any]:
    return {key(doc): doc for doc in yaml.safe_load_all(path.read_text()) if doc}


def rounds() -> list[list[Path]]:
    """The expected files in groups applied together, none of which renders an object another file of
    the group renders differently: local-build's local and production profiles share the namespace
    `notes`, and applying both at once would make every re-apply change it back and forth."""
    groups: list[tuple[list[Path], dict[str, Any]]] = []
    for path in EXPECTED:
        docs = documents(path)
        for files, seen in groups:
            if all(seen.get(k, doc) == doc for k, doc in docs.items()):
                files.append(path)
                seen.update(docs)
                break
        else:
            groups.append(([path], dict(docs)))
    return [files for files, _ in groups]


@pytest.fixture
def plane(control_plane: Any) -> Iterator[Any]:
    try:
        yield control_plane
    finally:  # the control plane is shared: leave nothing behind (namespaces take their contents along)
        kubectl(control_plane, "delete", "--ignore-not-found", "--wait=false", *FILES, context="stackctl-test",
                check=False, timeout=300)


def applied(plane: Any, files: list[str]) -> dict[str, Any]:
    """kind/namespace/name → stackctl's managedFields entry of the object: the fields it owns and the
    time the API server last changed the object for it (an apply that changes nothing leaves both).
    Not resourceVersion nor generation: controllers write status and fields of their own meanwhile
    (the HPA of queue-workers scales its Deployment), under managers of their own."""
    out = kubectl(plane, "get", "-o", "json", "--show-managed-fields", *files, context="stackctl-test",
                  timeout=300).stdout
    state = {}
    for item in json.loads(out)["items"]:
        ours = [e for e in item["metadata"].get("managedFields", [])
                if e["manager"] == MANAGER and e["operation"] == "Apply"]
        assert ours, f"{key(item)}: no managedFields entry of {MANAGER}"
        state[key(item)] = ours
    return state


def test_api_server_accepts_every_golden_output(plane: Any) -> None:
    for paths in rounds():
        files = [arg for path in paths for arg in ("-f", str(path))]
        apply = ["apply", "--server-side", f"--field-manager={MANAGER}", *files]
        first = kubectl(plane, *apply, context="stackctl-test", check=False, timeout=300)
        assert first.returncode == 0, first.stderr  # kubectl names the file and the object
        assert "Warning" not in first.stderr, first.stderr
        time.sleep(1.5)  # managedFields times have one-second resolution: a change by the re-apply must show
        before = applied(plane, files)
        assert set(before) == {k for path in paths for k in documents(path)}
        again = kubectl(plane, *apply, context="stackctl-test", check=False, timeout=300)
        assert again.returncode == 0, again.stderr
        after = applied(plane, files)
        changed = sorted(k for k in before if after.get(k) != before[k])
        assert not changed, f"re-applying the same files changed {changed}"
