"""A Helm chart from the rendered objects of several profiles (`stackctl render helm`). Pure: objects in,
file texts out (`stackctl.kubernetes.helm` renders the profiles and writes the files).

Why derive the chart from the rendered objects instead of writing templates by hand: the chart is then
stackctl's render by construction. Every object of every profile is compared field by field; what all
profiles agree on stays literal YAML in `templates/`, what differs becomes a lookup into the values
(`values-<profile>.yaml` holds each profile's), and a few fields teams expect to tune are always values,
even when the profiles agree (images, replicas, resources, the env ConfigMaps' values, Ingress rules
and TLS). So `helm template R DIR -f DIR/values-P.yaml --namespace NS` equals `stackctl render kubernetes
-p P` object for object, Secrets aside:

- **Secrets are never in the chart.** Each reference to a Secret stackctl renders (`secretKeyRef`,
  `secretRef`, a `secret` volume) reads `secrets.<name>.existingSecret`, defaulting to the name
  `stackctl promote` (or the GitOps output) creates. No value, no digest of a value.
- **The secret checksum** (`stackctl.io/secret-hash` on pod templates: what rolls the pods when a secret
  changes) is each workload's `secretChecksum` value, stackctl's own at render time; a non-empty
  top-level `secretsChecksum` (CI: the hash of its sealed or SOPS file) replaces it on every workload.
- **Namespace-independent**: `metadata.namespace` is the release's namespace, the Namespace object is
  `{{ .Release.Namespace }}` gated by `namespace.create`, and the `stackctl.io/profile` label is
  `.Values.profile`.
- **Objects only some profiles have** are gated by `<kind>.<name>.enabled`.

Every value is written into the manifest with `toJson`: a JSON scalar, list or object is valid YAML on
one line, so strings that look like numbers, multi-line text, `{{`, quotes and unicode round-trip with
no quoting or indentation rule to get wrong. Literal text that holds `{{` is escaped (`{{ "{{" }}`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stackctl.errors import InputError
from stackctl.kubernetes.labels import A_SECRET_HASH, L_PROFILE, WORKLOAD_KINDS

DEFAULT_VERSION = "0.1.0"
# The fields that are values even when every profile agrees (the short path in an object's values).
_ALWAYS_LAST = ("image", "resources")
_SLOT = "stackctlhelmslot"
_SECRET_REF_PARENTS = {"secretKeyRef": "name", "secretRef": "name", "secret": "secretName"}
IMAGE_HELPER = "stackctl.image"
HELPERS = ("{{/* Written by `stackctl render helm`. An image from its values: repository, then @digest or :tag. */}}\n"
           '{{- define "' + IMAGE_HELPER + '" -}}\n'
           "{{- .repository -}}{{- if .digest -}}@{{- .digest -}}{{- else if .tag -}}:{{- .tag -}}{{- end -}}\n"
           "{{- end -}}\n")
_CHART_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
# Top-level value names the chart itself uses; an object kind's key never takes one of them.
RESERVED_KEYS = ("profile", "namespace", "secrets", "secretsChecksum")


@dataclass(frozen=True)
class ProfileObjects:
    """One profile's render: its name, its namespace and its objects (Secrets included: the chart
    needs their names, never their values)."""
    name: str
    namespace: str
    objects: Sequence[dict[str, Any]]


@dataclass
class Chart:
    """The chart's files (path relative to the chart directory → text), in a stable order."""
    files: dict[str, str]
    defaults_profile: str
    secrets: list[str]
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# References: what stays symbolic in the templates even when its value differs between profiles
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Ref:
    """A field whose value the chart takes from the release or the values, not from the profile:
    equal across profiles when `what` is equal (the namespace of two profiles differs, the reference
    does not)."""
    what: str  # "namespace" | "profile" | "secret:<name>"
    raw: Any = field(compare=False)


@dataclass
class _Param:
    """A field that is a value: where it lives in the values, and each profile's value."""
    path: tuple[str, ...]
    values: dict[str, Any]
    image: bool = False  # split into repository and tag
    checksum: bool = False  # the secret-hash annotation: `secretsChecksum` overrides
    optional: bool = False  # a key some profiles do not have: written only when the value is set


