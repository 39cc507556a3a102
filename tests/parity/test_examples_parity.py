"""Every bundled example and every shipped profile: the model equals `docker compose config`."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stackctl.pipeline import load_stack
from stackctl.profile import list_profiles, load_profile

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_FILES = sorted(p for p in (REPO / "examples").rglob("*.y*ml")
                       if re.match(r"(docker-)?compose(\.[\w-]+)?\.ya?ml$", p.name))


def _resolve(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """`docker compose config`, filling required variables with throwaway values as needed."""
    for _ in range(20):
        proc = subprocess.run(["docker", "compose", *args, "config", "--format", "json"], cwd=REPO, env=env,
                              capture_output=True, text=True)
        if proc.returncode == 0:
            return json.loads(proc.stdout)
        missing = re.search(r"required variable (\w+) is missing", proc.stderr)
        assert missing, proc.stderr
        env[missing.group(1)] = secrets.token_hex(8) + "$x#'y"
    raise AssertionError("too many required variables")


def _u(v: Any) -> Any:
    if isinstance(v, str):
        return v.replace("$$", "$")
    if isinstance(v, list):
        return [_u(x) for x in v]
    if isinstance(v, dict):
        return {k: _u(x) for k, x in v.items()}
    return v


def _compare(stack: Any, resolved: dict[str, Any]) -> None:
    assert set(stack.service_names) == set(resolved["services"])
    for name, raw in resolved["services"].items():
        raw = _u(raw)
        svc = stack.service(name)
        assert svc.image == raw.get("image")
        assert dict(svc.environment) == (raw.get("environment") or {})
        assert list(svc.command or []) == (raw.get("command") or [])
        assert list(svc.entrypoint or []) == (raw.get("entrypoint") or [])
        assert [(p.target, p.published) for p in svc.ports] == [
            (p["target"], p.get("published")) for p in raw.get("ports") or []]
        assert list(svc.expose) == (raw.get("expose") or [])
        assert dict(svc.labels) == (raw.get("labels") or {})
        assert {n.name for n in svc.networks} == set(raw.get("networks") or {})
        assert [(v.type, v.source, v.target) for v in svc.volumes] == [
            (v["type"], v.get("source"), v["target"]) for v in raw.get("volumes") or []]
        assert [(d.service, d.condition) for d in svc.depends_on] == sorted(
            (k, v["condition"]) for k, v in (raw.get("depends_on") or {}).items())
        if raw.get("healthcheck"):
            assert svc.healthcheck is not None and list(svc.healthcheck.test) == raw["healthcheck"]["test"]
        assert svc.restart == raw.get("restart")
        assert svc.user == raw.get("user")
    assert {n.name: n.internal for n in stack.networks} == {
        k: bool((v or {}).get("internal")) for k, v in resolved.get("networks", {}).items()}
    assert {v.name for v in stack.volumes} == set(resolved.get("volumes") or {})


@pytest.mark.parametrize("compose_file", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_example_file(tmp_path: Path, compose_file: Path) -> None:
    if compose_file.name.startswith("compose.") and compose_file.name != "compose.yaml":
        base = compose_file.with_name("compose.yaml")
        files = [base, compose_file] if base.exists() else [compose_file]
    else:
        files = [compose_file]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_CONFIG", "DOCKER_HOST")}
    args = ["--env-file", os.devnull] + [a for f in files for a in ("-f", str(f))]
    resolved = _resolve(args, env)
    root = tmp_path
    (root / "profiles").mkdir()
    (root / "profiles" / "t.yaml").write_text(json.dumps({"compose": {"files": [str(f) for f in files],
                                                                      "env_files": []}}))
    stack = load_stack(load_profile(root, "t"), environ=env).stack
    _compare(stack, resolved)


@pytest.mark.parametrize("name", list_profiles(REPO))
def test_every_shipped_profile(name: str) -> None:
    profile = load_profile(REPO, name)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_CONFIG", "DOCKER_HOST")}
    args = ["--env-file", os.devnull] + [a for f in profile.compose.files for a in ("-f", str(f))]
    if profile.stack:
        args += ["-p", profile.stack]
    resolved = _resolve(args, env)
    # the profile's own env files must not change what this test compares: resolve both ways alike
    profile = type(profile)(**{**profile.__dict__, "compose": type(profile.compose)(
        **{**profile.compose.__dict__, "env_files": ()})})
    stack = load_stack(profile, environ=env).stack
    _compare(stack, resolved)
    for svc_name, override in profile.services.items():
        if override.replicas is not None:
            assert stack.service(svc_name).deploy.replicas == override.replicas
