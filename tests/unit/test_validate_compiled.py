"""`render --validate` checks each object with a checker compiled once per kind (issue 15), and asks
jsonschema only about objects that checker does not pass. The checker must never pass an object
jsonschema finds a problem in: held to jsonschema here on every golden object and thousands of
mutations of them (wrong types, unknown fields, missing required fields, values outside an enum)."""

from __future__ import annotations

import copy
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackctl.kubernetes import validate as v

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
VERSION = "1.35"


def _golden_objects() -> list[dict[str, Any]]:
    out = []
    for path in sorted(GOLDEN.glob("*/expected/*.yaml")):
        out.extend(d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict))
    return out


def _schema_errors(obj: dict[str, Any]) -> list[Any]:
    validator = v._validator(VERSION, str(obj.get("kind")), str(obj.get("apiVersion")))
    assert validator is not None
    return list(validator.iter_errors(obj))


def _containers(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, tuple[Any, ...]]]:
    """Every dict and list inside obj, with its path."""
    found = [(obj, path)]
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for key, child in items:
        if isinstance(child, (dict, list)):
            found.extend(_containers(child, (*path, key)))
    return found


REPLACEMENTS: list[Any] = [None, True, 0, 1.5, 7, "text", "Always", [], ["x"], {}, {"k": "v"}, -1]


def _mutate(obj: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    mutated = copy.deepcopy(obj)
    targets = [(c, p) for c, p in _containers(mutated) if c]
    container, _ = rng.choice(targets)
    if isinstance(container, dict):
        key = rng.choice(list(container))
        action = rng.randrange(3)
        if action == 0:
            container[key] = rng.choice(REPLACEMENTS)
        elif action == 1:
            del container[key]
        else:
            container[f"unknownField{rng.randrange(3)}"] = rng.choice(REPLACEMENTS)
    else:
        index = rng.randrange(len(container))
        container[index] = rng.choice(REPLACEMENTS)
    return mutated


def test_every_golden_object_passes_the_compiled_checker() -> None:
    objects = _golden_objects()
    assert len(objects) > 200
    for obj in objects:
        check = v._checker(VERSION, obj["kind"], obj["apiVersion"])
        if check is None:  # a kind the checker leaves to jsonschema (a Rollout: `minimum`)
            continue
        assert check(obj) == (not _schema_errors(obj)), f"{obj['kind']}/{obj['metadata']['name']}"


def test_the_checker_never_passes_what_jsonschema_refuses() -> None:
    rng = random.Random(15)
    objects = [o for o in _golden_objects() if v._checker(VERSION, o["kind"], o["apiVersion"]) is not None]
    refused = 0
    for _ in range(3000):
        obj = _mutate(rng.choice(objects), rng)
        check = v._checker(VERSION, str(obj.get("kind")), str(obj.get("apiVersion")))
        if check is None or v._validator(VERSION, str(obj.get("kind")), str(obj.get("apiVersion"))) is None:
            continue  # kind or apiVersion mutated into one without a schema: "no schema" either way
        errors = _schema_errors(obj)
        refused += bool(errors)
        assert check(obj) == (not errors), (obj.get("kind"), errors[:1])
    assert refused > 500  # the mutations do produce invalid objects


def test_one_checker_per_kind_is_compiled_and_reused() -> None:
    v._checker.cache_clear()
    objects = _golden_objects()
    v.validate(objects, VERSION)
    kinds = {(o["kind"], o["apiVersion"]) for o in objects}
    assert v._checker.cache_info().misses == len(kinds)
    v.validate(objects, VERSION)
    assert v._checker.cache_info().misses == len(kinds)  # nothing compiled again
    assert v._checker.cache_info().hits >= 2 * len(objects) - len(kinds)


def test_problems_are_still_jsonschemas_messages() -> None:
    obj = next(o for o in _golden_objects() if o["kind"] == "Deployment")
    bad = copy.deepcopy(obj)
    bad["spec"]["replicas"] = "three"
    bad["spec"]["replicaz"] = 3
    problems = [str(p) for p in v.validate([bad], VERSION)]
    name = obj["metadata"]["name"]
    assert f"Deployment/{name}: spec.replicas: 'three' is not of type 'integer', 'null'" in problems
    assert f"Deployment/{name}: spec: Additional properties are not allowed ('replicaz' was unexpected)" in problems


@pytest.mark.parametrize("valid", [True, False])
def test_jsonschema_is_imported_only_for_an_object_that_does_not_pass(valid: bool) -> None:
    """jsonschema and referencing cost ~0.1 s to import: a render whose objects are valid skips them."""
    breaks = "" if valid else "objs[-1]['spec']['bogus'] = 5"
    manifests = str(GOLDEN / "gitea" / "expected" / "production.yaml")
    code = (
        "import sys, yaml\n"
        "from stackctl.kubernetes.validate import validate\n"
        f"objs = [d for d in yaml.safe_load_all(open({manifests!r}))]\n"
        f"{breaks}\n"
        "print(len(validate(objs, '1.35')), 'jsonschema' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == (["0", "False"] if valid else [out[0], "True"])
    assert valid or int(out[0]) > 0
