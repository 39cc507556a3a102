"""Profile validation: every error names the file and the field, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackctl.errors import ProfileError
from stackctl.profile import find_project_root, load_profile
from stackctl.units import parse_bytes, parse_cpus


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    return tmp_path


def write(root: Path, body: str, name: str = "production") -> None:
    (root / "profiles" / f"{name}.yaml").write_text(body)


def error_of(root: Path, body: str, name: str = "production") -> str:
    write(root, body, name)
    with pytest.raises(ProfileError) as info:
        load_profile(root, name)
    assert info.value.exit_code == 2
    return str(info.value)


def test_minimal_profile_gets_documented_defaults(root: Path) -> None:
    write(root, "compose:\n  files: [compose.yaml]\n", "local")
    p = load_profile(root, "local")
    assert p.compose.files == ((root / "compose.yaml").resolve(),)
    assert p.env.file == (root / ".env").resolve()
    assert p.compose.env_files == (p.env.file,)
    assert p.env.template == (root / ".env.example").resolve()
    assert p.secrets.store == (root / ".stackctl/secrets/local.json").resolve()
    assert p.secrets.history == 10
    assert p.kubernetes is None


def test_non_local_profile_env_file_is_suffixed(root: Path) -> None:
    write(root, "compose:\n  files: [compose.yaml]\n")
    assert load_profile(root, "production").env.file.name == ".env.production"


def test_full_profile(root: Path) -> None:
    write(root, """
stack: shop
compose: {files: [compose.yaml], env_files: [a.env, b.env], profiles: [debug]}
env: {values: {LOG_LEVEL: warning, WORKERS: 4}}
secrets: {history: 5}
defaults: {resources: {limits: {cpus: 500m, memory: 256Mi}}}
services:
  web:
    replicas: 3
    strategy: canary
    resources: {limits: {cpus: "1", memory: 1Gi}, requests: {cpus: 0.25, memory: 128Mi}}
    ingress: {hosts: [shop.example.com], tls_secret: shop-tls}
kubernetes: {namespace: shop-prod, context: prod, protected: true}
""")
    p = load_profile(root, "production")
    assert p.stack == "shop"
    assert [f.name for f in p.compose.env_files] == ["a.env", "b.env"]
    assert p.env.values == {"LOG_LEVEL": "warning", "WORKERS": "4"}
    web = p.services["web"]
    assert web.replicas == 3 and web.strategy == "canary"
    assert web.resources.limits.cpus == 1.0 and web.resources.limits.memory == 2**30
    assert web.resources.requests.memory == 128 * 2**20
    assert web.ingress is not None and web.ingress.hosts == ("shop.example.com",)
    assert p.defaults.resources.limits.cpus == 0.5
    assert p.kubernetes is not None and p.kubernetes.protected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("compose: {files: [compose.yaml]}\nkubernetes: {namespace: Prod_NS}\n",
         "profiles/production.yaml: kubernetes.namespace: must be a DNS-1123 label"),
        ("compose: {files: [compose.yaml]}\nkubernetes: {context: x}\n",
         "profiles/production.yaml: kubernetes.namespace: is required"),
        ("compose: {files: [compose.yaml]}\nkubernetes: {namespace: p, protected: true}\n",
         "profiles/production.yaml: kubernetes.context: a protected profile must name its kubeconfig context"),
        ("compose: {files: [missing.yaml]}\n",
         "profiles/production.yaml: compose.files[0]: file not found: missing.yaml"),
        ("compose: {files: []}\n", "profiles/production.yaml: compose.files: must list at least one entry"),
        ("{}\n", "profiles/production.yaml: compose: is required"),
        ("compose: {files: [compose.yaml]}\nservices: {web: {replicas: -1}}\n",
         "profiles/production.yaml: services.web.replicas: must be ≥ 0, got -1"),
        ("compose: {files: [compose.yaml]}\nservices: {web: {replicas: three}}\n",
         "profiles/production.yaml: services.web.replicas: must be an integer, got a string ('three')"),
        ("compose: {files: [compose.yaml]}\nservices: {web: {strategy: bluegreen}}\n",
         "profiles/production.yaml: services.web.strategy: must be one of rolling, recreate, blue-green, canary"),
        ("compose: {files: [compose.yaml]}\nservices: {web: {replica: 2}}\n",
         "profiles/production.yaml: services.web.replica: unknown field (expected one of: replicas,"),
        ("compose: {files: [compose.yaml]}\nkubernets: {}\n",
         "profiles/production.yaml: kubernets: unknown field"),
        ("compose: {files: [compose.yaml]}\nservices: {web: {resources: {limits: {memory: lots}}}}\n",
         "profiles/production.yaml: services.web.resources.limits.memory: must be a memory size like 512Mi"),
        (("compose: {files: [compose.yaml]}\nservices: {web: {resources: {limits: {memory: 1Gi}, "
          "requests: {memory: 2Gi}}}}\n"),
         "profiles/production.yaml: services.web.resources: requests.memory must not exceed limits.memory"),
        ("compose: {files: [compose.yaml]}\nservices: {web: {ingress: {hosts: [Shop.Example.com]}}}\n",
         "profiles/production.yaml: services.web.ingress.hosts[0]: must be a DNS host name"),
        ("compose: {files: [compose.yaml]}\nenv: {values: {BAD-=x}}\n",
         "profiles/production.yaml: env.values.BAD-=x: must be a variable name"),
        ("compose: {files: [compose.yaml]}\nsecrets: {history: 0}\n",
         "profiles/production.yaml: secrets.history: must be ≥ 1, got 0"),
        ("compose: [compose.yaml]\n", "profiles/production.yaml: compose: must be a mapping, got a list"),
        ("- a\n", "profiles/production.yaml: must be a mapping at the top level, got a list"),
        ("compose: {files: [compose.yaml]\n", "profiles/production.yaml: line 2, column 1: invalid YAML"),
        ("stack: My_Stack\ncompose: {files: [compose.yaml]}\n", "profiles/production.yaml: stack: must be a DNS-1123"),
    ],
)
def test_errors_are_located(root: Path, body: str, expected: str) -> None:
    assert error_of(root, body).startswith(expected)


def test_missing_profile_lists_known_ones(root: Path) -> None:
    write(root, "compose: {files: [compose.yaml]}\n", "local")
    with pytest.raises(ProfileError,
                       match=r"profiles/staging.yaml: profile 'staging' not found \(known profiles: local\)"):
        load_profile(root, "staging")


def test_bad_profile_name(root: Path) -> None:
    with pytest.raises(ProfileError, match="invalid profile name"):
        load_profile(root, "../etc")


def test_project_root_found_upwards(root: Path) -> None:
    deep = root / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project_root(deep) == root.resolve()


@pytest.mark.parametrize(("text", "cores"), [("500m", 0.5), ("0.25", 0.25), (2, 2.0), ("1", 1.0)])
def test_cpus(text: object, cores: float) -> None:
    assert parse_cpus(text) == cores


@pytest.mark.parametrize(("text", "size"), [("512Mi", 512 * 2**20), ("1Gi", 2**30), ("500M", 500 * 10**6),
                                            (1024, 1024), ("1.5Gi", int(1.5 * 2**30))])
def test_bytes(text: object, size: int) -> None:
    assert parse_bytes(text) == size


@pytest.mark.parametrize("bad", ["0", "-1Gi", "1GB", "", True])
def test_bad_bytes(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_bytes(bad)
