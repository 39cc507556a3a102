"""A database password rotated on a real node (issue 13, item 8): a plain rotation is refused, and
`secrets rotate DB_PASSWORD --in-place -p production` changes it inside the running PostgreSQL (a Job of
its image), stores it and promotes: the api logs in with the new value, the data is still there, and
no temporary Secret or Job is left behind.

The bundled example's db sets its password again at every start (`@reapplied` in .env.example); here
its copy starts like the official image instead — the entrypoint runs only on an empty data directory —
so the api works after the promote only if the Job really changed the password inside the database.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = [pytest.mark.k8s, pytest.mark.node, pytest.mark.slow]

ANCHOR = "    image: stackctl-example/shop-db:dev\n"
OFFICIAL_LIKE = ('    entrypoint: ["sh", "-c", "if [ -s \\"$$PGDATA/PG_VERSION\\" ]; then exec postgres; fi; '
                 'exec docker-entrypoint.sh postgres"]\n')


def test_database_password_rotates_in_place_and_the_api_keeps_working(shop: Any) -> None:
    compose = shop.root / "examples/shop/compose.yaml"
    text = compose.read_text()
    assert text.count(ANCHOR) == 1
    compose.write_text(text.replace(ANCHOR, ANCHOR + OFFICIAL_LIKE))
    template = shop.root / ".env.example"
    text = template.read_text()
    assert "# @secret password:32 @reapplied\n" in text
    template.write_text(text.replace("# @secret password:32 @reapplied\n", "# @secret password:32\n"))

    shop.promote("--timeout", "420")
    assert shop.get_json("/ready")["checks"]["database"] == "ok"
    created = json.loads(shop.in_cluster(
        "curl -fsS --max-time 5 -H 'Content-Type: application/json' "
        "-d '{\"name\": \"before rotation\", \"price_cents\": 100}' http://api:8000/items"))

    plain = shop.stackctl("secrets", "rotate", "DB_PASSWORD", "-p", "production", check=False)
    assert plain.returncode == 2 and "--in-place" in plain.stderr and "nothing was changed" in plain.stderr, plain
    old = shop.stackctl("secrets", "show", "DB_PASSWORD", "--reveal", "-p", "production").stdout.strip()

    res = shop.stackctl("secrets", "rotate", "DB_PASSWORD", "--in-place", "--yes", "--timeout", "420",
                        "-p", "production")
    new = shop.stackctl("secrets", "show", "DB_PASSWORD", "--reveal", "-p", "production").stdout.strip()
    assert new != old and old not in res.stdout + res.stderr and new not in res.stdout + res.stderr
    assert "is valid inside db" in res.stderr, res.stderr
    history = json.loads(shop.stackctl("secrets", "history", "DB_PASSWORD", "-p", "production", "-o", "json").stdout)
    assert [h["version"] for h in history] == [2, 1]

    # every serving api pod logs in with the new value (old pods drain after the rollout), the data survived
    several = "for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://api:8000/ready; " \
              "echo; done"
    shop.cluster.wait_for(lambda: set(shop.in_cluster(several).split()) == {"200"}, timeout=60, every=1,
                          what="only ready api pods answering")
    items = shop.get_json("/items")
    assert any(i["id"] == created["id"] for i in items["items"]), items
    # the api pods run with the new value; nothing of the rotation is left in the namespace
    env = shop.workload("deployments", "api")["spec"]["template"]["metadata"]["annotations"]
    assert env.get("stackctl.io/secret-hash")
    for path in (f"/api/v1/namespaces/{shop.namespace}/secrets", f"/apis/batch/v1/namespaces/{shop.namespace}/jobs"):
        left = shop.cluster.api("GET", f"{path}?labelSelector=stackctl.io/rotation")["items"]
        assert left == [], [x["metadata"]["name"] for x in left]
