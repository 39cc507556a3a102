"""The delivery tools themselves (scripts/delivery-tools.sh): each binary runs, reports the version pinned in
scripts/delivery-versions.env and does its job on a tiny input; every CRD file parses, and `crd_validate`
accepts a minimal valid object of each kind and rejects one with an unknown field or a wrong type (so the
fixture the GitOps tests lean on can fail)."""

from __future__ import annotations

import base64
import copy
import datetime
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[2]
Validate = Callable[[Any], list[str]]


def _versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (REPO / "scripts" / "delivery-versions.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            out[key.strip()] = value.strip()
    return out


VERSIONS = _versions()


def run(*args: str | Path, input: str | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, input=input,
                          env={**os.environ, **(env or {})}, timeout=120)
    assert proc.returncode == 0, f"{args[0]} {' '.join(map(str, args[1:]))} failed: {proc.stderr}"
    return proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------
# The binaries
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fixture", "args", "expect"), [
    ("kustomize", ["version"], VERSIONS["KUSTOMIZE_VERSION"]),
    ("age", ["--version"], VERSIONS["AGE_VERSION"]),
    ("age_keygen", ["--version"], VERSIONS["AGE_VERSION"]),
    ("sops", ["--disable-version-check", "--version"], f"sops {VERSIONS['SOPS_VERSION'].lstrip('v')}"),
    ("helm", ["version", "--short"], VERSIONS["HELM_VERSION"]),
    ("kubeseal", ["--version"], f"kubeseal version: {VERSIONS['SEALED_SECRETS_VERSION']}"),
])
def test_binary_reports_the_pinned_version(fixture: str, args: list[str], expect: str,
                                           request: pytest.FixtureRequest, isolated_env: Path) -> None:
    binary = request.getfixturevalue(fixture)
    out = run(binary, *args)
    assert expect in out.splitlines()[0], f"{binary} {' '.join(args)} said {out!r}, expected {expect!r}"


def test_delivery_tools_lists_every_tool(delivery_tools: dict[str, Path]) -> None:
    assert sorted(delivery_tools) == ["age", "age-keygen", "crds", "helm", "kubeseal", "kustomize", "sops"]
    for name, path in delivery_tools.items():
        if name == "crds":
            assert path.is_dir()
        else:
            assert path.is_file() and os.access(path, os.X_OK), path


def test_kustomize_builds_an_overlay(kustomize: Path, tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n"
                                               "data: {A: '1'}\n")
    (tmp_path / "base" / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (tmp_path / "prod").mkdir()
    (tmp_path / "prod" / "kustomization.yaml").write_text("resources: [../base]\nnamespace: shop-prod\n")
    objs = list(yaml.safe_load_all(run(kustomize, "build", tmp_path / "prod")))
    assert objs == [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "shop-prod"},
                     "data": {"A": "1"}}]


def test_age_and_sops_round_trip(age: Path, age_keygen: Path, sops: Path, tmp_path: Path,
                                 isolated_env: Path) -> None:
    key = tmp_path / "key.txt"
    run(age_keygen, "-o", key)
    recipient = run(age_keygen, "-y", key).strip()
    assert recipient.startswith("age1")
    (tmp_path / "plain").write_text("s3cret\n")
    run(age, "-r", recipient, "-o", tmp_path / "plain.age", tmp_path / "plain")
    assert b"s3cret" not in (tmp_path / "plain.age").read_bytes()
    assert run(age, "-d", "-i", key, tmp_path / "plain.age") == "s3cret\n"

    secret = tmp_path / "secret.yaml"
    secret.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {PASSWORD: s3cret}\n")
    encrypted = run(sops, "--disable-version-check", "encrypt", "--age", recipient,
                    "--encrypted-regex", "^(data|stringData)$", secret)
    assert "s3cret" not in encrypted and "ENC[AES256_GCM," in encrypted
    (tmp_path / "secret.enc.yaml").write_text(encrypted)
    decrypted = run(sops, "--disable-version-check", "decrypt", tmp_path / "secret.enc.yaml",
                    env={"SOPS_AGE_KEY_FILE": str(key)})
    assert yaml.safe_load(decrypted)["stringData"] == {"PASSWORD": "s3cret"}


def test_helm_templates_a_chart(helm: Path, tmp_path: Path, isolated_env: Path) -> None:
    chart = tmp_path / "app"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: app\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("replicas: 1\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}}\n"
        "data: {replicas: {{ .Values.replicas | quote }}}\n")
    out = run(helm, "template", "shop", chart, "--set", "replicas=3")
    objs = [o for o in yaml.safe_load_all(out) if o]
    assert objs == [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shop"},
                     "data": {"replicas": "3"}}]


def _self_signed_cert(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealed-secret")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_kubeseal_seals_offline_into_what_the_crd_accepts(kubeseal: Path, crd_validate: Validate,
                                                          tmp_path: Path, isolated_env: Path) -> None:
    cert = tmp_path / "cert.pem"
    _self_signed_cert(cert)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"},
              "data": {"PASSWORD": base64.b64encode(b"s3cret").decode()}}
    out = run(kubeseal, "--cert", cert, "--format", "yaml", input=yaml.safe_dump(secret))
    sealed = yaml.safe_load(out)
    assert sealed["kind"] == "SealedSecret" and "s3cret" not in out
    assert set(sealed["spec"]["encryptedData"]) == {"PASSWORD"}
    assert crd_validate(sealed) == []


# ---------------------------------------------------------------------------------------------
# The CRDs and crd_validate
# ---------------------------------------------------------------------------------------------

