"""The YAML writer of rendered objects: loads back to the same data, same bytes every time, and never
writes a string plain that Kubernetes' YAML 1.1 parser would read as another type."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stackctl.kubernetes import yamltext
from stackctl.kubernetes.names import FileMode

# Strings go-yaml v2 (sigs.k8s.io/yaml, kubectl) resolves to booleans, numbers or null when plain.
GO_YAML_SPECIAL = ["y", "Y", "n", "N", "yes", "No", "ON", "off", "true", "False", "null", "~", "1e3", "0x1F",
                   "0o17", "017", "1_000", "-1", "+1", ".5", "1.0", ".inf", "-.Inf", ".NaN", "1:30", "2024-11-03",
                   "<<", "="]

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
keys = st.one_of(st.from_regex(r"[A-Za-z0-9._/-]{1,20}", fullmatch=True), text)
scalars = st.one_of(text, st.integers(-2**40, 2**40), st.booleans(), st.sampled_from(GO_YAML_SPECIAL),
                    st.integers(0, 0o777).map(FileMode))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(keys, inner, max_size=4)), max_leaves=25)


@settings(max_examples=150, deadline=None)
@given(doc=st.dictionaries(keys, documents, max_size=6))
def test_round_trip(doc: dict[str, Any]) -> None:
    out = yamltext.dump(doc)
    assert yaml.safe_load(out) == doc
    assert yamltext.dump(doc) == out


@pytest.mark.parametrize("value", GO_YAML_SPECIAL)
def test_strings_that_look_like_other_types_are_quoted(value: str) -> None:
    assert yamltext.dump({"k": value}) != f"k: {value}\n"
    assert yaml.safe_load(yamltext.dump({"k": value})) == {"k": value}


def test_style() -> None:
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a": "b"}},
           "data": {"nginx.conf": "events {}\nhttp {\n  server {}\n}\n", "01.sql": "select 1;", "empty": ""},
           "spec": {"ports": [{"name": "http", "port": 80}], "args": ["--workers", "3", "0.0.0.0:80"],
                    "mode": FileMode(0o444), "list": [], "map": {}}}
    assert yamltext.dump(doc) == (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels:\n    a: b\ndata:\n"
        "  nginx.conf: |\n    events {}\n    http {\n      server {}\n    }\n"
        "  '01.sql': select 1;\n  empty: ''\n"
        "spec:\n  ports:\n  - name: http\n    port: 80\n  args:\n  - --workers\n  - '3'\n  - '0.0.0.0:80'\n"
        "  mode: 0444\n  list: []\n  map: {}\n")
    assert yamltext.dump_all([{"a": 1}, {"b": 2}]) == "---\na: 1\n---\nb: 2\n"
