"""Every Compose service field is modelled or reported by name, and docs/kubernetes.md says what each one
becomes (issue 12: "docs/kubernetes.md states what each Compose field becomes")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stackctl.compose import loader
from stackctl.compose.loader import to_model
from stackctl.kubernetes.render import report

DOCS = Path(__file__).resolve().parents[2] / "docs" / "kubernetes.md"

# The service and deploy properties of the Compose specification's JSON schema as the Compose CLI of this
# machine embeds it (Compose 2.40.3, compose-go v2.9.1: `definitions.service.properties`,
# `definitions.deployment.properties`). A newer Compose adds fields: add them here, to the loader (modelled or
# named) and to the table in docs/kubernetes.md.
SERVICE_FIELDS = frozenset({
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup", "cgroup_parent", "command",
    "configs", "container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period",
    "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset", "credential_spec", "depends_on", "deploy", "develop",
    "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname", "entrypoint", "env_file",
    "environment", "expose", "extends", "external_links", "extra_hosts", "gpus", "group_add", "healthcheck",
    "hostname", "image", "init", "ipc", "isolation", "label_file", "labels", "links", "logging", "mac_address",
    "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit", "models", "network_mode", "networks",
    "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform", "ports", "post_start", "pre_stop",
    "privileged", "profiles", "provider", "pull_policy", "pull_refresh_after", "read_only", "restart", "runtime",
    "scale", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period", "stop_signal", "storage_opt",
    "sysctls", "tmpfs", "tty", "ulimits", "use_api_socket", "user", "userns_mode", "uts", "volumes", "volumes_from",
    "working_dir",
})
DEPLOY_FIELDS = frozenset({"endpoint_mode", "labels", "mode", "placement", "replicas", "resources", "restart_policy",
                           "rollback_config", "update_config"})


def _documented() -> list[str]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Every Compose service field\n", 1)[1].split("\n## ", 1)[0]
    names: list[str] = []
    for line in section.splitlines():
        if line.startswith("| `"):
            names += re.findall(r"`([a-z_.]+)`", line.split(" | ")[0])
    return names


def test_docs_table_lists_every_field_once() -> None:
    names = _documented()
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert set(names) == (SERVICE_FIELDS - {"deploy"}) | {f"deploy.{k}" for k in DEPLOY_FIELDS}


@pytest.mark.parametrize("name", sorted(SERVICE_FIELDS - loader._SERVICE_FIELDS))
def test_every_unmodelled_field_is_a_warning_by_name(name: str) -> None:
    stack = to_model({"services": {"a": {"image": "x", name: "1"}}})
    assert f"services.a.{name}" in [w.field for w in stack.warnings]


@pytest.mark.parametrize("name", sorted(DEPLOY_FIELDS - loader._DEPLOY_FIELDS))
def test_every_unmodelled_deploy_field_is_a_warning_by_name(name: str) -> None:
    stack = to_model({"services": {"a": {"image": "x", "deploy": {name: "1"}}}})
    assert f"services.a.deploy.{name}" in [w.field for w in stack.warnings]


def test_every_modelled_field_is_in_the_schema_and_the_report() -> None:
    assert loader._SERVICE_FIELDS <= SERVICE_FIELDS
    assert loader._DEPLOY_FIELDS <= DEPLOY_FIELDS
    assert set(report.FIELDS) <= (SERVICE_FIELDS - {"deploy"}) | {f"deploy.{k}" for k in DEPLOY_FIELDS}
