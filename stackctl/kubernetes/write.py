"""Serialize rendered objects: a YAML stream (stdout), or a directory (plain files or kustomize).

Serialization is deterministic: keys keep the renderer's order (apiVersion, kind, metadata, spec;
label and data keys sorted), no YAML anchors, block style, multi-line strings as `|` blocks, no
line folding (`stackctl.kubernetes.yamltext`: the same bytes on every machine).

A directory render writes every Secret with mode 0600 (they may hold values) and the rest 0644,
the whole directory at once (a new one renamed into place: no file of a previous render that is no
longer produced stays behind). It refuses a non-empty directory that stackctl did not write.

What is written must be safe to apply. A Secret rendered without its values (the renderer's default:
`stackctl.io/values: omitted`, every key empty) is valid YAML that `kubectl apply` accepts, and
applying it blanks the cluster's real secrets; `split_valueless_secrets` takes such Secrets out
before anything is written or printed (the renderer itself stays pure and the golden files keep
them: the filtering is a property of the output, not of the objects).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackctl.errors import InputError
from stackctl.kubernetes.labels import A_VALUES
from stackctl.kubernetes.names import gc_paused

# No .json/.yaml extension: `kubectl apply -f DIR` reads those as manifests.
MARKER = ".stackctl-render"
FORMATS = ("yaml", "kustomize")


def split_valueless_secrets(objects: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """(the objects safe to apply, the names of the Secrets left out because they carry no values)."""
    kept: list[dict[str, Any]] = []
    omitted: list[str] = []
    for obj in objects:
        annotations = obj.get("metadata", {}).get("annotations") or {}
        if obj.get("kind") == "Secret" and annotations.get(A_VALUES) == "omitted":
            omitted.append(obj["metadata"]["name"])
        else:
            kept.append(obj)
    return kept, omitted


def to_json(objects: Sequence[dict[str, Any]]) -> str:
    """Every object in one `kind: List` (what `kubectl apply -f -` and `kubectl get -o json` use)."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}, indent=2,
                      ensure_ascii=False) + "\n"


def to_yaml(obj: Any) -> str:
    """One object as a YAML document (no `---`)."""
    from stackctl.kubernetes import yamltext

    with gc_paused():
        return yamltext.dump(obj)


def to_stream(objects: Sequence[dict[str, Any]]) -> str:
    """Every object as one multi-document YAML stream (each document starts with `---`)."""
    from stackctl.kubernetes import yamltext

    with gc_paused():
        return yamltext.dump_all(objects)


def file_name(index: int, obj: dict[str, Any]) -> str:
    """`03-deployment-api.yaml`: the apply order is the file order."""
    return f"{index:03d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def write_directory(objects: Sequence[dict[str, Any]], directory: Path, *, fmt: str = "yaml",
                    shown: str | None = None) -> list[Path]:
    """Write one file per object (plus kustomization.yaml for `kustomize`). Returns the paths written.

    The whole directory is written at once (`fsutil.write_tree`: a new directory, one fsync pass, one
    rename), so `kubectl apply -f DIR` never sees half of a render. A directory that also holds files
    of the user's (not listed by the previous render) keeps them: it is written file by file."""
    from stackctl.fsutil import PUBLIC_MODE, SECRET_MODE, atomic_write, write_tree  # not on the stdout path

    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (expected one of: {', '.join(FORMATS)})", field="--format")
    shown = shown or str(directory)
    previous = _previous_files(directory, shown)
    files: list[tuple[str, str, int]] = []
    names: list[str] = []
    for i, obj in enumerate(objects):
        name = file_name(i, obj)
        files.append((name, to_yaml(obj), SECRET_MODE if obj["kind"] == "Secret" else PUBLIC_MODE))
        names.append(name)
    if fmt == "kustomize":
        kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                         "resources": list(names)}
        files.append(("kustomization.yaml", to_yaml(kustomization), PUBLIC_MODE))
        names.append("kustomization.yaml")
    marker = json.dumps({"written-by": "stackctl render", "files": names}, indent=1) + "\n"
    written = [directory / name for name in names]
    others = set(os.listdir(directory)) - previous - {MARKER} if directory.is_dir() else set()
    if not others and write_tree(directory, [(name, text.encode("utf-8"), mode) for name, text, mode in files]
                                 + [(MARKER, marker.encode("utf-8"), PUBLIC_MODE)]):
        return written
    directory.mkdir(parents=True, exist_ok=True)
    for name, text, mode in files:
        atomic_write(directory / name, text, mode=mode)
    for stale in sorted(previous - set(names)):
        (directory / stale).unlink(missing_ok=True)
    atomic_write(directory / MARKER, marker)
    return written


def _previous_files(directory: Path, shown: str) -> set[str]:
    """The files the last render wrote into `directory` (a flat directory: no path, no dot file)."""
    from stackctl.fsutil import owned_marker

    data = owned_marker(directory, MARKER, writer="stackctl render", field=f"--out-dir {shown}")
    return {f for f in data.get("files", []) if "/" not in f and not f.startswith(".")}
