"""`stackctl render gitops` through the CLI: the layout, determinism and idempotence, the errors, no
plaintext anywhere in the tree, and a rotation that changes one profile's Secret file and checksum.

The real `sops` decrypts the output in tests/delivery/test_gitops_*.py."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackctl.profile import load_profile
from stackctl.secrets import secret_values

pytestmark = pytest.mark.docker

AGE = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
COMPOSE = """
services:
  web:
    image: example/web:1
    environment:
      DATABASE_URL: postgres://app:${DB_PASSWORD}@db/app
      API_TOKEN: ${API_TOKEN}
      LOG_LEVEL: ${LOG_LEVEL:-info}
    ports: ["8080:80"]
  db:
    image: postgres:17
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD:?}
    volumes: [pg:/var/lib/postgresql/data]
volumes:
  pg: {}
"""
TEMPLATE = """
# @secret password:24
DB_PASSWORD=
# @secret hex:16
API_TOKEN=
LOG_LEVEL=info
"""
PROFILE = """
compose: {{files: [compose.yaml]}}
env: {{values: {{LOG_LEVEL: {level}}}}}
services:
  web: {{replicas: {replicas}}}
kubernetes: {{namespace: {namespace}}}
gitops:
  secrets: {{provider: sops, recipients: [{age}]}}
