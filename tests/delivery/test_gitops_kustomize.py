"""`stackctl render gitops` checked by the real tools (issue 17): `kustomize build overlays/<p>` equals
`stackctl render kubernetes -p <p>` object for object (keyed by apiVersion/kind/namespace/name, whole
objects), each Secret being its provider's object; the real `sops` decrypts a SOPS file back into the
rendered Secret; ExternalSecret, SealedSecret, Application, Kustomization and GitRepository fit their CRDs.

Shapes: the bundled example (examples/shop: SOPS, two profiles on different Compose files, registry and
tag, ingress host, env values, replicas, resources; Argo CD and Flux), a web/worker stack with a
profile-only service (Compose profile `debug` in dev only; ExternalSecret), and a stack of Compose
secrets/configs files and a bind-mounted directory (SealedSecret)."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.docker  # `docker compose config` resolves the projects (no engine needed)

REPO = Path(__file__).resolve().parents[2]
Key = tuple[str, str, str, str]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def keyed(docs: Any) -> dict[Key, dict[str, Any]]:
    out: dict[Key, dict[str, Any]] = {}
    for doc in docs:
        if not doc:
            continue
        meta = doc["metadata"]
        key = (doc["apiVersion"], doc["kind"], meta.get("namespace", ""), meta["name"])
        assert key not in out, f"{key} twice"
        out[key] = doc
    return out


def build(kustomize: Path, overlay: Path) -> dict[Key, dict[str, Any]]:
    proc = subprocess.run([str(kustomize), "build", str(overlay)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return keyed(yaml.safe_load_all(proc.stdout))


def rendered(cli: Callable[..., Any], profile: str, *, values: bool) -> dict[Key, dict[str, Any]]:
    """`render kubernetes -p PROFILE` (`--include-secrets` with `values`). Without values, render leaves
    each Secret out and names it on stderr: it stands here as a stub with its name and namespace."""
    res = cli("render", "kubernetes", "-p", profile, *(["--include-secrets"] if values else []))
    assert res.exit_code == 0, res.stderr
    objects = keyed(yaml.safe_load_all(res.stdout))
    left_out = re.search(r"left out Secret (\S+(?:, \S+)*) \(", res.stderr)
    if not values and left_out:
        namespace = next(k[3] for k in objects if k[1] == "Namespace")
        for name in left_out.group(1).split(", "):
            objects[("v1", "Secret", namespace, name)] = {"stub": True}
    return objects


def secret_of(provider_obj: dict[str, Any]) -> tuple[str, str]:
    """(namespace, name) of the Secret a provider object stands for."""
    meta = provider_obj["metadata"]
    if provider_obj["kind"] == "ExternalSecret":
        return meta["namespace"], provider_obj["spec"]["target"]["name"]
    return meta["namespace"], meta["name"]


def assert_build_is_render(built: dict[Key, dict[str, Any]], render: dict[Key, dict[str, Any]],
                           provider_kind: str) -> list[dict[str, Any]]:
    """Every non-Secret object identical; each rendered Secret present as exactly one provider object
    (returned); nothing else."""
    plain_render = {k: v for k, v in render.items() if k[1] != "Secret"}
    secrets = {(k[2], k[3]) for k in render if k[1] == "Secret"}
    plain_built = {k: v for k, v in built.items() if k[1] not in ("Secret", provider_kind)}
    assert sorted(plain_built) == sorted(plain_render)
    for key, obj in plain_render.items():
        assert plain_built[key] == obj, f"{key} differs"
    providers = [v for k, v in built.items() if k[1] in ("Secret", provider_kind)]
    assert sorted(secret_of(p) for p in providers) == sorted(secrets)
    return providers


def age_key(age_keygen: Path, directory: Path) -> tuple[Path, str]:
    key = directory / "age.key"
    proc = subprocess.run([str(age_keygen), "-o", str(key)], capture_output=True, text=True, timeout=30,
                          check=True)
    public = next(line.split(": ", 1)[1] for line in (proc.stderr + proc.stdout).splitlines()
                  if line.startswith("Public key: "))
    return key, public.strip()


def self_signed_cert(directory: Path) -> Path:
    """A certificate like the sealed-secrets controller's (RSA 4096, self-signed)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealed-secret")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650)).sign(key, hashes.SHA256()))
    path = directory / "keys" / "sealed-secrets.pem"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    private = directory.parent / "controller-key.pem"  # outside the project: only the test's "controller"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                          serialization.NoEncryption()))
    private.chmod(0o600)
    return path


