"""Release strategies on a real control plane (see conftest.py): blue-green.

A small stack: `web` (blue-green, a Service) and `worker` (a rolling Deployment). Every promote costs a
`docker compose config`, so one test walks through a whole blue-green life: first deploy, switch,
instant rollback, finalize, and a failed rollout that never moves traffic.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
from stackctl_k8s_helpers import ok, ready, revisions, write_profile

pytestmark = [pytest.mark.k8s]

COMPOSE = """
name: demo
services:
  web:
    image: stackctl-test/busybox:latest
    command: ["httpd", "-f", "-p", "8080"]
    ports: ["8080:8080"]
    environment:
      GREETING: {greeting}
{web_extra}
{worker}
"""

WORKER = """
  worker:
    image: stackctl-test/busybox:latest
    command: ["sleep", "3600"]
"""


def write(project: Any, namespace: str, *, greeting: str = "hello", worker: bool = True, web_extra: str = "",
          services: str = "web:\n  strategy: blue-green\n  replicas: 2\n") -> None:
    extra = textwrap.indent(textwrap.dedent(web_extra).strip("\n"), "    ") if web_extra else ""
    (project.root / "compose.yaml").write_text(COMPOSE.format(greeting=json.dumps(greeting), web_extra=extra,
                                                              worker=WORKER if worker else ""))
    write_profile(project, namespace, "services:\n" + textwrap.indent(services, "  "))


def live_colour(kube: Any) -> str:
    return str(kube.get("services", "web")["spec"]["selector"]["stackctl.io/colour"])


def config_hash(kube: Any, name: str) -> str:
    """The digest of the environment the pods run with (GREETING is in the service's ConfigMap)."""
    return str(kube.get("deployments", name)["spec"]["template"]["metadata"]["annotations"]["stackctl.io/config-hash"])


def test_blue_green_switch_rollback_finalize_and_failed_rollout(project, cli, kube) -> None:
    write(project, kube.namespace)
    ok(cli("promote", "dev"))
    # first promote: the rendered colour, nothing to switch
    assert ready(kube, "web-blue") and kube.get("deployments", "web-green") is None
    assert live_colour(kube) == "blue"
    assert kube.get("deployments", "web-blue")["spec"]["selector"]["matchLabels"]["stackctl.io/colour"] == "blue"
    blue_v1 = kube.get("deployments", "web-blue")["spec"]["template"]

    # a new version (and a removed service): green is deployed beside blue, then the Service switches
    write(project, kube.namespace, greeting="bonjour", worker=False)
    res = ok(cli("promote", "dev"))
    err = res.stderr
    assert "web: blue-green, deploying green beside blue" in err
    assert err.index("ready      Deployment/web-green") < err.index("Service/web: switched to green"), err
    assert live_colour(kube) == "green"
    assert ready(kube, "web-green") and ready(kube, "web-blue")  # the previous colour keeps running
    assert kube.get("deployments", "web-blue")["spec"]["template"] == blue_v1
    assert "pruned 1" in res.stdout  # prune still works: worker goes, web-blue is kept
    kube.wait_for(lambda: kube.get("deployments", "worker") is None, what="worker pruned")
    assert revisions(cli) == [(1, "superseded"), (2, "deployed")]

    # nothing changed: no switch, no revision
    res = ok(cli("promote", "dev"))
    assert "no changes" in res.stdout and live_colour(kube) == "green"

    # rollback: blue still runs revision 1, so only the Service switches back
    blue_version = kube.get("deployments", "web-blue")["metadata"]["resourceVersion"]
    res = ok(cli("rollback", "dev"))
    assert "rolled back to revision 1" in res.stdout
    assert live_colour(kube) == "blue"
    assert kube.get("deployments", "web-blue")["metadata"]["resourceVersion"] == blue_version  # not rolled
    assert "switched to blue" in res.stderr and "created    Deployment/web-blue" not in res.stderr
    assert ready(kube, "web-green")  # kept for a roll forward
    assert revisions(cli)[-1] == (3, "deployed")

    # promote the new version again, with --finalize: green is still ready, the switch is instant and
    # blue (the previous colour) is removed
    res = ok(cli("promote", "dev", "--finalize"))
    assert live_colour(kube) == "green"
    assert "pruned     Deployment/web-blue" in res.stderr
    kube.wait_for(lambda: kube.get("deployments", "web-blue") is None, what="web-blue finalized")

    # a new version that never becomes ready: blue is created, the Service stays on green
    write(project, kube.namespace, greeting="hola", worker=False, web_extra="""
        labels:
          sim.stackctl.io/state: unready
        """)
    res = cli("promote", "dev", "--timeout", "4")
    assert res.exit_code == 1, res
    assert "did not finish within 4s: Deployment/web-blue" in res.stderr
    assert "switched" not in res.stderr
    assert live_colour(kube) == "green" and ready(kube, "web-green")
    assert revisions(cli)[-1][1] == "failed"


def test_blue_green_keep_previous_false_removes_the_old_colour_at_once(project, cli, kube) -> None:
    services = "web:\n  strategy: blue-green\n  blue_green: {keep_previous: false}\n"
    write(project, kube.namespace, worker=False, services=services)
    ok(cli("promote", "dev"))
    write(project, kube.namespace, greeting="bonjour", worker=False, services=services)
    res = ok(cli("promote", "dev"))
    assert live_colour(kube) == "green" and ready(kube, "web-green")
    assert "pruned     Deployment/web-blue" in res.stderr


# -- canary ------------------------------------------------------------------------------------
CANARY = ("web:\n  strategy: canary\n  replicas: 4\n"
          "  canary: {steps: [{weight: 20, pause: 1s}, {weight: 50, pause: 1s}]}\n")


def test_canary_steps_then_the_stable_deployment_rolls(project, cli, kube) -> None:
    write(project, kube.namespace, worker=False, services=CANARY)
    ok(cli("promote", "dev"))  # first promote: no canary, nothing to compare with
    assert ready(kube, "web") and kube.get("deployments", "web-canary") is None
    assert kube.get("deployments", "web")["spec"]["selector"]["matchLabels"]["stackctl.io/track"] == "stable"
    assert "stackctl.io/track" not in kube.get("services", "web")["spec"]["selector"]  # both tracks
    v1 = config_hash(kube, "web")

    write(project, kube.namespace, greeting="bonjour", worker=False, services=CANARY)
    res = ok(cli("promote", "dev"))
    err = res.stderr
    # 20% of 4 stable pods: 1 canary beside them; 50%: 4 beside 4
    assert "Deployment/web-canary: step 1/2: 20% — 1 canary beside 4 stable pod(s), pausing 1s" in err
    assert "Deployment/web-canary: step 2/2: 50% — 4 canary beside 4 stable pod(s), pausing 1s" in err
    assert err.index("step 2/2") < err.index("configured Deployment/web\n") \
        < err.index("deleted    Deployment/web-canary")
    assert ready(kube, "web")
    assert config_hash(kube, "web") != v1  # the new environment
    kube.wait_for(lambda: kube.get("deployments", "web-canary") is None, what="canary removed")
    assert revisions(cli)[-1] == (2, "deployed")


def test_canary_that_never_gets_ready_is_removed_and_stable_is_untouched(project, cli, kube) -> None:
    write(project, kube.namespace, worker=False, services=CANARY)
    ok(cli("promote", "dev"))
    stable = kube.get("deployments", "web")["metadata"]["resourceVersion"]
    write(project, kube.namespace, greeting="hola", worker=False, services=CANARY, web_extra="""
        labels:
          sim.stackctl.io/state: unready
        """)
    res = cli("promote", "dev", "--timeout", "4")
    assert res.exit_code == 1, res
    assert "Deployment/web-canary" in res.stderr and "probe: running but failing its probes" not in res.stdout
    assert "the canary was deleted; Deployment/web still runs the previous version" in res.stderr
    kube.wait_for(lambda: kube.get("deployments", "web-canary") is None, what="canary removed")
    assert kube.get("deployments", "web")["metadata"]["resourceVersion"] == stable
    assert revisions(cli)[-1][1] == "failed"


def test_promote_abort_deletes_a_running_canary(project, cli, kube) -> None:
    import os
    import subprocess
    import sys

    steps = "web:\n  strategy: canary\n  replicas: 2\n  canary: {steps: [{weight: 50, pause: 60s}]}\n"
    write(project, kube.namespace, worker=False, services=steps)
    ok(cli("promote", "dev"))
    v1 = config_hash(kube, "web")
    write(project, kube.namespace, greeting="bonjour", worker=False, services=steps)
    proc = subprocess.Popen([sys.executable, "-m", "stackctl", "promote", "dev", "--timeout", "30"],
                            cwd=project.root, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        kube.wait_for(lambda: ready(kube, "web-canary"), timeout=30, what="the canary to be ready")
        res = ok(cli("promote", "dev", "--abort"))
        assert "aborted: deleted Deployment/web-canary" in res.stdout
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, (out, err)
    assert "web-canary: not ready during the pause (deleted)" in err
    assert "the canary Deployment/web-canary was deleted (promote --abort?) during step 1" in err
    assert "Deployment/web still runs the previous version" in err
    assert revisions(cli)[-1] == (2, "failed")
    assert config_hash(kube, "web") == v1  # stable still runs the previous version
    res = ok(cli("promote", "dev", "--abort"))
    assert "no canary of stack demo" in res.stdout


# -- run-job -----------------------------------------------------------------------------------
BACKUP = """
name: demo
services:
  backup:
    image: stackctl-test/busybox:latest
    command: ["true"]
{labels}
"""


def write_backup(project: Any, namespace: str, *, labels: str = "") -> None:
    (project.root / "compose.yaml").write_text(BACKUP.format(labels=labels))
    write_profile(project, namespace, """
        services:
          backup:
            schedule: "0 3 1 1 *"
            time_zone: Europe/Berlin
            concurrency_policy: Forbid
            job: {backoff_limit: 0, active_deadline: 600, ttl_after_finished: 3600, successful_history: 2,
                  failed_history: 1}
        """)


def test_run_job_starts_a_job_from_the_cron_job_and_waits(project, cli, kube) -> None:
    write_backup(project, kube.namespace)
    ok(cli("promote", "dev"))
    cron = kube.get("cronjobs", "backup")
    assert cron["spec"]["successfulJobsHistoryLimit"] == 2 and cron["spec"]["failedJobsHistoryLimit"] == 1
    assert cron["spec"]["timeZone"] == "Europe/Berlin" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    job_spec = cron["spec"]["jobTemplate"]["spec"]
    assert (job_spec["backoffLimit"], job_spec["activeDeadlineSeconds"], job_spec["ttlSecondsAfterFinished"]) == \
        (0, 600, 3600)
    res = ok(cli("run-job", "dev", "backup"))
    assert "from CronJob/backup) completed in" in res.stdout
    (job,) = kube.items("jobs")
    assert job["metadata"]["name"].startswith("backup-manual-")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    res = cli("run-job", "dev", "nightly")
    assert res.exit_code == 2 and "no CronJob 'nightly' of stack demo" in res.stderr and "backup" in res.stderr
    # the manual Job is not the stack's: a promote neither prunes it nor counts it
    res = ok(cli("promote", "dev"))
    assert "no changes" in res.stdout and len(kube.items("jobs")) == 1


def test_run_job_failure_is_diagnosed(project, cli, kube) -> None:
    write_backup(project, kube.namespace, labels="    labels:\n      sim.stackctl.io/state: fail\n")
    ok(cli("promote", "dev"))
    res = cli("run-job", "dev", "backup", "--timeout", "20")
    assert res.exit_code == 1, res
    assert "job: the Job failed: BackoffLimitExceeded" in res.stderr
    assert "from CronJob/backup) failed" in res.stderr


# -- sidecars, init containers, placement -----------------------------------------------------
PLACED = """web:
  replicas: {replicas}
  sidecars:
    - {{name: log-forwarder, image: stackctl-test/busybox:latest, command: [sleep, "3600"], env: {{TARGET: stdout}}}}
  init_containers:
    - {{name: prepare, image: stackctl-test/busybox:latest, command: ["true"]}}
  placement: {{anti_affinity: required, spread: [hostname]}}
"""


def test_sidecars_init_containers_and_anti_affinity(project, cli, kube) -> None:
    write(project, kube.namespace, worker=False, services=PLACED.format(replicas=3))
    ok(cli("promote", "dev"))
    assert ready(kube, "web")
    pods = kube.items("pods", "app.kubernetes.io/name=web")
    assert len(pods) == 3
    assert len({p["spec"]["nodeName"] for p in pods}) == 3  # one per node (the rig has three)
    inits = pods[0]["spec"]["initContainers"]
    assert [(c["name"], c.get("restartPolicy")) for c in inits] == [("log-forwarder", "Always"), ("prepare", None)]
    assert inits[0]["env"] == [{"name": "TARGET", "value": "stdout"}]
    # a fourth replica has no node left: diagnosed as a placement problem
    write(project, kube.namespace, worker=False, services=PLACED.format(replicas=4))
    res = cli("promote", "dev", "--timeout", "3")
    assert res.exit_code == 1, res
    assert "placement: cannot be scheduled: 0/3 nodes are available: 3 node(s) didn't match pod anti-affinity " \
           "rules" in res.stderr, res.stderr