def build_chart(renders: Sequence[ProfileObjects], *, stack: str, version: str = DEFAULT_VERSION,
                app_version: str | None = None) -> Chart:
    """The chart for `renders` (the first profile's values are `values.yaml`'s defaults)."""
    if not renders:
        raise InputError("no profile to render", field="--profile")
    chart_name = chart_name_for(stack)
    if not _VERSION.match(version):
        raise InputError(f"{version!r} is not a semantic version (X.Y.Z, as Helm requires)", field="--version")
    app = app_version if app_version is not None else version
    names = [r.name for r in renders]
    secrets: dict[str, None] = {}
    instances: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    order: list[tuple[str, str]] = []
    for r in renders:
        secret_names = {o["metadata"]["name"] for o in r.objects if o.get("kind") == "Secret"}
        for s in sorted(secret_names):
            secrets.setdefault(s, None)
        for obj in r.objects:
            if obj.get("kind") == "Secret":
                continue
            # One Namespace whatever each profile names it: the chart's is the release's.
            key = (str(obj["kind"]), "" if obj["kind"] == "Namespace" else str(obj["metadata"]["name"]))
            if key not in instances:
                instances[key] = {}
                order.append(key)
            if r.name in instances[key]:
                raise InputError(f"two objects {key[0]}/{key[1]} in one render", field=f"profile {r.name}")
            instances[key][r.name] = _symbolic(obj, r, secret_names)
    warnings = _marker_warnings(renders)
    seen = "".join(_yaml(list(r.objects)) for r in renders)
    slot = _SLOT
    while slot in seen:  # a placeholder must be no text of the objects
        slot += "x"
    files: dict[str, str] = {}
    values: dict[str, dict[str, Any]] = {n: {"profile": n, "namespace": {"create": False}} for n in names}
    for n in names:
        values[n]["secretsChecksum"] = ""
        values[n]["secrets"] = {s: {"existingSecret": s} for s in secrets}
    env_maps = _env_config_maps(renders)
    for key in sorted(order):
        kind, name = key
        present = instances[key]
        params: list[_Param] = []
        kind_key = "namespace" if kind == "Namespace" else _kind_key(kind)
        base = ("namespace",) if kind == "Namespace" else (kind_key, name)
        namer = _Namer(base)
        forced = _forced(kind, name, env_maps)
        tree = _merge(present, (), params, namer, forced)
        gate: tuple[str, ...] | None = None
        if kind == "Namespace":
            gate = ("namespace", "create")
            for n in present:
                values[n]["namespace"]["create"] = True
        elif len(present) < len(names):
            gate = (*base, "enabled")
            for n in names:
                _set(values[n], gate, n in present)
        for p in params:
            if p.optional:
                for n in present:
                    if n not in p.values:
                        _set(values[n], p.path, None)  # absent; the parent map exists for `index`
            for n, v in p.values.items():
                if p.image:
                    _set(values[n], p.path, split_image(v))
                else:
                    _set(values[n], p.path, _plain(v))
        file = f"templates/{kind_key}-{name}.yaml" if name else f"templates/{kind_key}.yaml"
        files[file] = _template(tree, params, slot, gate)
    defaults = names[0]
    files["Chart.yaml"] = _yaml({
        "apiVersion": "v2", "name": chart_name,
        "description": f"The {stack} stack, rendered by stackctl from its Compose files and profiles "
                       f"({', '.join(names)}).",
        "type": "application", "version": version, "appVersion": app,
        "annotations": {"stackctl.io/profiles": ",".join(names), "stackctl.io/defaults": defaults},
    })
    files["values.yaml"] = (f"# Defaults: the values of profile {defaults}. Each profile's own: values-<profile>.yaml\n"
                            f"# (`helm template RELEASE . -f values-{defaults}.yaml --namespace NS`).\n"
                            f"# Written by `stackctl render helm`: edit the profiles, not this file.\n"
                            + _yaml(values[defaults]))
    for n in names:
        complete = _with_deletions(values[defaults], values[n])
        files[f"values-{n}.yaml"] = (f"# Profile {n}: every value, over values.yaml (keys set to null are removed).\n"
                                     f"# Written by `stackctl render helm`: edit the profile, not this file.\n"
                                     + _yaml(complete))
    files[".helmignore"] = ".stackctl-render\n"
    files["templates/_helpers.tpl"] = HELPERS
    return Chart(files=dict(sorted(files.items())), defaults_profile=defaults, secrets=list(secrets),
                 warnings=warnings)