# ---------------------------------------------------------------------------------------------
# The shapes
# ---------------------------------------------------------------------------------------------
SHOP_PRODUCTION = """
stack: shop
compose: {{files: [compose.yaml, compose.prod.yaml]}}
env: {{template: .env.example}}
defaults:
  resources:
    limits: {{cpus: 500m, memory: 256Mi}}
    requests: {{cpus: 100m, memory: 64Mi}}
services:
  api:
    replicas: 3
    ingress: {{hosts: [shop.example.com]}}
kubernetes:
  namespace: shop-prod
  registry: registry.example.com/shop
  image_tag: "1.4.0"
gitops:
  secrets: {{provider: sops, recipients: [{age}]}}
  argocd: {{repo: https://git.example.com/shop.git, revision: main}}
  flux: {{repo: https://git.example.com/shop.git, branch: main}}
"""
SHOP_STAGING = """
stack: shop
compose: {{files: [compose.yaml]}}
env:
  template: .env.example
  values: {{LOG_LEVEL: debug, APP_ENV: staging}}
defaults:
  resources:
    limits: {{cpus: 250m, memory: 128Mi}}
services:
  api:
    replicas: 1
    ingress: {{hosts: [staging.shop.example.com]}}
kubernetes:
  namespace: shop-staging
  registry: registry.example.com/shop
  image_tag: "1.4.0-rc1"
gitops:
  secrets: {{provider: sops, recipients: [{age}]}}
  flux: {{repo: https://git.example.com/shop.git, branch: staging}}
"""

WORKER_COMPOSE = """
name: app
services:
  web:
    image: example/web:2.1
    ports: ["8080:8080"]
    environment:
      API_KEY: ${API_KEY:?}
      FEATURE_FLAGS: ${FEATURE_FLAGS:-none}
      WORKERS: ${WORKERS:-2}
  worker:
    image: example/worker:2.1
    command: ["worker", "--queue", "jobs"]
    environment:
      REDIS_URL: redis://redis:6379/0
      CONCURRENCY: ${CONCURRENCY:-4}
  redis:
    image: redis:7
    volumes: [redisdata:/data]
  debug:
    image: busybox:1.37
    command: ["sleep", "infinity"]
    profiles: [debug]
volumes:
  redisdata: {}
"""
WORKER_TEMPLATE = "# @secret hex:16\nAPI_KEY=\nFEATURE_FLAGS=none\nWORKERS=2\nCONCURRENCY=4\n"
WORKER_PROFILE = """
compose: {{files: [compose.yaml], profiles: [{compose_profiles}]}}
env: {{values: {{FEATURE_FLAGS: {flags}, CONCURRENCY: "{concurrency}"}}}}
services:
  web: {{replicas: {replicas}, ingress: {{hosts: [{host}]}}}}
  worker: {{replicas: {replicas}}}
kubernetes: {{namespace: {namespace}, image_tag: "{tag}"}}
gitops:
  secrets:
    provider: external-secrets
    store: vault
    store_kind: ClusterSecretStore
    key: "app/{{profile}}/{{secret}}"
    property: "{{key}}"
"""

FILES_COMPOSE = """
name: files
services:
  app:
    image: example/app:3
    secrets: [tls_key]
    configs: [app_conf]
    volumes: ["./conf.d:/etc/app/conf.d:ro"]
    environment:
      SESSION_SECRET: ${SESSION_SECRET:?}
secrets:
  tls_key: {file: ./tls.key}
configs:
  app_conf: {file: ./app.conf}
"""
FILES_PROFILE = """
compose: {{files: [compose.yaml]}}
services:
  app: {{replicas: {replicas}}}
kubernetes: {{namespace: {namespace}}}
gitops:
  secrets: {{provider: sealed-secrets, cert: keys/sealed-secrets.pem, scope: {scope}}}
"""


@pytest.fixture
def shop(project: Any, cli: Callable[..., Any], age_keygen: Path, tmp_path: Path) -> dict[str, Any]:
    src = REPO / "examples" / "shop"
    for item in src.iterdir():
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, project.root / item.name)
    res = cli("init")
    assert res.exit_code == 0, res.stderr
    key, public = age_key(age_keygen, tmp_path)
    project.profile("production", SHOP_PRODUCTION.format(age=public))
    project.profile("staging", SHOP_STAGING.format(age=public))
    for profile in ("production", "staging"):
        assert cli("secrets", "generate", "-p", profile).exit_code == 0
    return {"root": project.root, "key": key, "profiles": ("production", "staging"), "values": True,
            "provider": "Secret"}


