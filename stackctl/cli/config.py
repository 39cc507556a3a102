"""`stackctl config`: print the resolved stack — exactly what every backend will see."""

from __future__ import annotations

from typing import Any

from stackctl.cli.common import Output, OutputOpt, ProfileOpt, emit, load_profile, warn


def config(profile: ProfileOpt = "local", output: OutputOpt = Output.text) -> None:
    """Print the resolved stack for a profile (Compose files merged and interpolated, overrides applied)."""
    from stackctl.model import to_data
    from stackctl.pipeline import load_stack

    loaded = load_stack(load_profile(profile))
    for w in loaded.stack.warnings:
        warn(str(w))
    data = to_data(loaded.stack)
    data.pop("warnings", None)
    data = {"profile": profile, **data}
    emit(data, output, text=_table(data) if output is Output.text else None)


def _fmt_bytes(n: int | None) -> str:
    if not n:
        return ""
    for unit, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n % size == 0 or n >= size * 10:
            return f"{n / size:g}{unit}"
    return str(n)


def _table(data: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"stack {data['name']} (profile {data['profile']})", title_justify="left")
    for col in ("service", "image / build", "ports", "depends on", "health", "replicas", "cpu/mem limit"):
        table.add_column(col)
    for svc in data.get("services", []):
        deploy = svc.get("deploy", {})
        limits = deploy.get("limits", {})
        image = svc.get("image") or ""
        if svc.get("build"):
            image = f"{image} (build)" if image else "(build)"
        ports = ", ".join(
            f"{p.get('published') + ':' if p.get('published') else ''}{p['target']}" for p in svc.get("ports", []))
        deps = ", ".join(f"{d['service']} ({d.get('condition', 'service_started').removeprefix('service_')})"
                         for d in svc.get("depends_on", []))
        health = " ".join(svc["healthcheck"]["test"][1:])[:40] if svc.get("healthcheck") else ""
        table.add_row(svc["name"], image, ports, deps, health, str(deploy.get("replicas", "")),
                      "/".join(x for x in (str(limits.get("cpus", "")), _fmt_bytes(limits.get("memory"))) if x))
    return table
