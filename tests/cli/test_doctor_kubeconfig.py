"""`stackctl doctor` reads the kubeconfig with the reader promote uses (kubernetes/client/kubeconfig)."""

from __future__ import annotations

import json
import os


def test_doctor_merges_kubeconfig_files_as_promote_does(project, cli, tmp_path, monkeypatch) -> None:
    """KUBECONFIG lists several files (a missing one is skipped); the first current-context wins."""
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("contexts: [{name: one, context: {cluster: c, user: u}}]\n")
    second.write_text("current-context: two\ncontexts: [{name: two, context: {cluster: c, user: u}}]\n")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first), str(tmp_path / "missing.yaml"), str(second)]))
    project.write("compose.yaml", "services:\n  api:\n    image: x\n")
    project.write(".env", "")
    project.profile("local", "compose: {files: [compose.yaml]}\nkubernetes: {namespace: demo}\n")
    res = cli("doctor", "-o", "json", "--offline")
    check = {c["name"]: c for c in json.loads(res.stdout)}["kubeconfig"]
    assert check == {"name": "kubeconfig", "status": "ok", "detail": f"context 'two' in {first}, {second}",
                     "fix": ""}


def test_doctor_without_a_kubeconfig_says_where_it_looked(project, cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none.yaml"))
    project.write("compose.yaml", "services:\n  api:\n    image: x\n")
    project.write(".env", "")
    project.profile("local", "compose: {files: [compose.yaml]}\nkubernetes: {namespace: demo}\n")
    res = cli("doctor", "-o", "json", "--offline")
    check = {c["name"]: c for c in json.loads(res.stdout)}["kubeconfig"]
    assert check["status"] == "fail"
    assert check["detail"] == f"no kubeconfig found ({tmp_path / 'none.yaml'})"