def split_image(image: str) -> dict[str, str]:
    """`registry:5000/app/web:1.4` → repository and tag; `web@sha256:...` → repository and digest
    (the values teams set per environment, the way most charts spell them)."""
    if "@" in image:
        repository, digest = image.split("@", 1)
        return {"repository": repository, "digest": digest}
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = image.rsplit(":", 1)
        return {"repository": repository, "tag": tag}
    return {"repository": image}


def chart_name_for(stack: str) -> str:
    name = stack.lower().replace("_", "-").strip("-")
    name = re.sub(r"-+", "-", name)
    if not _CHART_NAME.match(name):
        raise InputError(f"stack name {stack!r} gives no valid chart name (lowercase letters, digits and '-')",
                         field="stack")
    return name


# ---------------------------------------------------------------------------------------------
# Comparing the profiles
# ---------------------------------------------------------------------------------------------
def _symbolic(obj: dict[str, Any], render: ProfileObjects, secret_names: set[str]) -> dict[str, Any]:
    """The object with its namespace, profile label and Secret references as `_Ref`s."""

    def walk(value: Any, parent: str | None, key: str | None) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, key, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key, None) for v in value]
        if isinstance(value, str):
            if key == L_PROFILE and value == render.name:
                return _Ref("profile", value)
            if parent in _SECRET_REF_PARENTS and key == _SECRET_REF_PARENTS[parent] and value in secret_names:
                return _Ref(f"secret:{value}", value)
        return value

    out: dict[str, Any] = walk(obj, None, None)
    meta = dict(out["metadata"])
    if obj["kind"] == "Namespace":
        meta["name"] = _Ref("namespace", meta["name"])
    elif "namespace" in meta:
        meta["namespace"] = _Ref("namespace", meta["namespace"])
    out["metadata"] = meta
    return out


