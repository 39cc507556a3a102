"""The delivery tier: stackctl's GitOps, Helm and sealed-secret outputs checked by the real tools that
consume them (issue 17). kustomize, helm, sops, age, age-keygen and kubeseal are built from the Go module
proxy, and the CRDs (ExternalSecret, SecretStore, ClusterSecretStore, SealedSecret, Argo CD Application,
Flux Kustomization and GitRepository) taken from their modules, by scripts/delivery-tools.sh into a
versioned cache outside the repository (scripts/setup.sh --with-k8s fills it, so `make test` and CI find
it warm). No Docker engine, no cluster.

A missing or unbuildable tool FAILS the test, locally too, never skips: an output "tested" against a
tool that was not there would pass silently. Every test of this folder carries the `delivery` marker
(added here), so `pytest -m "not delivery"` leaves out a cold build.

Fixtures:
  delivery_tools   {"kustomize", "helm", "sops", "age", "age-keygen", "kubeseal": binary, "crds": dir}
  kustomize, helm, sops, age, age_keygen, kubeseal   one binary each (builds only that tool)
  delivery_crds    the directory of CRD files (fetched only)
  crd_validate     obj -> list of error messages (empty: the API server would take it as it is)
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "delivery-tools.sh"
HERE = Path(__file__).resolve().parent

# What each tool name of the script reports (age builds age and age-keygen from one module).
_REPORTS = {
    "kustomize": ("kustomize",),
    "age": ("age", "age-keygen"),
    "sops": ("sops",),
    "crds": ("crds",),
    "helm": ("helm",),
    "kubeseal": ("kubeseal",),
}
# The cache as it is when the session starts: a test's `isolated_env` (a temp HOME) must not send the
# script building into an empty cache under it.
_ENV = {
    **os.environ,
    "STACKCTL_CACHE": os.environ.get("STACKCTL_CACHE")
    or str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stackctl"),
}
# The CRD files are large (the SecretStores' ~0.5 MB each): libyaml's loader when PyYAML has it.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_LINE = re.compile(r"^([a-z][a-z0-9-]*)=(/.*)$")
_found: dict[str, Path] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.delivery)


def delivery_tool_paths(*tools: str) -> dict[str, Path]:
    """NAME -> path for the script's TOOLs (all when none): runs scripts/delivery-tools.sh (instant on a
    warm cache, a build on a cold one) once per tool and session; fails the test naming what is missing."""
    asked = tools or tuple(_REPORTS)
    want = [name for tool in asked for name in _REPORTS[tool]]
    missing = [tool for tool in asked if any(name not in _found for name in _REPORTS[tool])]
    if missing:
        if not SCRIPT.is_file():
            pytest.fail(f"{SCRIPT} is missing: the delivery tools cannot be built")
        proc = subprocess.run(["bash", str(SCRIPT), *missing], cwd=REPO, env=_ENV, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
            pytest.fail(f"scripts/delivery-tools.sh {' '.join(missing)} failed (exit {proc.returncode}); "
                        f"the delivery tier needs these tools, it never skips:\n{tail}")
        for line in proc.stdout.splitlines():
            m = _LINE.match(line.strip())
            if m:
                _found[m.group(1)] = Path(m.group(2))
    for name in want:
        path = _found.get(name)
        if path is None:
            pytest.fail(f"scripts/delivery-tools.sh {' '.join(asked)} printed no {name}=PATH line")
        if not path.exists():
            pytest.fail(f"scripts/delivery-tools.sh reported {name}={path}, which does not exist")
    return {name: _found[name] for name in want}


@pytest.fixture(scope="session")
def delivery_tools() -> dict[str, Path]:
    """Every delivery tool: kustomize, helm, sops, age, age-keygen, kubeseal (binaries) and crds (a dir)."""
    return delivery_tool_paths()


@pytest.fixture(scope="session")
def kustomize() -> Path:
    return delivery_tool_paths("kustomize")["kustomize"]


@pytest.fixture(scope="session")
def helm() -> Path:
    return delivery_tool_paths("helm")["helm"]


@pytest.fixture(scope="session")
def sops() -> Path:
    return delivery_tool_paths("sops")["sops"]


@pytest.fixture(scope="session")
def age() -> Path:
    return delivery_tool_paths("age")["age"]


@pytest.fixture(scope="session")
def age_keygen() -> Path:
    return delivery_tool_paths("age")["age-keygen"]


@pytest.fixture(scope="session")
def kubeseal() -> Path:
    return delivery_tool_paths("kubeseal")["kubeseal"]


@pytest.fixture(scope="session")
def delivery_crds() -> Path:
    return delivery_tool_paths("crds")["crds"]


# ---------------------------------------------------------------------------------------------
# Validation against a CRD's openAPIV3Schema
# ---------------------------------------------------------------------------------------------

# ObjectMeta as the API server takes it from a client (it prunes what it does not know, so an unknown
# field is reported like one in spec).
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_OBJECT_META: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": _STR_MAP,
        "annotations": _STR_MAP,
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"},
        "creationTimestamp": {"type": ["string", "null"]},
        "deletionTimestamp": {"type": ["string", "null"]},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "managedFields": {"type": "array"},
        "selfLink": {"type": "string"},
    },
}


def _to_jsonschema(node: Any, *, root: bool = False, close: bool = True) -> Any:
    """A CRD's structural schema as draft-4 JSON Schema with Kubernetes' pruning made explicit: an
    object without x-kubernetes-preserve-unknown-fields or additionalProperties takes no field but its
    `properties` (additionalProperties: false; none at all when it lists none). `nullable` admits null;
    x-kubernetes-* keywords are dropped (CEL rules in x-kubernetes-validations are not evaluated).
    anyOf/allOf/oneOf/not branches keep their own constraints and stay open (close=False): a structural
    schema declares every field at the node itself, and a branch often names only the fields it requires."""
    if isinstance(node, list):
        return [_to_jsonschema(n, close=close) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: _to_jsonschema(sub, close=close) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _to_jsonschema(value, close=close) if isinstance(value, dict) else value
        elif key in ("anyOf", "allOf", "oneOf", "not"):
            out[key] = _to_jsonschema(value, close=False)
        else:
            out[key] = value
    if node.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    if root or node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props["metadata"] = copy.deepcopy(_OBJECT_META) if root else {"type": "object"}
    if close and ("properties" in out or out.get("type") == "object") and "additionalProperties" not in out \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def _path(error: jsonschema.ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _message(error: jsonschema.ValidationError) -> str:
    where = _path(error)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties") or {})
        unknown = sorted(k for k in error.instance if k not in known)
        prefix = f"{where}." if where != "(root)" else ""
        return (f"{', '.join(prefix + k for k in unknown)}: unknown field (not in the CRD's schema; "
                "the API server would prune it)")
    return f"{where}: {error.message}"


class CrdSet:
    """The CRDs of one directory, by (group, kind)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.by_kind: dict[tuple[str, str], dict[str, Any]] = {}
        self._validators: dict[tuple[str, str, str], jsonschema.Draft4Validator] = {}
        files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
        for file in files:
            for doc in yaml.load_all(file.read_text(), Loader=_Loader):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    spec = doc["spec"]
                    self.by_kind[(spec["group"], spec["names"]["kind"])] = doc

    def validate(self, obj: Any) -> list[str]:
        if not isinstance(obj, dict):
            return [f"(root): expected a mapping, got {type(obj).__name__}"]
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            return ["(root): apiVersion and kind must both be strings"]
        group, _, version = api_version.rpartition("/")
        crd = self.by_kind.get((group, kind))
        if crd is None:
            known = ", ".join(sorted(f"{g}/{k}" for g, k in self.by_kind))
            return [f"kind: no CRD for {kind} in group {group or '(core)'} in {self.directory} (known: {known})"]
        versions = {v["name"]: v for v in crd["spec"]["versions"]}
        entry = versions.get(version)
        if entry is None:
            return [f"apiVersion: {api_version}: the CRD of {kind} has no version {version} "
                    f"(it has {', '.join(sorted(versions))})"]
        if not entry.get("served", False):
            return [f"apiVersion: {api_version}: version {version} of {kind} is not served"]
        raw = (entry.get("schema") or {}).get("openAPIV3Schema")
        if raw is None:
            return [f"apiVersion: {api_version}: the CRD of {kind} has no openAPIV3Schema for {version}"]
        validator = self._validators.get((group, kind, version))
        if validator is None:
            validator = jsonschema.Draft4Validator(_to_jsonschema(raw, root=True))
            self._validators[(group, kind, version)] = validator
        errors = [_message(e) for e in validator.iter_errors(obj)]
        if not isinstance(obj.get("metadata"), dict) or not (
                obj["metadata"].get("name") or obj["metadata"].get("generateName")):
            errors.append("metadata.name: required")
        return sorted(set(errors))


@pytest.fixture(scope="session")
def crd_set(delivery_crds: Path) -> CrdSet:
    return CrdSet(delivery_crds)


@pytest.fixture(scope="session")
def crd_validate(crd_set: CrdSet) -> Callable[[Any], list[str]]:
    """obj -> error messages ("path: what"), empty when the object fits the openAPIV3Schema of the CRD of
    its apiVersion/kind (served version, types, enums, required fields, no field the CRD does not know:
    the API server prunes unknown fields, so one is a bug). CEL rules are not evaluated."""
    return crd_set.validate
