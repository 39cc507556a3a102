"""The one kubeconfig reader: contexts, clusters and users, merged as kubectl merges them.

`contexts()` reads KUBECONFIG (several files, separated like PATH), else ~/.kube/config, with
PyYAML only — not with the official Kubernetes client, which costs ~0.7-0.9 s to import (see
`transport`). `promote`, `history`, `rollback`, `run-job` and `doctor` all read it here, and
`transport.open_transport()` turns one context's cluster and user into a connection.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackctl.errors import InputError, ToolMissingError


def kubeconfig_path() -> str:
    return os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")


@dataclass(frozen=True)
class Contexts:
    names: tuple[str, ...]
    current: str | None
    path: str
    servers: Mapping[str, str] = field(default_factory=dict)  # context → API server URL
    # the merged kubeconfig, for connecting: context → (cluster, user); name → entry (+ "_dir")
    bindings: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    clusters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    users: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def files(self) -> tuple[str, ...]:
        """The files of `path` that exist (the ones read)."""
        return tuple(p for p in self.path.split(os.pathsep) if p and Path(p).is_file())


def contexts(path: str | None = None) -> Contexts:
    """The contexts of the kubeconfig, read without the Kubernetes client (it is slow to import).
    KUBECONFIG may list several files; they merge as kubectl merges them: the first file that names
    a context, a cluster, a user or the current-context wins."""
    import yaml

    path = path or kubeconfig_path()
    files = [p for p in path.split(os.pathsep) if p]
    if not any(Path(p).is_file() for p in files):
        raise ToolMissingError(f"no kubeconfig at {path}",
                               hint="set KUBECONFIG, or create ~/.kube/config (your cluster's tooling writes it)")
    names: list[str] = []
    bindings: dict[str, tuple[str, str]] = {}
    clusters: dict[str, dict[str, Any]] = {}
    users: dict[str, dict[str, Any]] = {}
    current: str | None = None
    for file in files:
        if not Path(file).is_file():
            continue
        try:
            data = yaml.safe_load(Path(file).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read the kubeconfig: {exc}", file=file) from None
        if not isinstance(data, dict):
            raise InputError("is not a kubeconfig (not a mapping)", file=file)
        base = str(Path(file).resolve().parent)
        for entry in data.get("contexts") or []:
            name = str((entry or {}).get("name", ""))
            if name and name not in bindings:
                names.append(name)
                ctx = (entry or {}).get("context") or {}
                bindings[name] = (str(ctx.get("cluster", "")), str(ctx.get("user", "")))
        for key, into in (("clusters", clusters), ("users", users)):
            for entry in data.get(key) or []:
                name = str((entry or {}).get("name", ""))
                if name and name not in into:
                    into[name] = {**((entry or {}).get(key[:-1]) or {}), "_dir": base}
        current = current or data.get("current-context") or None
    servers = {c: str(clusters.get(cl, {}).get("server", "")) for c, (cl, _) in bindings.items()}
    return Contexts(names=tuple(names), current=current, path=path, servers=servers, bindings=bindings,
                    clusters=clusters, users=users)


