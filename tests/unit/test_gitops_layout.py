"""The kustomize layout of `render gitops` (pure part): base = what all profiles share, overlays =
profile-only objects + JSON 6902 patches that give back each profile's objects exactly."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stackctl.kubernetes.gitops import layout


def apply(obj: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 add/replace/remove, as kustomize's patch library applies them."""
    out = copy.deepcopy(obj)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: Any = out
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if isinstance(parent, list):
            index = int(last)
            assert op["op"] == "replace" or op["op"] == "remove"
            if op["op"] == "remove":
                del parent[index]
            else:
                parent[index] = op["value"]
        elif op["op"] == "remove":
            del parent[last]
        else:
            assert op["op"] == "add" or last in parent, op
            parent[last] = op["value"]
    return out


def deployment(ns: str, replicas: int, image: str, env: list[dict[str, str]]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": ns, "labels": {"stackctl.io/profile": ns}},
            "spec": {"replicas": replicas, "template": {
                "metadata": {"annotations": {"stackctl.io/secret-hash": ns * 2, "stackctl.io/service": "api"}},
                "spec": {"containers": [{"name": "api", "image": image, "env": env}]}}}}


def rebuilt(split: layout.Layout, profile: str) -> dict[layout.Key, dict[str, Any]]:
    base = {layout.key_of(o): o for o in split.base}
    out = dict(base)
    for key, ops in split.overlays[profile].patches:
        out[key] = apply(base[key], ops)
    for obj in split.overlays[profile].objects:
        out[layout.key_of(obj)] = obj
    return out


def test_base_holds_the_shared_part_and_patches_the_rest() -> None:
    env = [{"name": "LOG_LEVEL", "value": "info"}, {"name": "MODE", "value": "x"}]
    prod = [deployment("prod", 3, "api:1.0", env)]
    stage = [deployment("stage", 1, "api:1.1-rc", [{"name": "LOG_LEVEL", "value": "debug"}, env[1]]),
             {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "api"}, "spec": {}}]
    split = layout.split({"production": prod, "staging": stage})
    (base,) = split.base
    assert "namespace" not in base["metadata"] and "replicas" not in base["spec"]
    container = base["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "api" and "image" not in container
    assert container["env"] == [{"name": "LOG_LEVEL"}, {"name": "MODE", "value": "x"}]
    assert [o["kind"] for o in split.overlays["staging"].objects] == ["Ingress"]
    assert split.overlays["production"].objects == []
    (key, ops), = split.overlays["production"].patches
    assert key == ("apps/v1", "Deployment", "api")
    assert {"op": "add", "path": "/spec/replicas", "value": 3} in ops
    assert {"op": "add", "path": "/spec/template/spec/containers/0/env/0/value", "value": "info"} in ops
    assert {"op": "add", "path": "/spec/template/metadata/annotations/stackctl.io~1secret-hash",
            "value": "prodprod"} in ops
    for profile, objects in (("production", prod), ("staging", stage)):
        assert rebuilt(split, profile) == {layout.key_of(o): o for o in objects}


def test_one_profile_is_all_base() -> None:
    objs = [deployment("prod", 2, "a:1", [])]
    split = layout.split({"production": objs})
    assert split.base == objs and split.overlays["production"].patches == []


def test_a_change_of_one_profile_changes_only_its_patch() -> None:
    """Issue 17: a change of one profile is a small diff in one overlay."""
    a = [deployment("prod", 3, "api:1", [])]
    b = [deployment("stage", 1, "api:1", [])]
    c = [deployment("dev", 1, "api:2", [])]
    before = layout.split({"production": a, "staging": b, "dev": c})
    a2 = [deployment("prod", 5, "api:1", [])]
    after = layout.split({"production": a2, "staging": b, "dev": c})
    assert before.base == after.base
    assert before.overlays["staging"] == after.overlays["staging"]
    assert before.overlays["dev"] == after.overlays["dev"]
    changed = [op for op in after.overlays["production"].patches[0][1]
               if op not in before.overlays["production"].patches[0][1]]
    assert changed == [{"op": "add", "path": "/spec/replicas", "value": 5}]


def test_lists_of_different_length_are_replaced_whole() -> None:
    a = [deployment("p", 1, "x", [{"name": "A", "value": "1"}])]
    b = [deployment("p", 1, "x", [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])]
    split = layout.split({"a": a, "b": b})
    assert "env" not in split.base[0]["spec"]["template"]["spec"]["containers"][0]
    assert rebuilt(split, "b")[layout.key_of(b[0])] == b[0]


def test_target_names_group_version_kind_name() -> None:
    assert layout.target(("apps/v1", "Deployment", "api")) == \
        {"group": "apps", "version": "v1", "kind": "Deployment", "name": "api"}
    assert layout.target(("v1", "Service", "api")) == {"version": "v1", "kind": "Service", "name": "api"}


_scalars = st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b", "", "x/y", "~0"]), st.booleans(), st.none())
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "c/d", "e~f"]), inner, max_size=3)),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["spec", "data", "x"]), _values, max_size=3), min_size=1, max_size=4))
def test_every_profile_is_rebuilt_exactly(bodies: list[dict[str, Any]]) -> None:
    """Whatever the objects, base + patches give each profile's object back, and the base holds only
    what every profile has."""
    objects = {f"p{i}": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, **body}]
               for i, body in enumerate(bodies)}
    split = layout.split(objects)
    for profile, objs in objects.items():
        assert rebuilt(split, profile) == {layout.key_of(objs[0]): objs[0]}
