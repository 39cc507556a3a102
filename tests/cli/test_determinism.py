"""The same input gives the same output, the same warnings and the same error, in the same order (issue 12
item 11): the renderer's order must not come from hashing (PYTHONHASHSEED) nor from Compose's map iteration
(Go randomises it on every run, so with several problems Compose names a different one each time)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.docker

SEEDS = ("0", "1", "2", "3", "4")

# Several services, each with something to warn or note about.
NOISY = """
name: noisy
services:
  api:
    image: eclipse-temurin:21
    environment: {JAVA_OPTS: "-Xmx2g", B: "2", A: "1"}
    deploy: {resources: {limits: {memory: 1g}}}
    ulimits: {nofile: 65536}
    privileged: true
  web:
    image: node:22
    environment: {NODE_OPTIONS: "--max-old-space-size=4096"}
    deploy: {resources: {limits: {memory: 512m}}}
    sysctls: {net.core.somaxconn: "1024", kernel.msgmax: "65536"}
    hostname: Not_A_Label
  db:
    image: postgres:16
    deploy: {replicas: 2}
    cap_add: [SYS_TIME, NET_ADMIN]
    logging: {driver: syslog}
  cache:
    image: redis:7
    deploy: {replicas: 3}
    extra_hosts: ["a:10.0.0.1"]
  worker:
    image: ghcr.io/acme/worker:1
    depends_on:
      cache: {condition: service_healthy}
      db: {condition: service_healthy}
    user: app
"""
MISSING = """
services:
  zeta:
    image: nginx:${ZETA_TAG:?set ZETA_TAG}
  alpha:
    image: nginx:${ALPHA_TAG:?set ALPHA_TAG}
  mid:
    image: nginx:${MID_TAG:?set MID_TAG}
"""
# What a project whose `.env` is not read gives: the same empty variable in several typed fields.
BLANKS = """
services:
  zeta:
    image: nginx
    read_only: ${RO}
  alpha:
    image: nginx
    read_only: ${RO}
    healthcheck: {test: ["CMD", "true"], retries: "${RETRIES}"}
"""
DANGLING = """
services:
  zeta:
    image: nginx
    depends_on: [nope1]
  alpha:
    image: nginx
    networks: [nonet]
  mid:
    image: nginx
    volumes: ["novol:/data"]
    secrets: [nosecret]
"""


def runs(project: Any, compose: str) -> list[tuple[int, str, str]]:
    project.write("compose.yaml", compose)
    project.write(".env", "")
    project.profile("production", "compose: {files: [compose.yaml]}\nkubernetes: {namespace: noisy}\n")
    out = []
    for seed in SEEDS:
        env = {**os.environ, "PYTHONHASHSEED": seed, "COLUMNS": "400"}
        res = subprocess.run([sys.executable, "-m", "stackctl", "render", "kubernetes", "-p", "production"],
                             cwd=project.root, env=env, capture_output=True, text=True, timeout=120)
        out.append((res.returncode, res.stdout, res.stderr))
    return out


def test_warnings_and_output_do_not_change_with_the_hash_seed(project: Any) -> None:
    results = runs(project, NOISY)
    code, stdout, stderr = results[0]
    assert code == 0, stderr
    assert stdout.count("kind: ") >= 5
    warnings = [line for line in stderr.splitlines() if line.startswith(("Warning:", "note:"))]
    assert len(warnings) >= 8  # several services, each with its own problem
    assert all(r == results[0] for r in results[1:])


def test_of_several_missing_variables_the_first_in_the_file_is_named_every_time(project: Any) -> None:
    results = runs(project, MISSING)
    code, _, stderr = results[0]
    assert code == 2
    assert "compose.yaml: services.zeta.image: required variable ZETA_TAG is missing a value: set ZETA_TAG " \
           "(also missing: ALPHA_TAG, MID_TAG)" in " ".join(stderr.split())
    assert all(r == results[0] for r in results[1:])


def test_of_several_values_that_do_not_cast_the_first_in_the_file_is_named_every_time(project: Any) -> None:
    results = runs(project, BLANKS)
    code, _, stderr = results[0]
    assert code == 2
    assert "compose.yaml: services.zeta.read_only: RO is not set (used in compose.yaml: services.zeta.read_only, " \
           "services.alpha.read_only): failed to cast to expected type: invalid boolean: (also invalid: " \
           "services.alpha.read_only, services.alpha.healthcheck.retries)" in " ".join(stderr.split())
    assert all(r == results[0] for r in results[1:])


def test_of_several_dangling_references_the_same_is_named_every_time(project: Any) -> None:
    results = runs(project, DANGLING)
    code, _, stderr = results[0]
    assert code == 2
    assert 'service "alpha" refers to undefined network nonet (and 3 more: service "mid" refers to undefined ' \
           'volume novol; service "mid" refers to undefined secret nosecret; service "zeta" depends on undefined ' \
           'service "nope1")' in " ".join(stderr.split())
    assert all(r == results[0] for r in results[1:])