@pytest.fixture
def workers(project: Any, cli: Callable[..., Any]) -> dict[str, Any]:
    project.write("compose.yaml", WORKER_COMPOSE)
    project.write(".env.example", WORKER_TEMPLATE)
    project.profile("local", "compose: {files: [compose.yaml]}\n")
    project.profile("dev", WORKER_PROFILE.format(compose_profiles="debug", flags="all", concurrency=1, replicas=1,
                                                 host="dev.app.example.com", namespace="app-dev", tag="2.2-dev"))
    project.profile("prod", WORKER_PROFILE.format(compose_profiles="", flags="none", concurrency=16, replicas=4,
                                                  host="app.example.com", namespace="app", tag="2.1"))
    return {"root": project.root, "profiles": ("dev", "prod"), "values": False, "provider": "ExternalSecret"}


@pytest.fixture
def files(project: Any, cli: Callable[..., Any], tmp_path: Path) -> dict[str, Any]:
    project.write("compose.yaml", FILES_COMPOSE)
    project.write(".env.example", "# @secret password:32\nSESSION_SECRET=\n")
    project.write("tls.key", "-----BEGIN PRIVATE KEY-----\nnot-a-real-key-but-secret-4711\n-----END PRIVATE KEY-----\n")
    project.write("app.conf", "listen = 8080\n")
    project.write("conf.d/10-limits.conf", "max_body = 10m\n")
    project.write("conf.d/20-cache.conf", "cache = on\n")
    self_signed_cert(project.root)
    project.profile("blue", FILES_PROFILE.format(replicas=2, namespace="files-blue", scope="strict"))
    project.profile("green", FILES_PROFILE.format(replicas=5, namespace="files-green", scope="namespace-wide"))
    for profile in ("blue", "green"):
        assert cli("secrets", "generate", "-p", profile).exit_code == 0
    return {"root": project.root, "profiles": ("blue", "green"), "values": True, "provider": "SealedSecret"}


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["shop", "workers", "files"])
def test_kustomize_build_of_each_overlay_is_the_render(shape: str, request: pytest.FixtureRequest,
                                                       cli: Callable[..., Any], kustomize: Path) -> None:
    case = request.getfixturevalue(shape)
    res = cli("render", "gitops")
    assert res.exit_code == 0, res.stderr
    out = case["root"] / "deploy" / "gitops"
    assert sorted(p.name for p in (out / "overlays").iterdir()) == sorted(case["profiles"])
    assert (out / "base" / "kustomization.yaml").is_file()
    for profile in case["profiles"]:
        built = build(kustomize, out / "overlays" / profile)
        render = rendered(cli, profile, values=case["values"])
        providers = assert_build_is_render(built, render, case["provider"])
        assert all(p["kind"] == case["provider"] for p in providers)
        if case["provider"] == "Secret":  # SOPS: the encrypted document, never a value
            assert all("sops" in p and set(p["data"]) == set(render[("v1", "Secret", p["metadata"]["namespace"],
                                                                     p["metadata"]["name"])]["data"])
                       for p in providers)


def test_profile_only_service_is_in_its_overlay_only(workers: dict[str, Any], cli: Callable[..., Any],
                                                     kustomize: Path) -> None:
    assert cli("render", "gitops").exit_code == 0
    out = workers["root"] / "deploy" / "gitops"
    dev = build(kustomize, out / "overlays" / "dev")
    prod = build(kustomize, out / "overlays" / "prod")
    assert any(k[1] == "Deployment" and k[3] == "debug" for k in dev)
    assert not any(k[3] == "debug" for k in prod)
    assert not list((out / "base").glob("*debug*"))


def test_sops_files_decrypt_to_the_rendered_secrets(shop: dict[str, Any], cli: Callable[..., Any],
                                                    sops: Path) -> None:
    assert cli("render", "gitops").exit_code == 0
    out = shop["root"] / "deploy" / "gitops"
    for profile in shop["profiles"]:
        render = rendered(cli, profile, values=True)
        files = sorted((out / "overlays" / profile / "secrets").glob("*.sops.yaml"))
        assert files
        for file in files:
            proc = subprocess.run([str(sops), "--decrypt", str(file)], capture_output=True, text=True, timeout=60,
                                  check=False, env={**os.environ, "SOPS_AGE_KEY_FILE": str(shop["key"])})
            assert proc.returncode == 0, proc.stderr
            secret = yaml.safe_load(proc.stdout)
            key = ("v1", "Secret", secret["metadata"]["namespace"], secret["metadata"]["name"])
            assert secret == render[key]


