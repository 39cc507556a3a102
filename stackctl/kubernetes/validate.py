"""Validate rendered objects: the official OpenAPI schema of a Kubernetes version, plus the rules
the API server applies that a schema cannot express (name grammars, label syntax, references
between the objects of one render).

Schemas come from the `kubernetes-validate` package (the Kubernetes OpenAPI documents converted to
JSON Schema, one directory per minor version); the strict variant is used, so an unknown field is
an error, as it is for `kubectl apply --validate=strict`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from stackctl.errors import InputError, ToolMissingError
from stackctl.kubernetes import names as k
from stackctl.kubernetes.deploy import argo

_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


@dataclass(frozen=True)
class Problem:
    obj: str  # Kind/name
    path: str  # dotted path inside the object
    message: str

    def __str__(self) -> str:
        return f"{self.obj}: {self.path}: {self.message}" if self.path else f"{self.obj}: {self.message}"


@functools.cache
def _schema_root() -> Any:
    """The schemas' directory, found without importing the package (which imports jsonschema, ~0.1 s,
    needed only for an object the compiled checker does not pass)."""
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - a declared dependency
        raise ToolMissingError("the kubernetes-validate package is not installed "
                               "(pip install kubernetes-validate)")
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


@functools.cache
def supported_versions() -> tuple[str, ...]:
    """Minor versions with a strict schema, oldest first (`1.35`)."""
    found = set()
    for entry in _schema_root().iterdir():
        match = re.fullmatch(r"v(\d+)\.(\d+)\.0-local-strict", entry.name)
        if match:
            found.add((int(match.group(1)), int(match.group(2))))
    return tuple(f"{a}.{b}" for a, b in sorted(found))


def schema_version(version: str) -> str:
    match = _VERSION.match(version)
    if not match:
        raise InputError(f"not a Kubernetes version: {version!r} (expected like 1.35)", field="kubernetes.version")
    wanted = f"{match.group(1)}.{match.group(2)}"
    known = supported_versions()
    if wanted not in known:
        raise InputError(f"no schema for Kubernetes {wanted} (kubernetes-validate ships {known[0]} to {known[-1]})",
                         field="kubernetes.version")
    return wanted


@functools.cache
def _registry(version: str) -> Any:
    from referencing import Registry, Resource

    directory = _schema_root().joinpath(f"v{version}.0-local-strict")
    definitions = json.loads(directory.joinpath("_definitions.json").read_text(encoding="utf-8"))
    return Resource.from_contents(definitions) @ Registry()


@functools.cache
def _validator(version: str, kind: str, api_version: str) -> Any:
    import jsonschema  # type: ignore[import-untyped,unused-ignore]  # typed by types-jsonschema, when installed

    if (api_version, kind) == (argo.API_VERSION, argo.KIND):  # no CRD needed: stackctl's own schema
        return jsonschema.Draft202012Validator(argo.SCHEMA, registry=_registry(version))
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # networking.k8s.io/v1 → networking-v1
    path = _schema_root().joinpath(f"v{version}.0-local-strict", f"{kind.lower()}-{group}.json")
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return jsonschema.Draft202012Validator(schema, registry=_registry(version))


def validate(objects: Sequence[dict[str, Any]], version: str) -> list[Problem]:
    """Every problem found, in object order (empty: all objects are valid for `version`).

    Each object is first checked by a compiled checker (`_checker`: one per kind and version, built
    once), ~20x faster than jsonschema and exact for the keywords the Kubernetes schemas use; only
    an object it does not pass (or a kind whose schema uses anything else) goes through jsonschema,
    for the very messages it gave before. jsonschema is not even imported when everything is valid."""
    version = schema_version(version)
    problems: list[Problem] = []
    for obj in objects:
        ref = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        kind, api_version = str(obj.get("kind")), str(obj.get("apiVersion"))
        check = _checker(version, kind, api_version)
        if check is None or not check(obj):
            validator = _validator(version, kind, api_version)
            if validator is None:
                problems.append(Problem(ref, "", f"no schema for {obj.get('apiVersion')} {obj.get('kind')} in "
                                                 f"Kubernetes {version}"))
                continue
            for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
                problems.append(Problem(ref, _path(error.absolute_path), _message(error)))
        problems.extend(_semantic(ref, obj))
    problems.extend(_references(objects))
    return problems


# ---------------------------------------------------------------------------------------------
# The compiled checker: True only where jsonschema finds no error (False: ask jsonschema)
# ---------------------------------------------------------------------------------------------
Check = Callable[[Any], bool]
# Keywords that assert nothing (annotations; `format` is not asserted by a validator built without a
# format checker, as `_validator`'s are).
_ANNOTATIONS = frozenset({"description", "format", "$schema", "$id", "$defs", "discriminator", "title",
                          "default", "examples", "deprecated", "readOnly", "writeOnly"})
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float)
                                                                              and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


class _Unsupported(Exception):
    """A schema keyword the compiled checker does not implement: jsonschema checks that kind."""


@functools.cache
def _definitions(version: str) -> dict[str, Any]:
    directory = _schema_root().joinpath(f"v{version}.0-local-strict")
    defs: dict[str, Any] = json.loads(directory.joinpath("_definitions.json").read_text(encoding="utf-8"))["$defs"]
    return defs


@functools.cache
def _checker(version: str, kind: str, api_version: str) -> Check | None:
    """The compiled checker of a kind (None: the schema uses a keyword it does not implement, or
    there is no schema; jsonschema then decides)."""
    if (api_version, kind) == (argo.API_VERSION, argo.KIND):
        schema: Any = argo.SCHEMA
    else:
        group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        path = _schema_root().joinpath(f"v{version}.0-local-strict", f"{kind.lower()}-{group}.json")
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
    compiled: dict[str, Check] = {}
    if "$defs" in schema:  # its own `#/$defs/...` would not be the definitions'
        return None
    try:
        return _compile(schema, _definitions(version), compiled)
    except _Unsupported:
        return None


def _compile(schema: Any, defs: dict[str, Any], compiled: dict[str, Check]) -> Check:
    """The check of one schema node: plain loops in closures, an object's keywords in one pass."""
    if schema is True or schema == {}:
        return _anything
    if not isinstance(schema, dict):
        raise _Unsupported(repr(schema))
    checks: list[Check] = []
    props: dict[str, Check] | None = None
    additional: Check | bool | None = None
    required: tuple[str, ...] = ()
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS or keyword.startswith("x-"):
            continue
        if keyword == "type":
            names = value if isinstance(value, list) else [value]
            if not all(isinstance(n, str) and n in _TYPES for n in names):
                raise _Unsupported(f"type {value!r}")
            checks.append(_of_type([_TYPES[n] for n in names]))
        elif keyword in ("enum", "const"):
            options = value if keyword == "enum" else [value]
            if not isinstance(options, list) or not all(o is None or isinstance(o, str) for o in options):
                raise _Unsupported(f"{keyword} {value!r}")
            checks.append(_one_of_values(frozenset(options)))
        elif keyword == "required":
            required = tuple(value)
        elif keyword == "properties":
            props = {name: _compile(sub, defs, compiled) for name, sub in value.items()}
        elif keyword == "additionalProperties":
            additional = False if value is False else _compile(value, defs, compiled)
        elif keyword == "items":
            checks.append(_items(_compile(value, defs, compiled)))
        elif keyword == "oneOf":
            checks.append(_exactly_one([_compile(sub, defs, compiled) for sub in value]))
        elif keyword == "$ref":
            checks.append(_reference(value, defs, compiled))
        else:  # patternProperties, minimum, pattern, ...: jsonschema checks this kind
            raise _Unsupported(keyword)
    if props is not None or additional is not None or required:
        checks.append(_object(props or {}, additional, required))
    return _all(checks)


