"""The kustomize layout of several profiles' objects: a base and one overlay per profile (pure).

Why JSON 6902 patches and no kustomize transformers: `kustomize build overlays/<p>` must equal the
profile's own render object for object, and the transformers do more than they say (`namespace:`
also rewrites RoleBinding subjects and renames a Namespace object; `images:` and `replicas:` match
by name across kinds). A JSON patch changes exactly the paths it names, so the build is the render.

- The base holds every object all the profiles have (same apiVersion, kind and name), reduced to
  what they share: a field on which they differ (a namespace, replicas, an image tag, an env value,
  the checksum annotation) is left out of the base, and each overlay adds its own value back.
- An overlay lists the base, its profile-only objects (whole), and one patch file per base object
  that differs, holding only the `add` operations of that profile's values.

So a change of one profile's replicas is one line in one overlay's patch file; the base changes only
when what all profiles share changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str, str]  # apiVersion, kind, name
KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}


@dataclass
class Overlay:
    objects: list[dict[str, Any]] = field(default_factory=list)  # profile-only objects, whole
    patches: list[tuple[Key, list[dict[str, Any]]]] = field(default_factory=list)  # base object → its ops


@dataclass
class Layout:
    base: list[dict[str, Any]]
    overlays: dict[str, Overlay]


def key_of(obj: Mapping[str, Any]) -> Key:
    return (str(obj["apiVersion"]), str(obj["kind"]), str(obj["metadata"]["name"]))


def split(objects: Mapping[str, Sequence[dict[str, Any]]]) -> Layout:
    """`objects`: profile → its objects (each key once per profile). The order of the base follows the
    first profile's objects; every overlay keeps its profile's own order."""
    profiles = sorted(objects)
    by_profile = {p: {key_of(o): o for o in objects[p]} for p in profiles}
    shared = [k for k in (key_of(o) for o in objects[profiles[0]]) if all(k in by_profile[p] for p in profiles)] \
        if profiles else []
    base: list[dict[str, Any]] = []
    overlays = {p: Overlay() for p in profiles}
    for key in shared:
        base_obj = _common([by_profile[p][key] for p in profiles])
        assert isinstance(base_obj, dict)  # the name, kind and apiVersion are shared by construction
        base.append(base_obj)
        for p in profiles:
            ops = diff(base_obj, by_profile[p][key])
            if ops:
                overlays[p].patches.append((key, ops))
    shared_set = set(shared)
    for p in profiles:
        overlays[p].objects = [o for o in objects[p] if key_of(o) not in shared_set]
    return Layout(base=base, overlays=overlays)


_MISSING = object()


def _common(values: Sequence[Any]) -> Any:
    """What all `values` share: equal values whole; mappings key by key (a key all have, reduced);
    lists of mappings of one length element by element (the indices must stay); else _MISSING."""
    first = values[0]
    if all(v == first for v in values[1:]):
        return first
    if all(isinstance(v, dict) for v in values):
        out: dict[str, Any] = {}
        for k in first:
            if all(k in v for v in values):
                sub = _common([v[k] for v in values])
                # An empty mapping is left out (the overlay adds the whole value): kustomize may drop `{}`.
                if sub is not _MISSING and sub != {}:
                    out[k] = sub
        return out
    if all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1 \
            and all(isinstance(item, dict) for v in values for item in v):
        items = []
        for i in range(len(first)):
            sub = _common([v[i] for v in values])
            # The element keeps its index: at least its `name` (containers, env, ports) stays.
            items.append({} if sub is _MISSING else sub)
        return items
    return _MISSING


def diff(base: Any, full: Any, path: str = "") -> list[dict[str, Any]]:
    """The JSON 6902 operations that turn `base` (a reduction of `full` by `_common`) into `full`."""
    if base == full:
        return []
    if isinstance(base, dict) and isinstance(full, dict):
        ops: list[dict[str, Any]] = []
        for k in base:
            if k not in full:
                ops.append({"op": "remove", "path": f"{path}/{_escape(k)}"})
        for k, v in full.items():
            if k in base:
                ops.extend(diff(base[k], v, f"{path}/{_escape(k)}"))
            else:
                ops.append({"op": "add", "path": f"{path}/{_escape(k)}", "value": v})
        return ops
    if isinstance(base, list) and isinstance(full, list) and len(base) == len(full) \
            and all(isinstance(b, dict) and isinstance(f, dict) for b, f in zip(base, full, strict=True)):
        return [op for i, (b, f) in enumerate(zip(base, full, strict=True)) for op in diff(b, f, f"{path}/{i}")]
    return [{"op": "replace", "path": path, "value": full}]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def target(key: Key) -> dict[str, str]:
    """A kustomize patch target selecting exactly one base object."""
    api_version, kind, name = key
    group, _, version = api_version.rpartition("/")
    out = {"group": group, "version": version, "kind": kind, "name": name} if group else \
        {"version": version, "kind": kind, "name": name}
    return out


def file_stem(kind: str, name: str) -> str:
    return f"{kind.lower()}-{name}"