def test_rotation_changes_one_profiles_secret_and_checksum(shop: dict[str, Any], cli: Callable[..., Any],
                                                          kustomize: Path, sops: Path) -> None:
    """`secrets rotate` then `render gitops`: the encrypted Secret and the pod checksum change in that
    profile's build (Argo CD / Flux roll its pods); the other profile's build is unchanged."""
    assert cli("render", "gitops").exit_code == 0
    out = shop["root"] / "deploy" / "gitops"
    before = {p: build(kustomize, out / "overlays" / p) for p in shop["profiles"]}
    assert cli("secrets", "rotate", "JWT_SECRET", "-p", "production").exit_code == 0
    assert cli("render", "gitops").exit_code == 0
    after = {p: build(kustomize, out / "overlays" / p) for p in shop["profiles"]}
    assert after["staging"] == before["staging"]
    changed = sorted(k for k in after["production"] if after["production"][k] != before["production"].get(k))
    assert ("v1", "Secret", "shop-prod", "shop-env") in changed or any(k[1] == "Secret" for k in changed)
    assert ("apps/v1", "Deployment", "shop-prod", "api") in changed
    render = rendered(cli, "production", values=True)
    assert_build_is_render(after["production"], render, "Secret")


def test_provider_objects_fit_their_crds(shop: dict[str, Any], cli: Callable[..., Any],
                                         crd_validate: Callable[[Any], list[str]]) -> None:
    assert cli("render", "gitops").exit_code == 0
    out = shop["root"] / "deploy" / "gitops"
    objs = [yaml.safe_load(p.read_text()) for p in sorted((out / "clusters").rglob("*.yaml"))]
    assert sorted(o["kind"] for o in objs) == ["Application", "GitRepository", "GitRepository", "Kustomization",
                                               "Kustomization"]
    for obj in objs:
        assert crd_validate(obj) == [], obj


def test_kubeseal_unseals_the_sealed_secrets_into_the_rendered_ones(files: dict[str, Any], cli: Callable[..., Any],
                                                                   kubeseal: Path, tmp_path: Path) -> None:
    """What the controller would create from each SealedSecret is the Secret `render kubernetes
    --include-secrets` renders (values, type, labels, annotations), for both scopes of the shape."""
    assert cli("render", "gitops").exit_code == 0
    out = files["root"] / "deploy" / "gitops"
    key = files["root"].parent / "controller-key.pem"
    for profile in files["profiles"]:
        render = rendered(cli, profile, values=True)
        sealed = sorted((out / "overlays" / profile / "secrets").glob("sealedsecret-*.yaml"))
        assert len(sealed) == sum(1 for k in render if k[1] == "Secret")
        for file in sealed:
            proc = subprocess.run([str(kubeseal), "--recovery-unseal", "--recovery-private-key", str(key), "-o",
                                   "yaml"], input=file.read_text(), capture_output=True, text=True, timeout=60,
                                  check=False, cwd=tmp_path,
                                  env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
                                       "KUBECONFIG": str(tmp_path / "no-kubeconfig")})
            assert proc.returncode == 0, proc.stderr
            secret = yaml.safe_load(proc.stdout)
            meta = secret["metadata"]
            expected = render[("v1", "Secret", meta["namespace"], meta["name"])]
            assert secret.get("type") == expected["type"]
            assert secret["data"] == expected["data"]
            assert meta.get("labels") == expected["metadata"].get("labels")
            for name, value in (expected["metadata"].get("annotations") or {}).items():
                assert meta["annotations"][name] == value


@pytest.mark.parametrize("shape", ["workers", "files"])
def test_external_and_sealed_secrets_fit_their_crds(shape: str, request: pytest.FixtureRequest,
                                                    cli: Callable[..., Any],
                                                    crd_validate: Callable[[Any], list[str]]) -> None:
    case = request.getfixturevalue(shape)
    assert cli("render", "gitops").exit_code == 0
    out = case["root"] / "deploy" / "gitops"
    objs = [yaml.safe_load(p.read_text()) for p in sorted((out / "overlays").rglob("secrets/*.yaml"))]
    assert objs and all(o["kind"] == case["provider"] for o in objs)
    for obj in objs:
        assert crd_validate(obj) == [], obj
