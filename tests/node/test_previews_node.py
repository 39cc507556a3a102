"""A preview environment on the real node: `promote production --preview pr-1` with the profile's
DB_PASSWORD marked per-environment. The database is initialised with the preview's own value and the
api logs in with it (its /ready checks the database), so Ready pods prove the generated Secret really
reached both; `previews prune` then removes the namespace and waits until it is gone.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest

pytestmark = [pytest.mark.k8s, pytest.mark.node, pytest.mark.slow]

PREVIEW = "pr-1"


def test_a_preview_runs_with_its_own_generated_database_password(shop: Any) -> None:
    profile = shop.root / "profiles/production.yaml"
    text = profile.read_text()
    assert "  namespace: shop-prod\n" in text
    profile.write_text(text.replace("  namespace: shop-prod\n",
                                    "  namespace: shop-prod\n  preview: {generate: [DB_PASSWORD]}\n"))
    preview = dataclasses.replace(shop, namespace=f"{shop.namespace}-{PREVIEW}")
    try:
        res = shop.promote("--preview", PREVIEW, "--timeout", "420")
        assert f"namespace {preview.namespace}" in res.stdout, res.stdout
        stored = shop.stackctl("secrets", "show", "DB_PASSWORD", "--reveal", "-p", "production").stdout.strip()
        secrets = shop.cluster.api("GET", f"/api/v1/namespaces/{preview.namespace}/secrets")["items"]
        values = [base64.b64decode(s["data"]["DB_PASSWORD"]).decode() for s in secrets
                  if "DB_PASSWORD" in (s.get("data") or {}) and s["type"] == "Opaque"]
        assert values and stored not in values and len(set(values)) == 1, "the preview's own value"
        assert values[0] not in res.stdout + res.stderr
        assert shop.cluster.get(f"/api/v1/namespaces/{shop.namespace}") is None  # the main one was never made

        assert preview.get_json("/ready")["checks"]["database"] == "ok"
        ready = [p for p in preview.api_pods()
                 if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
        assert ready

        res = shop.stackctl("previews", "prune", PREVIEW, "--yes", "--context", "production")
        assert f"namespace {preview.namespace}" in res.stdout
        assert shop.cluster.get(f"/api/v1/namespaces/{preview.namespace}") is None
    finally:
        shop.cluster.plane.request("DELETE", f"/api/v1/namespaces/{preview.namespace}")
        shop.cluster.wait_for(lambda: shop.cluster.get(f"/api/v1/namespaces/{preview.namespace}") is None,
                              timeout=180, what=f"namespace {preview.namespace} deleted", every=1)
