"""Which objects a rollback applies (history.rollback_objects): a good revision's Jobs completed when
it was deployed and are not replayed unless asked."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from stackctl.kubernetes.deploy import history as kh


def revision(status: str, objects: list[dict[str, Any]]) -> kh.Revision:
    data = base64.b64encode(gzip.compress(json.dumps(objects).encode())).decode()
    return kh.Revision(number=3, status=status, created="", description="", profile="p", context="c", version="",
                       summary={}, raw={"data": {"objects": data}})


OBJECTS = [{"kind": "Deployment", "metadata": {"name": "api"}}, {"kind": "Job", "metadata": {"name": "migrate-1"}},
           {"kind": "Service", "metadata": {"name": "api"}}]


def test_a_good_revisions_jobs_are_left_out() -> None:
    for status in ("deployed", "superseded"):
        objects, skipped = kh.rollback_objects(revision(status, OBJECTS))
        assert [o["kind"] for o in objects] == ["Deployment", "Service"]
        assert skipped == ["migrate-1"]


def test_rerun_jobs_applies_everything() -> None:
    objects, skipped = kh.rollback_objects(revision("superseded", OBJECTS), rerun_jobs=True)
    assert objects == OBJECTS and skipped == []
