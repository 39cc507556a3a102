"""The profile's `gitops:` section: what it accepts, and errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackctl.errors import ProfileError
from stackctl.profile import load_profile

AGE = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
HEAD = "compose:\n  files: [compose.yaml]\nkubernetes:\n  namespace: shop-prod\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    return tmp_path


def load_profile_of(root: Path, gitops: str) -> Any:
    """The Profile (Any: the tests reach into the optional sections without a None check each)."""
    (root / "profiles" / "production.yaml").write_text(HEAD + gitops)
    return load_profile(root, "production")


def error_of(root: Path, gitops: str) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile_of(root, gitops)
    assert info.value.exit_code == 2
    return str(info.value)


def test_no_section_is_none(root: Path) -> None:
    profile = load_profile_of(root, "")
    assert profile.gitops is None


def test_sops_recipients_sorted_and_deduplicated(root: Path) -> None:
    other = "age1" + "q" * 58
    profile = load_profile_of(root, f"gitops:\n  secrets: {{provider: sops, recipients: [{AGE}, {other}, {AGE}]}}\n")
    assert profile.gitops.secrets.provider == "sops"
    assert profile.gitops.secrets.recipients == tuple(sorted({AGE, other}))


def test_sealed_secrets_cert_is_resolved_against_the_project(root: Path) -> None:
    profile = load_profile_of(root, "gitops:\n  secrets: {provider: sealed-secrets, cert: keys/cert.pem, "
                                    "scope: namespace-wide}\n")
    assert profile.gitops.secrets.cert == (root / "keys/cert.pem").resolve()
    assert profile.gitops.secrets.cert_display == "keys/cert.pem"
    assert profile.gitops.secrets.scope == "namespace-wide"


def test_external_secrets_defaults(root: Path) -> None:
    profile = load_profile_of(root, "gitops:\n  secrets: {provider: external-secrets, store: vault}\n"
                                    "  argocd: {repo: https://example.com/r.git}\n"
                                    "  flux: {repo: https://example.com/r.git, branch: prod}\n")
    secrets = profile.gitops.secrets
    assert (secrets.store, secrets.store_kind, secrets.key, secrets.refresh_interval) == \
        ("vault", "SecretStore", "{namespace}/{secret}/{key}", "1h")
    assert profile.gitops.argocd.revision == "HEAD" and profile.gitops.argocd.namespace == "argocd"
    assert profile.gitops.flux.branch == "prod" and profile.gitops.flux.decryption_secret == "sops-age"


@pytest.mark.parametrize(("body", "expected"), [
    ("gitops: []\n", "profiles/production.yaml: gitops: must be a mapping"),
    ("gitops:\n  secret: {}\n", "profiles/production.yaml: gitops.secret: unknown field"),
    ("gitops:\n  secrets: {}\n", "profiles/production.yaml: gitops.secrets.provider: is required"),
    ("gitops:\n  secrets: {provider: vault}\n",
     "profiles/production.yaml: gitops.secrets.provider: must be one of sops, sealed-secrets, external-secrets"),
    ("gitops:\n  secrets: {provider: sops}\n", "profiles/production.yaml: gitops.secrets.recipients: is required"),
    ("gitops:\n  secrets: {provider: sops, recipients: [age1nope]}\n",
     "profiles/production.yaml: gitops.secrets.recipients[0]: must be an age recipient"),
    (f"gitops:\n  secrets: {{provider: sops, recipients: [{AGE}], cert: x.pem}}\n",
     "profiles/production.yaml: gitops.secrets.cert: unknown field"),
    ("gitops:\n  secrets: {provider: sealed-secrets}\n", "profiles/production.yaml: gitops.secrets.cert: is required"),
    ("gitops:\n  secrets: {provider: sealed-secrets, cert: c.pem, scope: wide}\n",
     "profiles/production.yaml: gitops.secrets.scope: must be one of strict, namespace-wide, cluster-wide"),
    ("gitops:\n  secrets: {provider: external-secrets}\n",
     "profiles/production.yaml: gitops.secrets.store: is required"),
    ("gitops:\n  secrets: {provider: external-secrets, store: v, key: '{name}/{key}'}\n",
     "profiles/production.yaml: gitops.secrets.key: unknown placeholder {name}"),
    ("gitops:\n  secrets: {provider: external-secrets, store: v, store_kind: Vault}\n",
     "profiles/production.yaml: gitops.secrets.store_kind: must be one of SecretStore, ClusterSecretStore"),
    ("gitops:\n  secrets: {provider: external-secrets, store: v, refresh_interval: soon}\n",
     "profiles/production.yaml: gitops.secrets.refresh_interval: must be a duration"),
    ("gitops:\n  argocd: {revision: main}\n", "profiles/production.yaml: gitops.argocd.repo: is required"),
    ("gitops:\n  flux: {repo: r, path: ../elsewhere}\n",
     "profiles/production.yaml: gitops.flux.path: must be a path inside the repository"),
])
def test_errors_name_file_and_field(root: Path, body: str, expected: str) -> None:
    assert expected in error_of(root, body)