"""


class CountingSops:
    """The real `sealing.sops_encrypt`, counted: an unchanged Secret must not be encrypted again."""

    def __init__(self, real: Callable[..., str]) -> None:
        self.real = real
        self.calls: list[str] = []

    def __call__(self, secret: Mapping[str, Any], recipients: Sequence[str], **kwargs: Any) -> str:
        self.calls.append(secret["metadata"]["name"])
        return self.real(secret, recipients, **kwargs)


@pytest.fixture
def counting_sops(monkeypatch: pytest.MonkeyPatch) -> CountingSops:
    from stackctl.secrets import sealing

    counting = CountingSops(sealing.sops_encrypt)
    monkeypatch.setattr(sealing, "sops_encrypt", counting)
    return counting


@pytest.fixture
def shop(project: Any, cli: Any, counting_sops: CountingSops) -> Iterator[Any]:
    project.write("compose.yaml", COMPOSE)
    project.write(".env.example", TEMPLATE)
    project.profile("local", "compose: {files: [compose.yaml]}\n")
    project.profile("production", PROFILE.format(level="warn", replicas=3, namespace="shop-prod", age=AGE))
    project.profile("staging", PROFILE.format(level="debug", replicas=1, namespace="shop-staging", age=AGE))
    for profile in ("production", "staging"):
        assert cli("secrets", "generate", "-p", profile).exit_code == 0
    yield project


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def stamps(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_layout_has_a_base_and_one_overlay_per_kubernetes_profile(shop: Any, cli: Any) -> None:
    res = cli("render", "gitops")
    assert res.exit_code == 0, res.stderr
    out = shop.root / "deploy/gitops"
    files = tree(out)
    assert sorted({f.split("/")[0] + ("/" + f.split("/")[1] if f.startswith("overlays/") else "")
                   for f in files}) == [".stackctl-gitops.json", "base", "overlays/production", "overlays/staging"]
    base = yaml.safe_load(files["base/kustomization.yaml"])
    assert base["kind"] == "Kustomization"
    assert all(f"base/{name}" in files for name in base["resources"])
    overlay = yaml.safe_load(files["overlays/production/kustomization.yaml"])
    assert overlay["resources"][0] == "../../base"
    assert "secrets/web-env.sops.yaml" in overlay["resources"] or any(
        r.startswith("secrets/") and r.endswith(".sops.yaml") for r in overlay["resources"])
    for patch in overlay["patches"]:
        assert f"overlays/production/{patch['path']}" in files
    # replicas differ: in neither the base nor the other overlay, one op each
    deployment = next(f for f in files if f.startswith("base/deployment-"))
    assert "replicas" not in yaml.safe_load(files[deployment])["spec"]
    ops = yaml.safe_load(files[f"overlays/production/patches/{deployment.split('/')[1]}"])
    assert {"op": "add", "path": "/spec/replicas", "value": 3} in ops
    assert "profiles local, production, staging" not in res.stderr
    assert "(profiles production, staging)" in res.stderr


def test_second_run_writes_nothing_and_encrypts_nothing(shop: Any, cli: Any, counting_sops: CountingSops) -> None:
    assert cli("render", "gitops").exit_code == 0
    out = shop.root / "deploy/gitops"
    before, times, calls = tree(out), stamps(out), len(counting_sops.calls)
    assert calls > 0
    res = cli("render", "gitops")
    assert res.exit_code == 0, res.stderr
    assert "nothing changed" in res.stderr
    assert tree(out) == before and stamps(out) == times
    assert len(counting_sops.calls) == calls  # an unchanged Secret is not re-encrypted (no random diff)


def test_output_is_deterministic_apart_from_the_encrypted_files(shop: Any, cli: Any, tmp_path: Path) -> None:
    assert cli("render", "gitops", "--out", str(tmp_path / "a")).exit_code == 0
    assert cli("render", "gitops", "--out", str(tmp_path / "b")).exit_code == 0
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert a.keys() == b.keys()
    differ = sorted(f for f in a if a[f] != b[f])
    assert differ and all(f.endswith(".sops.yaml") or f == ".stackctl-gitops.json" for f in differ)


def test_no_secret_value_in_plaintext_anywhere(shop: Any, cli: Any) -> None:
    assert cli("render", "gitops").exit_code == 0
    texts = tree(shop.root / "deploy/gitops")
    for profile in ("production", "staging"):
        for name, value in secret_values(load_profile(shop.root, profile)).items():
            for form in (value, base64.b64encode(value.encode()).decode()):
                found = [f for f, data in texts.items() if form.encode() in data]
                assert not found, f"{profile} {name} in plaintext in {found}"


def test_rotation_changes_the_secret_file_and_checksum_of_that_profile_only(shop: Any, cli: Any) -> None:
    assert cli("render", "gitops").exit_code == 0
    out = shop.root / "deploy/gitops"
    before = tree(out)
    assert cli("secrets", "rotate", "API_TOKEN", "-p", "production").exit_code == 0
    res = cli("render", "gitops")
    assert res.exit_code == 0, res.stderr
    after = tree(out)
    changed = sorted(f for f in after if after[f] != before.get(f))
    assert changed, "nothing changed after a rotation"
    assert all(f.startswith("overlays/production/") or f == ".stackctl-gitops.json" for f in changed), changed
    assert any(f.startswith("overlays/production/secrets/") for f in changed)
    # the checksum the workload rolls on: the one `render kubernetes --include-secrets` (promote) puts
    rendered = yaml.safe_load_all(cli("render", "kubernetes", "-p", "production", "--include-secrets").stdout)
    web = next(o for o in rendered if o and o["kind"] == "Deployment")
    checksum = web["spec"]["template"]["metadata"]["annotations"]["stackctl.io/secret-hash"]
    patch = f"overlays/production/patches/deployment-{web['metadata']['name']}.yaml"
    assert patch in changed
    assert checksum.encode() in after[patch] and checksum.encode() not in before[patch]


def test_profiles_left_out_are_removed_and_user_files_kept(shop: Any, cli: Any) -> None:
    assert cli("render", "gitops").exit_code == 0
    out = shop.root / "deploy/gitops"
    (out / "README.md").write_text("ours\n")
    res = cli("render", "gitops", "-p", "production")
    assert res.exit_code == 0, res.stderr
    assert not (out / "overlays/staging").exists()
    assert (out / "README.md").read_text() == "ours\n"
    marker = json.loads((out / ".stackctl-gitops.json").read_text())
    assert "README.md" not in marker["files"]
    assert all((out / f).is_file() for f in marker["files"])


def test_a_profile_without_a_provider_is_an_error_and_nothing_is_written(shop: Any, cli: Any) -> None:
    shop.profile("staging", "compose: {files: [compose.yaml]}\nkubernetes: {namespace: shop-staging}\n")
    res = cli("render", "gitops")
    assert res.exit_code == 2
    assert "Error: profiles/staging.yaml: gitops.secrets: is required: the stack has Secrets" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (shop.root / "deploy").exists()


def test_a_missing_store_is_an_error_and_nothing_is_written(shop: Any, cli: Any) -> None:
    (shop.root / ".stackctl/secrets/staging.json").unlink()
    res = cli("render", "gitops")
    assert res.exit_code == 1
    assert "Error: .stackctl/secrets/staging.json: the secrets store does not exist" in res.stderr
    assert "stackctl secrets generate -p staging" in res.stderr
    assert not (shop.root / "deploy").exists()


def test_a_bad_gitops_section_names_file_and_field(shop: Any, cli: Any) -> None:
    shop.profile("staging", "compose: {files: [compose.yaml]}\nkubernetes: {namespace: s}\n"
                            "gitops: {secrets: {provider: sops, recipients: [not-a-key]}}\n")
    res = cli("render", "gitops")
    assert res.exit_code == 2
    assert "Error: profiles/staging.yaml: gitops.secrets.recipients[0]: must be an age recipient" in res.stderr


def test_a_directory_stackctl_did_not_write_is_refused(shop: Any, cli: Any) -> None:
    shop.write("deploy/gitops/mine.yaml", "x: 1\n")
    res = cli("render", "gitops")
    assert res.exit_code == 2
    assert "--out deploy/gitops: is not empty and was not written by `stackctl render gitops`" in res.stderr
    assert sorted(p.name for p in (shop.root / "deploy/gitops").iterdir()) == ["mine.yaml"]


def test_external_secrets_need_no_key_and_hold_no_value(shop: Any, cli: Any) -> None:
    shop.profile("staging", "compose: {files: [compose.yaml]}\nkubernetes: {namespace: shop-staging}\n"
                            "gitops:\n  secrets: {provider: external-secrets, store: vault, "
                            "store_kind: ClusterSecretStore, key: 'shop/{profile}/{key}'}\n")
    res = cli("render", "gitops", "-p", "staging", env={"STACKCTL_AGE_KEY": "", "XDG_CONFIG_HOME": "/nonexistent"})
    assert res.exit_code == 0, res.stderr
    out = shop.root / "deploy/gitops/overlays/staging/secrets"
    (file,) = out.iterdir()
    ext = yaml.safe_load(file.read_text())
    assert ext["kind"] == "ExternalSecret"
    assert ext["spec"]["secretStoreRef"] == {"name": "vault", "kind": "ClusterSecretStore"}
    assert ext["spec"]["target"]["name"] == ext["metadata"]["name"]
    refs = {d["secretKey"]: d["remoteRef"]["key"] for d in ext["spec"]["data"]}
    assert refs["API_TOKEN"] == "shop/staging/API_TOKEN"
    assert "stackctl.io/values" not in json.dumps(ext)


def test_argocd_and_flux_point_at_the_overlay(shop: Any, cli: Any) -> None:
    shop.profile("production", PROFILE.format(level="warn", replicas=3, namespace="shop-prod", age=AGE)
                 + "  argocd: {repo: https://git.example.com/shop.git, revision: main}\n"
                   "  flux: {repo: https://git.example.com/shop.git}\n")
    assert cli("render", "gitops").exit_code == 0
    clusters = shop.root / "deploy/gitops/clusters"
    assert sorted(p.name for p in clusters.iterdir()) == ["production"]
    app = yaml.safe_load((clusters / "production/argocd-application.yaml").read_text())
    assert app["spec"]["source"] == {"repoURL": "https://git.example.com/shop.git", "targetRevision": "main",
                                     "path": "deploy/gitops/overlays/production"}
    assert app["spec"]["destination"]["namespace"] == "shop-prod"
    kustomization = yaml.safe_load((clusters / "production/flux-kustomization.yaml").read_text())
    assert kustomization["spec"]["path"] == "./deploy/gitops/overlays/production"
    assert kustomization["spec"]["decryption"] == {"provider": "sops", "secretRef": {"name": "sops-age"}}


def _certificate(path: Path) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealed-secret")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_sealed_secrets_are_kept_until_the_secret_or_scope_changes(shop: Any, cli: Any) -> None:
    _certificate(shop.root / "keys/cert.pem")
    sealed = PROFILE.format(level="warn", replicas=3, namespace="shop-prod", age=AGE).replace(
        f"{{provider: sops, recipients: [{AGE}]}}", "{provider: sealed-secrets, cert: keys/cert.pem}")
    shop.profile("production", sealed)
    assert cli("render", "gitops", "-p", "production").exit_code == 0
    out = shop.root / "deploy/gitops/overlays/production/secrets"
    (file,) = out.iterdir()
    first = file.read_bytes()
    assert yaml.safe_load(first)["kind"] == "SealedSecret"
    assert cli("render", "gitops", "-p", "production").exit_code == 0
    assert file.read_bytes() == first
    shop.profile("production", sealed.replace("cert: keys/cert.pem}", "cert: keys/cert.pem, scope: namespace-wide}"))
    assert cli("render", "gitops", "-p", "production").exit_code == 0
    assert file.read_bytes() != first
    texts = tree(shop.root / "deploy/gitops")
    for value in secret_values(load_profile(shop.root, "production")).values():
        assert not [f for f, data in texts.items() if value.encode() in data]


def test_a_missing_certificate_is_an_error_naming_the_field(shop: Any, cli: Any) -> None:
    shop.profile("production", PROFILE.format(level="warn", replicas=3, namespace="shop-prod", age=AGE).replace(
        f"{{provider: sops, recipients: [{AGE}]}}", "{provider: sealed-secrets, cert: keys/missing.pem}"))
    res = cli("render", "gitops")
    assert res.exit_code == 2
    assert "Error: profiles/production.yaml: gitops.secrets.cert: cannot read the sealed-secrets certificate " \
           "keys/missing.pem" in res.stderr
    assert not (shop.root / "deploy").exists()


def test_json_output_lists_what_was_written(shop: Any, cli: Any) -> None:
    first = json.loads(cli("render", "gitops", "-o", "json").stdout)
    assert first["profiles"] == ["production", "staging"] and first["removed"] == [] and first["unchanged"] == 0
    assert "overlays/production/kustomization.yaml" in first["written"]
    again = json.loads(cli("render", "gitops", "-o", "json").stdout)
    assert again == {**first, "written": [], "unchanged": len(first["written"])}


def test_a_stack_without_secrets_needs_no_store_and_no_provider(project: Any, cli: Any) -> None:
    project.write("compose.yaml", "services:\n  web:\n    image: example/web:1\n    environment: {MODE: x}\n")
    project.write(".env.example", "MODE=x\n")
    project.profile("production", "compose: {files: [compose.yaml]}\nkubernetes: {namespace: web}\n"
                                  f"gitops: {{secrets: {{provider: sops, recipients: [{AGE}]}}}}\n")
    project.profile("staging", "compose: {files: [compose.yaml]}\nkubernetes: {namespace: web-staging}\n")
    res = cli("render", "gitops")
    assert res.exit_code == 0, res.stderr
    assert not list((project.root / "deploy/gitops").rglob("secrets"))