VALID: dict[str, dict[str, Any]] = {
    "ExternalSecret": {
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "db", "namespace": "shop"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
                 "target": {"name": "db"}, "data": [{"secretKey": "PASSWORD", "remoteRef": {"key": "shop/db"}}]},
    },
    "SecretStore": {
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {"server": "https://vault.example", "path": "secret", "version": "v2",
                                        "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}},
    },
    "ClusterSecretStore": {
        "apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore", "metadata": {"name": "fake"},
        "spec": {"provider": {"fake": {"data": [{"key": "shop/db", "value": "x"}]}}},
    },
    "SealedSecret": {
        "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": {"name": "db", "namespace": "shop"},
        "spec": {"encryptedData": {"PASSWORD": "AgBy3i4OJSWK+PiTySYZZA=="},
                 "template": {"metadata": {"name": "db", "namespace": "shop"}, "type": "Opaque"}},
    },
    "Application": {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "shop", "namespace": "argocd"},
        "spec": {"project": "default",
                 "source": {"repoURL": "https://git.example/shop.git", "path": "deploy/overlays/production",
                            "targetRevision": "main"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop-prod"},
                 "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}},
    },
    "Kustomization": {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "shop", "namespace": "flux-system"},
        "spec": {"interval": "10m", "path": "./deploy/overlays/production", "prune": True,
                 "sourceRef": {"kind": "GitRepository", "name": "shop"}, "targetNamespace": "shop-prod"},
    },
    "GitRepository": {
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "shop", "namespace": "flux-system"},
        "spec": {"interval": "1m", "url": "https://git.example/shop.git", "ref": {"branch": "main"}},
    },
}

# kind -> (path to a mapping, a field that mapping does not know)
UNKNOWN: dict[str, tuple[tuple[str, ...], str]] = {
    "ExternalSecret": (("spec", "secretStoreRef"), "namespace"),
    "SecretStore": (("spec",), "replicas"),
    "ClusterSecretStore": (("spec", "provider", "fake"), "values"),
    "SealedSecret": (("spec", "template"), "stringData"),  # a Secret has it, the template does not
    "Application": (("spec", "source"), "overlay"),
    "Kustomization": (("spec",), "namespace"),
    "GitRepository": (("spec", "ref"), "tag_name"),
}

# kind -> (path of a field, a value of the wrong type)
WRONG_TYPE: dict[str, tuple[tuple[str, ...], Any]] = {
    "ExternalSecret": (("spec", "data"), {"secretKey": "PASSWORD"}),
    "SecretStore": (("spec", "provider", "vault", "server"), 8200),
    "ClusterSecretStore": (("spec", "provider", "fake", "data"), "shop/db=x"),
    "SealedSecret": (("spec", "encryptedData"), "AgBy3i4OJSWK"),
    "Application": (("spec", "syncPolicy", "automated", "prune"), "yes"),
    "Kustomization": (("spec", "prune"), "true"),
    "GitRepository": (("spec", "interval"), 60),
}


def _with(obj: dict[str, Any], path: tuple[str, ...], key: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    node = out
    for part in path:
        node = node[part]
    node[key] = value
    return out


def test_every_crd_file_parses(delivery_crds: Path) -> None:
    kinds = []
    files = sorted(delivery_crds.glob("*.yaml"))
    assert len(files) == 7, files
    for file in files:
        docs = [d for d in yaml.load_all(file.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d]
        assert docs and all(d["kind"] == "CustomResourceDefinition" for d in docs), file
        for doc in docs:
            assert all("openAPIV3Schema" in v["schema"] for v in doc["spec"]["versions"]), file
            kinds.append(doc["spec"]["names"]["kind"])
    assert sorted(kinds) == sorted(VALID)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_crd_validate_accepts_a_minimal_object(kind: str, crd_validate: Validate) -> None:
    assert crd_validate(VALID[kind]) == []


@pytest.mark.parametrize("kind", sorted(UNKNOWN))
def test_crd_validate_reports_an_unknown_field(kind: str, crd_validate: Validate) -> None:
    path, field = UNKNOWN[kind]
    errors = crd_validate(_with(VALID[kind], path, field, "x"))
    where = ".".join((*path, field))
    assert errors == [f"{where}: unknown field (not in the CRD's schema; the API server would prune it)"]


@pytest.mark.parametrize("kind", sorted(WRONG_TYPE))
def test_crd_validate_reports_a_wrong_type(kind: str, crd_validate: Validate) -> None:
    path, value = WRONG_TYPE[kind]
    errors = crd_validate(_with(VALID[kind], path[:-1], path[-1], value))
    assert len(errors) == 1 and errors[0].startswith(".".join(path) + ": "), errors
    assert "is not of type" in errors[0], errors


def test_crd_validate_reports_version_kind_and_metadata(crd_validate: Validate) -> None:
    app = VALID["Application"]
    assert crd_validate({**app, "apiVersion": "argoproj.io/v1"}) == [
        "apiVersion: argoproj.io/v1: the CRD of Application has no version v1 (it has v1alpha1)"]
    errors = crd_validate({**app, "kind": "ApplicationSet"})
    assert len(errors) == 1 and errors[0].startswith("kind: no CRD for ApplicationSet in group argoproj.io"), errors
    assert crd_validate({**app, "metadata": {"name": "shop", "lables": {"a": "b"}}}) == [
        "metadata.lables: unknown field (not in the CRD's schema; the API server would prune it)"]
    assert crd_validate({**app, "metadata": {"namespace": "argocd"}}) == ["metadata.name: required"]
    missing = copy.deepcopy(app)
    del missing["spec"]["project"]
    assert crd_validate(missing) == ["spec: 'project' is a required property"]
