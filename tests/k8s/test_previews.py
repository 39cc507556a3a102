"""Preview environments on the control plane: `promote PROFILE --preview NAME` beside the main
namespace, `history --preview`, `previews list`, `previews prune [--expired]`.

The main namespace is promoted first and snapshotted (every object's uid and resourceVersion, the
Namespace included); whatever happens to the previews, the snapshot must stay equal.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import textwrap
from typing import Any

import pytest
from stackctl_k8s_helpers import api_path, history, ok

pytestmark = [pytest.mark.k8s]

COMPOSE = """
name: demo
services:
  web:
    image: stackctl-test/busybox:latest
    command: ["httpd", "-f", "-p", "8080"]
    ports: ["8080:8080"]
    environment:
      API_TOKEN: ${API_TOKEN:?}
      DB_PASSWORD: ${DB_PASSWORD:?}
      DATABASE_URL: postgres://app:${DB_PASSWORD:?}@db/app
  worker:
    image: stackctl-test/busybox:latest
    command: ["sleep", "3600"]
"""

TEMPLATE = """
# @secret hex:16
API_TOKEN=
# @secret password:20
DB_PASSWORD=
"""

KINDS = ("configmaps", "secrets", "services", "deployments", "networkpolicies", "ingresses", "serviceaccounts")
BRANCH = "feature/Login_page"


def snapshot(plane: Any, namespace: str) -> dict[str, tuple[str, str]]:
    """kind/name → (uid, resourceVersion) of every object of the namespace (and the Namespace itself)."""
    out: dict[str, tuple[str, str]] = {}
    status, ns = plane.request("GET", f"/api/v1/namespaces/{namespace}")
    assert status == 200, ns
    out["namespace"] = (ns["metadata"]["uid"], ns["metadata"]["resourceVersion"])
    for kind in KINDS:
        status, data = plane.request("GET", api_path(kind, namespace))
        assert status == 200, data
        for item in data.get("items", []):
            out[f"{kind}/{item['metadata']['name']}"] = (item["metadata"]["uid"], item["metadata"]["resourceVersion"])
    return out


def secret_data(plane: Any, namespace: str, name: str) -> dict[str, str]:
    status, data = plane.request("GET", api_path("secrets", namespace, name))
    assert status == 200, data
    return {k: base64.b64decode(v).decode() for k, v in data["data"].items()}


def namespace_of(plane: Any, name: str) -> dict[str, Any] | None:
    status, data = plane.request("GET", f"/api/v1/namespaces/{name}")
    return data if status == 200 else None


@pytest.fixture
def previews(kube: Any) -> Any:
    """The preview namespaces a test makes are deleted afterwards, whatever happened."""
    made: list[str] = []
    yield made
    for name in made:
        kube.plane.request("DELETE", f"/api/v1/namespaces/{name}")


def setup_project(project: Any, kube: Any) -> None:
    project.write("compose.yaml", COMPOSE)
    project.write(".env.example", textwrap.dedent(TEMPLATE))
    project.write(".gitignore", ".env\n.env.*\n")
    project.profile("dev", textwrap.dedent(f"""\
        stack: demo
        compose:
          files: [compose.yaml]
          env_files: []
        services:
          web:
            ingress: {{hosts: [shop.example.com]}}
        kubernetes:
          namespace: {kube.namespace}
          context: stackctl-test
          preview:
            generate: [DB_PASSWORD]
        """))
    subprocess.run(["git", "init", "-q", "-b", BRANCH, str(project.root)], check=True)


def test_a_preview_has_its_own_namespace_secrets_and_host_and_never_touches_the_main_one(
        project: Any, cli: Any, kube: Any, previews: list[str]) -> None:
    setup_project(project, kube)
    plane = kube.plane
    ok(cli("secrets", "generate", "-p", "dev"))
    ok(cli("promote", "dev"))
    main = snapshot(plane, kube.namespace)
    main_env = secret_data(plane, kube.namespace, "demo-env")

    preview = f"{kube.namespace}-pr-1"
    previews.append(preview)
    res = ok(cli("promote", "dev", "--preview", "pr-1"))
    assert f"namespace {preview}" in res.stdout
    assert snapshot(plane, kube.namespace) == main, "the preview changed an object of the main namespace"

    # the Namespace says what it is
    ns = namespace_of(plane, preview)
    assert ns is not None
    labels, notes = ns["metadata"]["labels"], ns["metadata"]["annotations"]
    assert labels["stackctl.io/preview"] == "pr-1" and labels["stackctl.io/profile"] == "dev"
    assert labels["stackctl.io/branch"] == "feature-Login_page" and notes["stackctl.io/branch"] == BRANCH
    expires = dt.datetime.fromisoformat(notes["stackctl.io/expires"].replace("Z", "+00:00"))
    left = expires - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=71) < left <= dt.timedelta(hours=72)

    # its own generated DB_PASSWORD (and what embeds it); API_TOKEN is the profile's
    env = secret_data(plane, preview, "demo-env")
    assert env["API_TOKEN"] == main_env["API_TOKEN"]
    assert env["DB_PASSWORD"] != main_env["DB_PASSWORD"] and len(env["DB_PASSWORD"]) == 20
    assert env["web.DATABASE_URL"] == f"postgres://app:{env['DB_PASSWORD']}@db/app"
    assert env["DB_PASSWORD"] not in res.stdout + res.stderr

    # its Ingress host is not the main one's
    status, ing = plane.request("GET", api_path("ingresses", preview, "web"))
    assert status == 200 and [r["host"] for r in ing["spec"]["rules"]] == ["pr-1.shop.example.com"]
    status, ing = plane.request("GET", api_path("ingresses", kube.namespace, "web"))
    assert [r["host"] for r in ing["spec"]["rules"]] == ["shop.example.com"]
    assert "pr-1.shop.example.com" in res.stderr

    # every object of the preview is in its namespace and only there: the same names as the main one
    for kind in ("deployments", "services", "configmaps"):
        status, data = plane.request("GET", api_path(kind, preview))
        assert sorted(i["metadata"]["name"] for i in data["items"]) == sorted(
            k.split("/", 1)[1] for k in main if k.startswith(f"{kind}/"))

    # a re-promote changes nothing and keeps the generated value; its own history
    res = ok(cli("promote", "dev", "--preview", "pr-1"))
    assert "no changes" in res.stdout, res
    assert secret_data(plane, preview, "demo-env")["DB_PASSWORD"] == env["DB_PASSWORD"]
    assert [r["revision"] for r in json.loads(ok(cli("history", "dev", "--preview", "pr-1", "-o", "json")).stdout)
            ["revisions"]] == [1]
    assert len(history(cli)) == 1
    # --ttl sets a new expiry; the values stay
    ok(cli("promote", "dev", "--preview", "pr-1", "--ttl", "2h"))
    notes = namespace_of(plane, preview)["metadata"]["annotations"]
    left = dt.datetime.fromisoformat(notes["stackctl.io/expires"].replace("Z", "+00:00")) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=1) < left <= dt.timedelta(hours=2)
    assert secret_data(plane, preview, "demo-env")["DB_PASSWORD"] == env["DB_PASSWORD"]
    assert snapshot(plane, kube.namespace) == main
    # a rollback inside the preview to revision 1 (which differs from 2 by the expiry alone) keeps the
    # expiry the preview has now: nothing to change
    res = ok(cli("rollback", "dev", "--preview", "pr-1", "--yes"))
    assert f"namespace {preview}" in res.stdout and "no changes" in res.stdout, res
    revs = json.loads(ok(cli("history", "dev", "--preview", "pr-1", "-o", "json")).stdout)["revisions"]
    assert [r["revision"] for r in revs] == [1, 2]
    assert namespace_of(plane, preview)["metadata"]["annotations"]["stackctl.io/expires"] == notes[
        "stackctl.io/expires"]
    assert snapshot(plane, kube.namespace) == main and len(history(cli)) == 1

    # a second preview, then list
    other = f"{kube.namespace}-pr-2"
    previews.append(other)
    ok(cli("promote", "dev", "--preview", "pr-2", "--ttl", "1h"))
    assert secret_data(plane, other, "demo-env")["DB_PASSWORD"] not in (env["DB_PASSWORD"], main_env["DB_PASSWORD"])
    listed = {p["namespace"]: p for p in json.loads(ok(cli("previews", "list", "-o", "json")).stdout)["previews"]}
    assert {preview, other} <= set(listed) and kube.namespace not in listed
    assert listed[preview]["name"] == "pr-1" and listed[preview]["profile"] == "dev"
    assert listed[preview]["branch"] == BRANCH and listed[preview]["expired"] is False
    text = ok(cli("previews", "list")).stdout
    assert preview in text and env["DB_PASSWORD"] not in text

    # prune: never the main namespace; --expired only the expired ones
    res = cli("previews", "prune", kube.namespace, "--yes")
    assert res.exit_code == 2 and "not a preview" in res.stderr, res
    res = ok(cli("previews", "prune", "--expired", "--yes"))
    assert namespace_of(plane, preview) is not None and namespace_of(plane, other) is not None
    past = {"metadata": {"annotations": {"stackctl.io/expires": "2020-01-01T00:00:00Z"}}}
    status, _ = plane.request("PATCH", f"/api/v1/namespaces/{preview}", past,
                              content_type="application/merge-patch+json")
    assert status == 200
    listed = {p["namespace"]: p for p in json.loads(ok(cli("previews", "list", "-o", "json")).stdout)["previews"]}
    assert listed[preview]["expired"] is True and listed[other]["expired"] is False
    res = ok(cli("previews", "prune", "--expired", "--yes"))
    assert f"namespace {preview}" in res.stdout and other not in res.stdout
    assert namespace_of(plane, preview) is None  # prune waited until it was gone
    assert namespace_of(plane, other) is not None
    assert snapshot(plane, kube.namespace) == main

    # by name, after asking
    res = cli("previews", "prune", "pr-2", input="n\n")
    assert res.exit_code == 1 and namespace_of(plane, other) is not None
    ok(cli("previews", "prune", "pr-2", input="y\n"))
    assert namespace_of(plane, other) is None
    assert snapshot(plane, kube.namespace) == main
    assert len(history(cli)) == 1


def test_a_new_preview_after_prune_gets_new_values_and_a_taken_namespace_is_refused(
        project: Any, cli: Any, kube: Any, previews: list[str]) -> None:
    setup_project(project, kube)
    plane = kube.plane
    ok(cli("secrets", "generate", "-p", "dev"))
    # a namespace that is not a preview, named as one would be: never taken over
    taken = f"{kube.namespace}-prod"
    previews.append(taken)
    status, _ = plane.request("POST", "/api/v1/namespaces", {"metadata": {"name": taken}})
    assert status == 201
    res = cli("promote", "dev", "--preview", "prod")
    assert res.exit_code == 2 and "not preview 'prod'" in res.stderr, res
    assert plane.request("GET", api_path("deployments", taken))[1]["items"] == []
    res = cli("previews", "prune", taken, "--yes")
    assert res.exit_code == 2 and "not a preview" in res.stderr
    assert namespace_of(plane, taken) is not None

    preview = f"{kube.namespace}-pr-3"
    previews.append(preview)
    ok(cli("promote", "dev", "--preview", "pr-3"))
    first = secret_data(plane, preview, "demo-env")["DB_PASSWORD"]
    ok(cli("previews", "prune", "pr-3", "--yes"))
    assert namespace_of(plane, preview) is None
    ok(cli("promote", "dev", "--preview", "pr-3"))
    assert secret_data(plane, preview, "demo-env")["DB_PASSWORD"] != first  # prune removed the old values
