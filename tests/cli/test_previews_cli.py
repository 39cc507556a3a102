"""`promote --preview` / `--ttl`, `history --preview`, `previews prune` on the command line: bad input
is refused before anything is rendered or a cluster is asked, exit 2, the option named, no traceback."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def shop(project: Any) -> Any:
    project.write("compose.yaml", "services:\n  web:\n    image: busybox\n")
    project.profile("staging", "compose: {files: [compose.yaml]}\nkubernetes: {namespace: shop-staging}\n")
    return project


def refused(res: Any, *words: str) -> None:
    assert res.exit_code == 2, res
    assert "Traceback" not in res.stderr
    for word in words:
        assert word in res.stderr, res.stderr


@pytest.mark.parametrize("command", [("promote", "staging"), ("history", "staging"), ("rollback", "staging"),
                                     ("promote", "staging", "--abort")])
def test_a_preview_name_that_is_not_a_dns_label(shop: Any, cli: Any, command: tuple[str, ...]) -> None:
    refused(cli(*command, "--preview", "PR_42"), "Error: --preview: preview name 'PR_42' must be a DNS-1123 label")


def test_a_preview_namespace_longer_than_63_characters(shop: Any, cli: Any) -> None:
    res = cli("promote", "staging", "--preview", "a" * 51)
    refused(res, f"preview namespace 'shop-staging-{'a' * 51}' would be 64 characters",
            "use a name of at most 50 characters")


def test_ttl_needs_a_preview_and_a_duration(shop: Any, cli: Any) -> None:
    refused(cli("promote", "staging", "--ttl", "24h"), "Error: --ttl: --ttl is for a preview environment",
            "add --preview NAME")
    refused(cli("promote", "staging", "--preview", "pr-1", "--ttl", "3 days"), "Error: --ttl: must be a duration")
    refused(cli("promote", "staging", "--preview", "pr-1", "--ttl", "0s"), "Error: --ttl: must be more than 0s")


def test_a_profile_without_kubernetes_section(project: Any, cli: Any) -> None:
    project.write("compose.yaml", "services:\n  web:\n    image: busybox\n")
    project.profile("local", "compose: {files: [compose.yaml]}\n")
    refused(cli("promote", "local", "--preview", "pr-1"), "profiles/local.yaml: kubernetes")


def test_profile_preview_errors_name_the_field(shop: Any, cli: Any) -> None:
    shop.profile("staging", "compose: {files: [compose.yaml]}\n"
                            "kubernetes: {namespace: shop-staging, preview: {ttl: soon}}\n")
    refused(cli("promote", "staging", "--preview", "pr-1"), "profiles/staging.yaml: kubernetes.preview.ttl")


def test_prune_needs_names_or_expired_and_a_context(shop: Any, cli: Any, tmp_path: Any) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    env = {"KUBECONFIG": str(kubeconfig)}
    refused(cli("previews", "prune", "--yes", env=env), "no kubeconfig context")
    refused(cli("previews", "list", "--context", "nope", env=env), "no context 'nope' in the kubeconfig")


def test_previews_help_lists_its_commands(cli: Any) -> None:
    res = cli("previews", "--help")
    assert res.exit_code == 0 and "list" in res.stdout and "prune" in res.stdout
    res = cli("promote", "--help")
    assert "--preview" in res.stdout and "--ttl" in res.stdout
