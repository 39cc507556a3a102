"""A workload whose containers have no readiness probe is Ready the moment they run: a process that
exits at once can make it look rolled out for an instant. `unsettled` holds such pods back until
they have run `SETTLE` seconds without a restart; probed containers count as the probe says."""

from __future__ import annotations

import datetime as dt
from typing import Any

from stackctl.kubernetes.deploy.watch import SETTLE, unsettled

NOW = 1_800_000_000.0


def workload(probed: bool) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "web", "image": "x"}
    if probed:
        container["readinessProbe"] = {"tcpSocket": {"port": 80}}
    return {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [container]}}}}


def pod(started_ago: float | None, restarts: int = 0) -> dict[str, Any]:
    state: dict[str, Any] = {"waiting": {"reason": "CrashLoopBackOff"}}
    if started_ago is not None:
        at = dt.datetime.fromtimestamp(NOW - started_ago, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        state = {"running": {"startedAt": at}}
    return {"status": {"containerStatuses": [{"name": "web", "restartCount": restarts, "state": state}]}}


def test_a_probed_container_counts_at_once() -> None:
    assert unsettled(workload(probed=True), [pod(0.0)], NOW) is None


def test_an_unprobed_container_that_just_started_waits_out_the_rest_of_settle() -> None:
    assert unsettled(workload(probed=False), [pod(0.0)], NOW) == SETTLE
    assert unsettled(workload(probed=False), [pod(1.0)], NOW) == SETTLE - 1.0
    assert unsettled(workload(probed=False), [pod(SETTLE + 1)], NOW) is None


def test_a_restarted_or_stopped_unprobed_container_never_counts() -> None:
    assert unsettled(workload(probed=False), [pod(60.0, restarts=1)], NOW) == SETTLE
    assert unsettled(workload(probed=False), [pod(None)], NOW) == SETTLE
    assert unsettled(workload(probed=False), [pod(60.0), pod(1.0)], NOW) == SETTLE - 1.0  # the latest counts