def _anything(v: Any) -> bool:
    return True


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _anything
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)
    return lambda v: all(c(v) for c in checks)


def _of_type(tests: list[Check]) -> Check:
    if len(tests) == 1:
        return tests[0]
    first, *rest = tests
    return lambda v: first(v) or any(t(v) for t in rest)


def _one_of_values(allowed: frozenset[str | None]) -> Check:
    return lambda v: (v is None or isinstance(v, str)) and v in allowed


def _object(props: dict[str, Check], additional: Check | bool | None, required: tuple[str, ...]) -> Check:
    """`properties`, `additionalProperties` (False, a schema, or absent: anything) and `required` of
    one object schema, in one pass over the instance's keys."""
    other = additional if callable(additional) else None
    closed = additional is False

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        for key, item in v.items():
            sub = props.get(key)
            if sub is not None:
                if not sub(item):
                    return False
            elif closed or (other is not None and not other(item)):
                return False
        return all(map(v.__contains__, required))
    return check


def _items(item: Check) -> Check:
    return lambda v: not isinstance(v, list) or all(map(item, v))


def _exactly_one(branches: list[Check]) -> Check:
    return lambda v: sum(1 for b in branches if b(v)) == 1


def _reference(ref: Any, defs: dict[str, Any], compiled: dict[str, Check]) -> Check:
    """A `$ref` into the definitions, compiled once per definition. A definition still being compiled
    (a recursive one) is looked up when the check runs; any other is the definition's check itself."""
    where, marker, name = str(ref).partition("#/$defs/")
    if not marker or not (where == "" or where.endswith("/_definitions.json")) or name not in defs:
        raise _Unsupported(f"$ref {ref!r}")
    if name in compiled:
        found = compiled[name]
        return found if found is not _anything else lambda v: compiled[name](v)
    compiled[name] = _anything  # a placeholder while compiling this definition (it may refer to itself)
    try:
        compiled[name] = _compile(defs[name], defs, compiled)
    except _Unsupported:
        del compiled[name]
        raise
    return compiled[name]


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: Any) -> str:
    if error.validator == "oneOf" and error.context:
        # IntOrString / Quantity: name the types instead of dumping every branch
        return f"{json.dumps(error.instance)} is not a valid value here"
    text = str(error.message)
    return text if len(text) < 300 else text[:297] + "..."


