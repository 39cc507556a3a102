"""Parity: the stack model stackctl builds equals what Docker Compose resolves.

Hypothesis generates Compose projects (a base file plus an overlay) whose *intended* runtime
values are known: every string is written `$`-escaped as a user would (`$$`), so after loading,
the model must hold exactly the intended value. Units (durations, memory, CPUs), merge of `-f`
overlays, depends_on conditions and volume kinds are checked against `docker compose config`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackctl.pipeline import load_stack
from stackctl.profile import load_profile

pytestmark = pytest.mark.docker

NAMES = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
ENV_KEYS = st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True)
# Values users really put in: `$`, quotes, `#`, spaces, backslashes, unicode, braces.
TEXT = st.text(alphabet=st.sampled_from(list("ab Z09_-$#'\"\\{}:=/.é ")), max_size=12)
DURATIONS = st.sampled_from([("1s", 1.0), ("500ms", 0.5), ("10s", 10.0), ("1m30s", 90.0), ("2m", 120.0),
                             ("1h", 3600.0), ("0s", 0.0)])
MEMORY = st.sampled_from([("512M", 512 * 2**20), ("1g", 2**30), ("64m", 64 * 2**20), ("1024k", 2**20),
                          ("2G", 2 * 2**30), ("300000000", 300000000)])
CPUS = st.sampled_from([("0.5", 0.5), ("1", 1.0), ("0.25", 0.25), ("2", 2.0)])
# Service-level tmpfs as written → (target, size in bytes, mode) in the model.
TMPFS = st.sampled_from([("/run", "/run", None, None), ("/tmp:size=64m", "/tmp", 64 * 2**20, None),
                         ("/c:size=100000,mode=1777", "/c", 100000, 0o1777), ("/d:size=1g,uid=1000", "/d", 2**30, None),
                         ("/e:mode=0700,size=2K", "/e", 2048, 0o700)])


def esc(value: str) -> str:
    return value.replace("$", "$$")


@st.composite
def services(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    names = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        svc: dict[str, Any] = {"image": f"example/{name}:1"}
        svc["environment"] = draw(st.dictionaries(ENV_KEYS, TEXT, max_size=5))
        if draw(st.booleans()):
            svc["command"] = draw(st.lists(TEXT, min_size=1, max_size=3))
        if draw(st.booleans()):
            svc["labels"] = draw(st.dictionaries(st.from_regex(r"[a-z]{1,5}\.[a-z]{1,5}", fullmatch=True), TEXT,
                                                 max_size=3))
        if draw(st.booleans()):
            svc["ports"] = [{"target": draw(st.integers(1, 65535)), "published": str(draw(st.integers(1024, 65535)))}]
        if draw(st.booleans()):
            interval, timeout = draw(DURATIONS), draw(DURATIONS)
            svc["healthcheck"] = {"test": ["CMD-SHELL", draw(TEXT) or "true"], "interval": interval,
                                  "timeout": timeout, "retries": draw(st.integers(1, 10))}
        if draw(st.booleans()):
            mem, cpus = draw(MEMORY), draw(CPUS)
            svc["deploy"] = {"replicas": draw(st.integers(0, 5)),
                             "resources": {"limits": {"memory": mem, "cpus": cpus}}}
        if draw(st.booleans()):
            svc["stop_grace_period"] = draw(DURATIONS)
        if i > 0 and draw(st.booleans()):
            cond = draw(st.sampled_from(["service_started", "service_healthy", "service_completed_successfully"]))
            svc["depends_on"] = {names[0]: {"condition": cond, "required": draw(st.booleans())}}
        if draw(st.booleans()):
            svc["tmpfs"] = draw(st.lists(TMPFS, max_size=3, unique_by=lambda t: t[1]))
        kinds = draw(st.lists(st.sampled_from(["volume", "bind", "tmpfs"]), max_size=3))
        svc["volumes"] = [{"type": k, "target": f"/m{j}", **({"source": "data"} if k == "volume" else
                                                              {"source": "./conf"} if k == "bind" else {})}
                          for j, k in enumerate(kinds)]
        out[name] = svc
    return out


def _yaml(services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The Compose file text a user would write for these intended values (`$` escaped)."""
    doc: dict[str, Any] = {"services": {}, "volumes": {"data": {}}}
    for name, svc in services.items():
        s = dict(svc)
        s["environment"] = {k: esc(v) for k, v in svc["environment"].items()}
        if "command" in s:
            s["command"] = [esc(a) for a in svc["command"]]
        if "labels" in s:
            s["labels"] = {k: esc(v) for k, v in svc["labels"].items()}
        if "healthcheck" in s:
            h = svc["healthcheck"]
            s["healthcheck"] = {**h, "test": [h["test"][0], esc(h["test"][1])], "interval": h["interval"][0],
                                "timeout": h["timeout"][0]}
        if "deploy" in s:
            lim = svc["deploy"]["resources"]["limits"]
            s["deploy"] = {"replicas": svc["deploy"]["replicas"],
                           "resources": {"limits": {"memory": lim["memory"][0], "cpus": lim["cpus"][0]}}}
        if "stop_grace_period" in s:
            s["stop_grace_period"] = svc["stop_grace_period"][0]
        if "tmpfs" in s:
            s["tmpfs"] = [t[0] for t in svc["tmpfs"]]
        doc["services"][name] = s
    return doc