def _plain(value: Any) -> Any:
    """A value with its references back to what this profile rendered."""
    if isinstance(value, _Ref):
        return value.raw
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _env_config_maps(renders: Sequence[ProfileObjects]) -> set[str]:
    """The ConfigMaps pods read as environment (`envFrom`): their values are the profile's env values."""
    out: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            ref = value.get("configMapRef")
            if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                out.add(ref["name"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for r in renders:
        walk(list(r.objects))
    return out


def _forced(kind: str, name: str, env_maps: set[str]) -> Callable[[tuple[str, ...]], bool]:
    """Which short paths of this object are values even when every profile agrees."""

    def is_forced(short: tuple[str, ...]) -> bool:
        if kind == "ConfigMap":
            return name in env_maps and len(short) == 2 and short[0] == "data"
        if kind == "Ingress":
            return short in (("rules",), ("tls",))
        if kind in WORKLOAD_KINDS:
            if short == ("replicas",):
                return True
            if len(short) == 3 and short[0] in ("containers", "initContainers") and short[2] in _ALWAYS_LAST:
                return True
            return short == ("podMetadata", "annotations", A_SECRET_HASH)
        return False
    return is_forced


class _Namer:
    """Short, stable value names for an object's fields: `replicas`, `containers.api.image`,
    `pod.nodeSelector`, `podMetadata.annotations.<key>`, `data.<KEY>` (a list item by its `name`)."""

    def __init__(self, base: tuple[str, ...]) -> None:
        self.base = base
        self.used: dict[tuple[str, ...], tuple[str, ...]] = {}

    def name(self, path: tuple[str, ...]) -> tuple[str, ...]:
        short = _short(path)
        for taken in self.used.values():
            if taken[:len(short)] == short or short[:len(taken)] == taken:
                short = ("fields", *path)  # a collision: the full path cannot collide
                break
        self.used[path] = short
        return (*self.base, *short)


def _short(path: tuple[str, ...]) -> tuple[str, ...]:
    for prefix, repl in ((("spec", "jobTemplate", "spec", "template", "spec"), ("pod",)),
                         (("spec", "jobTemplate", "spec", "template", "metadata"), ("podMetadata",)),
                         (("spec", "template", "spec"), ("pod",)),
                         (("spec", "template", "metadata"), ("podMetadata",))):
        if path[:len(prefix)] == prefix:
            short = (*repl, *path[len(prefix):])
            if short[:2] in (("pod", "containers"), ("pod", "initContainers")):
                short = short[1:]
            return short
    if path[:1] in (("spec",), ("metadata",)) and len(path) > 1:
        return path[1:]
    return path


def _item_names(items: list[Any]) -> list[str] | None:
    names = [i.get("name") if isinstance(i, dict) else None for i in items]
    if all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
        return [str(n) for n in names]
    return None


def _merge(present: Mapping[str, Any], path: tuple[str, ...], params: list[_Param], namer: _Namer,
           forced: Callable[[tuple[str, ...]], bool]) -> Any:
    """The template tree of one field: literal where every profile agrees, a `_Param` where not."""
    vals = list(present.values())
    short = _short(path)
    first = vals[0]
    if path and forced(short):
        return _param(present, path, params, namer, short)
    if all(isinstance(v, dict) for v in vals):
        keys = list(dict.fromkeys(k for v in vals for k in v))
        if all(set(v) == set(keys) for v in vals):
            return {k: _merge({n: v[k] for n, v in present.items()}, (*path, str(k)), params, namer, forced)
                    for k in keys}
        # Keys only some profiles have: each is an optional value (written only when set); the keys
        # every profile has keep the mapping non-empty, so a missing optional key leaves a blank line.
        if any(all(k in v for v in vals) for k in keys):
            out: dict[str, Any] = {}
            for k in keys:
                sub = {n: v[k] for n, v in present.items() if k in v}
                if len(sub) == len(present):
                    out[k] = _merge(sub, (*path, str(k)), params, namer, forced)
                else:
                    param = _param(sub, (*path, str(k)), params, namer, _short((*path, str(k))))
                    param.optional = True
                    out[k] = param
            return out
    elif all(isinstance(v, list) for v in vals) and all(len(v) == len(first) for v in vals):
        item_names = _item_names(first)
        if all(_item_names(v) == item_names for v in vals):
            return [_merge({n: v[i] for n, v in present.items()},
                           (*path, item_names[i] if item_names else str(i)), params, namer, forced)
                    for i in range(len(first))]
    if all(_same(v, first) for v in vals):
        return first
    return _param(present, path, params, namer, short)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _param(present: Mapping[str, Any], path: tuple[str, ...], params: list[_Param], namer: _Namer,
           short: tuple[str, ...]) -> _Param:
    vals = list(present.values())
    checksum = short == ("podMetadata", "annotations", A_SECRET_HASH)
    image = (not checksum and short[-1:] == ("image",) and short[:1] in (("containers",), ("initContainers",))
             and all(isinstance(v, str) and split_image(v).get("repository") for v in vals))
    # no field of an object is named secretChecksum: the name cannot collide
    value_path = (*namer.base, "secretChecksum") if checksum else namer.name(path)
    p = _Param(value_path, dict(present), image=image, checksum=checksum)
    params.append(p)
    return p


# ---------------------------------------------------------------------------------------------
# Writing the template
# ---------------------------------------------------------------------------------------------
def _lookup(path: Sequence[str]) -> str:
    return "(index .Values " + " ".join(_go_string(p) for p in path) + ")"


def _go_string(text: str) -> str:
    """A Go string literal (JSON's escapes are Go's; non-ASCII stays as UTF-8, which Go reads)."""
    return json.dumps(text, ensure_ascii=False)


def _expression(node: Any) -> str:
    if isinstance(node, _Ref):
        if node.what == "namespace":
            return "{{ .Release.Namespace | toJson }}"
        if node.what == "profile":
            return "{{ .Values.profile | toJson }}"
        secret = node.what.split(":", 1)[1]
        return "{{ " + _lookup(("secrets", secret, "existingSecret")) + " | toJson }}"
    assert isinstance(node, _Param)
    if node.image:
        return "{{ include " + _go_string(IMAGE_HELPER) + " " + _lookup(node.path) + " | toJson }}"
    if node.checksum:
        return "{{ coalesce .Values.secretsChecksum " + _lookup(node.path) + " | toJson }}"
    return "{{ " + _lookup(node.path) + " | toJson }}"


def _template(tree: Any, params: list[_Param], slot: str, gate: tuple[str, ...] | None) -> str:
    slots: dict[str, str] = {}

    def place(node: Any) -> Any:
        if isinstance(node, (_Ref, _Param)):
            token = f"{slot}{len(slots):05d}"
            slots[token] = _expression(node)
            return token
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for k, v in node.items():
                if isinstance(v, _Param) and v.optional:
                    # `TOKEN: ''` becomes the whole entry, written only when the value is set
                    token = f"{slot}{len(slots):05d}"
                    key = json.dumps(str(k), ensure_ascii=False).replace("{{", '{{ "{{" }}')
                    slots[f"{token}: ''"] = ("{{ if not (kindIs \"invalid\" " + _lookup(v.path) + ") }}" + key
                                             + ": " + _expression(v) + "{{ end }}")
                    out[token] = ""
                else:
                    out[k] = place(v)
            return out
        if isinstance(node, list):
            return [place(v) for v in node]
        return node

    text = _yaml(place(tree)).replace("{{", '{{ "{{" }}')
    for token in sorted(slots, reverse=True):  # 00010 before 00001: no token is a prefix of a longer one
        text = text.replace(token, slots[token])
    if gate is not None:
        text = "{{- if " + _lookup(gate) + " }}\n" + text + "{{ end }}\n"
    return "# Written by `stackctl render helm` from the profiles' render: edit the profiles, not this file.\n" + text


def _yaml(data: Any) -> str:
    from stackctl.kubernetes import yamltext

    return yamltext.dump(data)


def _set(values: dict[str, Any], path: Sequence[str], value: Any) -> None:
    node = values
    for part in path[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[path[-1]] = value


def _with_deletions(defaults: Any, profile: Any) -> Any:
    """`profile`'s values with every key of the defaults it lacks set to null: Helm merges a values
    file into values.yaml map by map, and null is how a file removes a key the defaults have."""
    if not isinstance(defaults, dict) or not isinstance(profile, dict):
        return profile
    out = {k: _with_deletions(defaults.get(k), v) for k, v in profile.items()}
    for k in defaults:
        if k not in profile:
            out[k] = None
    return out


def _marker_warnings(renders: Sequence[ProfileObjects]) -> list[str]:
    """A secret that flows into a plain field (an argument, a label) is its `<secret:NAME>` marker in a
    render without values: a chart made from it would run with the marker. Said, per object and profile."""
    from stackctl.secrets.mask import holds_secret

    out: list[str] = []
    for r in renders:
        for obj in r.objects:
            if obj.get("kind") == "Secret":
                continue
            if holds_secret(json.dumps(obj, ensure_ascii=False)):
                out.append(f"profile {r.name}: {obj['kind']}/{obj['metadata']['name']} holds a secret marker "
                           f"(<secret:NAME>) outside a Secret: the chart carries the marker, not the value; "
                           f"reference the secret through the environment instead")
    return out


def _kind_key(kind: str) -> str:
    key = kind[:1].lower() + kind[1:]
    return key + "Object" if key in RESERVED_KEYS else key