# ---------------------------------------------------------------------------------------------
# What the API server checks beyond the schema
# ---------------------------------------------------------------------------------------------
def _semantic(ref: str, obj: dict[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    kind = obj.get("kind")
    meta = obj.get("metadata", {})
    name = str(meta.get("name", ""))
    if kind in ("Service", "Namespace"):
        grammar, what = (k.DNS1035_LABEL, "a DNS-1035 label") if kind == "Service" else (k.DNS1123_LABEL,
                                                                                         "a DNS-1123 label")
        if len(name) > 63 or not grammar.match(name):
            out.append(Problem(ref, "metadata.name", f"must be {what} (at most 63 characters)"))
    elif len(name) > 253 or not k.DNS1123_SUBDOMAIN.match(name):
        out.append(Problem(ref, "metadata.name", "must be a DNS-1123 subdomain"))
    limit = {"Job": 63, "CronJob": 52, "StatefulSet": 63, "Deployment": 63, "DaemonSet": 63,
             "Rollout": 63}.get(str(kind))
    if limit and len(name) > limit:
        out.append(Problem(ref, "metadata.name", f"must be at most {limit} characters for a {kind}"))
    out.extend(_labels(ref, "metadata", meta))
    if kind in ("ConfigMap", "Secret"):
        for field in ("data", "binaryData"):
            for key in obj.get(field) or {}:
                if not k.CONFIG_KEY.match(key) or len(key) > 253:
                    out.append(Problem(ref, f"{field}.{key}", "is not a valid key ([-._a-zA-Z0-9]+)"))
        size = len(json.dumps(obj))
        if size > 1024 * 1024:
            out.append(Problem(ref, "", f"is {size} bytes; the API server refuses objects over 1 MiB"))
    spec = obj.get("spec") or {}
    template, path = _pod_template(obj)
    if template is not None:
        out.extend(_labels(ref, f"{path}.metadata", template.get("metadata") or {}))
        out.extend(_pod(ref, f"{path}.spec", template.get("spec") or {},
                        [t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []]))
        selector = (spec.get("selector") or {}).get("matchLabels")
        labels = (template.get("metadata") or {}).get("labels") or {}
        if selector and any(labels.get(key) != value for key, value in selector.items()):
            out.append(Problem(ref, "spec.selector", "does not match the pod template's labels"))
    if kind == argo.KIND:
        out.extend(Problem(ref, path, message) for path, message in argo.semantic(obj))
    if kind == "Service":
        seen: set[str] = set()
        for i, port in enumerate(spec.get("ports") or []):
            pname = port.get("name", "")
            if pname in seen:
                out.append(Problem(ref, f"spec.ports[{i}].name", f"duplicate port name {pname!r}"))
            seen.add(pname)
            if pname and not _port_name_ok(pname):
                out.append(Problem(ref, f"spec.ports[{i}].name", "must be a lowercase IANA service name"))
    return out


def _pod_template(obj: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    spec = obj.get("spec") or {}
    if obj.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job", argo.KIND):
        return spec.get("template"), "spec.template"
    if obj.get("kind") == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template"), "spec.jobTemplate.spec.template"
    return None, ""


def _labels(ref: str, path: str, meta: dict[str, Any]) -> list[Problem]:
    out = []
    for key, value in (meta.get("labels") or {}).items():
        if not k.annotation_key_ok(key):
            out.append(Problem(ref, f"{path}.labels.{key}", "is not a valid label key"))
        if not isinstance(value, str) or len(value) > 63 or not k.LABEL_VALUE.match(value):
            out.append(Problem(ref, f"{path}.labels.{key}", f"{value!r} is not a valid label value"))
    for key in meta.get("annotations") or {}:
        if not k.annotation_key_ok(key):
            out.append(Problem(ref, f"{path}.annotations.{key}", "is not a valid annotation key"))
    return out


def _port_name_ok(name: str) -> bool:
    return len(name) <= 15 and bool(k.IANA_SVC_NAME.match(name)) and "--" not in name and bool(
        re.search("[a-z]", name))


def _pod(ref: str, path: str, pod: dict[str, Any], claim_templates: list[str]) -> list[Problem]:
    out = []
    volumes = [v.get("name", "") for v in pod.get("volumes") or []]
    for i, vol in enumerate(volumes):
        if not k.DNS1123_LABEL.match(vol) or len(vol) > 63:
            out.append(Problem(ref, f"{path}.volumes[{i}].name", "must be a DNS-1123 label"))
        if volumes.count(vol) > 1:
            out.append(Problem(ref, f"{path}.volumes[{i}].name", f"duplicate volume {vol!r}"))
    known = set(volumes) | set(claim_templates)
    names: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, c in enumerate(pod.get(group) or []):
            where = f"{path}.{group}[{i}]"
            cname = c.get("name", "")
            if not k.DNS1123_LABEL.match(cname) or len(cname) > 63:
                out.append(Problem(ref, f"{where}.name", "must be a DNS-1123 label"))
            if cname in names:
                out.append(Problem(ref, f"{where}.name", f"duplicate container name {cname!r}"))
            names.add(cname)
            port_names: set[str] = set()
            for j, port in enumerate(c.get("ports") or []):
                pname = port.get("name")
                if pname is not None and (not _port_name_ok(pname) or pname in port_names):
                    out.append(Problem(ref, f"{where}.ports[{j}].name", f"invalid or duplicate port name {pname!r}"))
                port_names.add(pname)
            mount_paths: set[str] = set()
            for j, mount in enumerate(c.get("volumeMounts") or []):
                if mount.get("name") not in known:
                    out.append(Problem(ref, f"{where}.volumeMounts[{j}].name", f"no volume {mount.get('name')!r}"))
                if mount.get("mountPath") in mount_paths:
                    out.append(Problem(ref, f"{where}.volumeMounts[{j}].mountPath",
                                       f"{mount.get('mountPath')} is mounted twice"))
                mount_paths.add(mount.get("mountPath"))
            out.extend(_sleep_hooks(ref, where, c, pod))
    return out


def _sleep_hooks(ref: str, where: str, container: dict[str, Any], pod: dict[str, Any]) -> list[Problem]:
    """A lifecycle `sleep` must fit the grace period (the API server's rule; the grace period
    counts from the start of the preStop hook). Zero is refused too: only 1.33+ allows it."""
    grace = pod.get("terminationGracePeriodSeconds", 30)  # the API default
    out = []
    for hook in ("postStart", "preStop"):
        sleep = ((container.get("lifecycle") or {}).get(hook) or {}).get("sleep")
        seconds = sleep.get("seconds") if isinstance(sleep, dict) else None
        if isinstance(seconds, int) and isinstance(grace, int) and not 0 < seconds <= grace:
            out.append(Problem(ref, f"{where}.lifecycle.{hook}.sleep.seconds",
                               f"must be greater than 0 and at most terminationGracePeriodSeconds ({grace})"))
    return out


def _references(objects: Sequence[dict[str, Any]]) -> list[Problem]:
    """References between objects of this render: Services reach a pod port, HPAs and Ingresses
    point at objects that exist, env references name existing keys of our own ConfigMaps/Secrets."""
    out: list[Problem] = []
    by_kind: dict[tuple[str, str], dict[str, Any]] = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    pods = []
    for obj in objects:
        template, _ = _pod_template(obj)
        if template is not None:
            pods.append((obj, template))
    # (label, value) → the pods carrying it, in order: a selector looks at the pods of its rarest
    # label instead of at every pod (linear, not services × pods, at 3,000 services)
    carrying: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for _, t in pods:
        for key, v in (((t.get("metadata") or {}).get("labels") or {}).items()):
            if isinstance(v, str):
                carrying.setdefault((key, v), []).append(t)
    for obj in objects:
        ref = f"{obj['kind']}/{obj['metadata']['name']}"
        spec = obj.get("spec") or {}
        if obj["kind"] == "Service" and spec.get("selector"):
            selector = spec["selector"]
            candidates = [t for _, t in pods]
            if isinstance(selector, dict) and all(isinstance(v, str) for v in selector.values()):
                candidates = min((carrying.get((key, v), []) for key, v in selector.items()), key=len)
            selected = [t for t in candidates if all(
                ((t.get("metadata") or {}).get("labels") or {}).get(key) == v for key, v in selector.items())]
            if not selected:
                out.append(Problem(ref, "spec.selector", "selects no pod of this render"))
            for i, port in enumerate(spec.get("ports") or []):
                target = port.get("targetPort")
                if isinstance(target, str) and selected and not any(
                        p.get("name") == target for t in selected for c in t["spec"].get("containers", [])
                        for p in c.get("ports") or []):
                    out.append(Problem(ref, f"spec.ports[{i}].targetPort", f"no container port named {target!r}"))
        if obj["kind"] == "HorizontalPodAutoscaler":
            target = spec.get("scaleTargetRef") or {}
            if (target.get("kind"), target.get("name")) not in by_kind:
                out.append(Problem(ref, "spec.scaleTargetRef", f"no {target.get('kind')}/{target.get('name')}"))
        if obj["kind"] == "Ingress":
            for i, rule in enumerate(spec.get("rules") or []):
                for j, p in enumerate((rule.get("http") or {}).get("paths") or []):
                    backend = (p.get("backend") or {}).get("service") or {}
                    service = by_kind.get(("Service", backend.get("name", "")))
                    where = f"spec.rules[{i}].http.paths[{j}].backend.service"
                    if service is None:
                        out.append(Problem(ref, where, f"no Service {backend.get('name')!r}"))
                    elif "name" in (backend.get("port") or {}) and not any(
                            sp.get("name") == backend["port"]["name"] for sp in service["spec"].get("ports") or []):
                        out.append(Problem(ref, f"{where}.port", f"Service {backend.get('name')!r} has no port "
                                                                 f"{backend['port']['name']!r}"))
    for obj, template in pods:
        ref = f"{obj['kind']}/{obj['metadata']['name']}"
        for c in (template.get("spec") or {}).get("containers") or []:
            for e in c.get("env") or []:
                key_ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if key_ref and ("Secret", key_ref["name"]) in by_kind:
                    data = by_kind[("Secret", key_ref["name"])].get("data") or {}
                    if key_ref["key"] not in data:
                        out.append(Problem(ref, f"env.{e['name']}", f"Secret {key_ref['name']!r} has no key "
                                                                    f"{key_ref['key']!r}"))
            for src in c.get("envFrom") or []:
                cm = (src.get("configMapRef") or {}).get("name")
                if cm and ("ConfigMap", cm) not in by_kind:
                    out.append(Problem(ref, "envFrom", f"no ConfigMap {cm!r}"))
    return out