def _compose_json(root: Path, files: list[str]) -> dict[str, Any]:
    args = ["docker", "compose", "--env-file", os.devnull]
    for f in files:
        args += ["-f", f]
    proc = subprocess.run([*args, "config", "--format", "json"], cwd=root, capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout)


@settings(max_examples=int(os.environ.get("STACKCTL_PARITY_EXAMPLES", "120")), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(base=services(), overlay_env=st.dictionaries(ENV_KEYS, TEXT, max_size=3))
def test_model_equals_compose_resolution(project, base: dict[str, dict[str, Any]],
                                         overlay_env: dict[str, str]) -> None:
    first = next(iter(base))
    project.write("compose.yaml", yaml.safe_dump(_yaml(base), allow_unicode=True))
    project.write("overlay.yaml", yaml.safe_dump(
        {"services": {first: {"environment": {k: esc(v) for k, v in overlay_env.items()}}}}, allow_unicode=True))
    (project.root / "conf").mkdir(exist_ok=True)
    project.profile("local", "stack: parity\ncompose: {files: [compose.yaml, overlay.yaml], env_files: []}\n")

    stack = load_stack(load_profile(project.root, "local")).stack
    resolved = _compose_json(project.root, ["compose.yaml", "overlay.yaml"])

    assert set(stack.service_names) == set(base) == set(resolved["services"])
    for name, intended in base.items():
        svc = stack.service(name)
        env = dict(intended["environment"])
        if name == first:
            env.update(overlay_env)  # a later -f file overrides per key
        assert dict(svc.environment) == env
        assert svc.command == (tuple(intended["command"]) if "command" in intended else None)
        assert dict(svc.labels) == intended.get("labels", {})
        if "ports" in intended:
            p = intended["ports"][0]
            assert [(x.target, x.published) for x in svc.ports] == [(p["target"], p["published"])]
        if "healthcheck" in intended:
            h = intended["healthcheck"]
            assert svc.healthcheck is not None
            assert svc.healthcheck.test == ("CMD-SHELL", h["test"][1])
            assert svc.healthcheck.interval == pytest.approx(h["interval"][1])
            assert svc.healthcheck.timeout == pytest.approx(h["timeout"][1])
            assert svc.healthcheck.retries == h["retries"]
        else:
            assert svc.healthcheck is None
        if "deploy" in intended:
            lim = intended["deploy"]["resources"]["limits"]
            assert svc.deploy.replicas == intended["deploy"]["replicas"]
            assert svc.deploy.limits.memory == lim["memory"][1]
            assert svc.deploy.limits.cpus == pytest.approx(lim["cpus"][1])
        if "stop_grace_period" in intended:
            assert svc.stop_grace_period == pytest.approx(intended["stop_grace_period"][1])
        assert [(d.service, d.condition, d.required) for d in svc.depends_on] == [
            (dep, c["condition"], c["required"]) for dep, c in intended.get("depends_on", {}).items()]
        assert [(v.type, v.target) for v in svc.volumes] == [(v["type"], v["target"]) for v in intended["volumes"]]
        assert [(t.target, t.tmpfs_size, t.tmpfs_mode) for t in svc.tmpfs] == [
            t[1:] for t in intended.get("tmpfs", [])]
        binds = [v for v in svc.volumes if v.type == "bind"]
        assert all(v.source == str(project.root / "conf") for v in binds)
        # the model and Compose agree on every service field the model carries
        assert svc.image == resolved["services"][name]["image"]


def test_extends_include_and_profiles_follow_compose(project) -> None:
    project.write("base.yaml", """
        services:
          common:
            image: example/base:1
            environment: {SHARED: "from-base", PRICE: "5$$"}
    """)
    project.write("inc/extra.yaml", """
        services:
          worker:
            image: example/worker:1
    """)
    project.write("compose.yaml", """
        include:
          - inc/extra.yaml
        services:
          web:
            extends: {file: base.yaml, service: common}
            environment: {OWN: "x"}
          debug:
            image: example/debug:1
            profiles: [debug]
    """)
    project.profile("local", "compose: {files: [compose.yaml], env_files: []}\n")
    project.profile("dev", "compose: {files: [compose.yaml], env_files: [], profiles: [debug]}\n")
    stack = load_stack(load_profile(project.root, "local")).stack
    assert stack.service_names == ("web", "worker")
    assert dict(stack.service("web").environment) == {"SHARED": "from-base", "PRICE": "5$", "OWN": "x"}
    assert stack.service("web").image == "example/base:1"
    dev = load_stack(load_profile(project.root, "dev")).stack
    assert dev.service_names == ("debug", "web", "worker")


def test_interpolation_uses_profile_env_files_with_compose_precedence(project, monkeypatch) -> None:
    project.write("compose.yaml", """
        services:
          web:
            image: "example/web:${TAG:-latest}"
            environment:
              A: ${A}
              B: ${B:-fallback}
              C: ${C:+set}
    """)
    project.write("one.env", "A=from-one\nB=from-one\nTAG=1.0\n")
    project.write("two.env", "B=from-two\nC=\n")
    project.write(".env", "A=from-dotenv-must-not-be-read\n")
    project.profile("local", "compose: {files: [compose.yaml], env_files: [one.env, two.env]}\n")
    monkeypatch.setenv("TAG", "2.0")  # the shell wins over env files
    stack = load_stack(load_profile(project.root, "local")).stack
    web = stack.service("web")
    assert web.image == "example/web:2.0"
    assert dict(web.environment) == {"A": "from-one", "B": "from-two", "C": ""}
