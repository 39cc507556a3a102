"""`stackctl config`: print the resolved stack — exactly what every backend will see."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stackctl.cli.common import Output, OutputOpt, ProfileOpt, emit, info, load_profile, warn


def config(profile: ProfileOpt = "local", output: OutputOpt = Output.text,
           reveal: Annotated[bool, typer.Option(
               "--reveal", help="Show secret values (from the encrypted store; needs your key). "
                                "Without it every secret shows as <secret:NAME>, also inside other values.",
           )] = False) -> None:
    """Print the resolved stack for a profile (Compose files merged and interpolated, overrides applied).

    The profile's env is computed in memory from .env.example, the env file if there is one, the
    profile's env.values and the encrypted store: no plaintext env file is needed (production).

    Example: stackctl config -p production -o yaml
    """
    from stackctl.model import to_data
    from stackctl.pipeline import load_stack

    loaded = load_stack(load_profile(profile), secrets="values" if reveal else "masked")
    for w in loaded.stack.warnings:
        warn(str(w))
    for n in loaded.notes:
        info(f"note: {n}")
    data = to_data(loaded.stack)
    data.pop("warnings", None)
    data = {"profile": profile, **data}
    emit(data, output, text=_table(data, str(loaded.profile.root)) if output is Output.text else None)


def _fmt_bytes(n: int | None) -> str:
    if not n:
        return ""
    for unit, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n % size == 0 or n >= size * 10:
            return f"{n / size:g}{unit}"
    return str(n)


def _table(data: dict[str, Any], root: str) -> Any:
    """A compact, readable summary: one block per service (use -o yaml/json for everything)."""
    from rich.text import Text

    services = data.get("services", [])
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"stack {data['name']}", style="bold")
    out.append(f" (profile {data['profile']}, {len(services)} services)\n")
    width = max((len(s["name"]) for s in services), default=0) + 2
    for svc in services:
        deploy = svc.get("deploy", {})
        image = svc.get("image") or ""
        if svc.get("build"):
            context = str(svc["build"].get("context", "."))
            image += f" (build {context.removeprefix(root + '/')})"
        facts = [image]
        if deploy.get("replicas") is not None:
            facts.append(f"replicas {deploy['replicas']}")
        if ports := svc.get("ports"):
            facts.append("ports " + ", ".join(
                f"{p['published'] + ':' if p.get('published') else ''}{p['target']}" for p in ports))
        if deps := svc.get("depends_on"):
            facts.append("after " + ", ".join(
                f"{d['service']} ({d.get('condition', 'service_started').removeprefix('service_')})" for d in deps))
        if hc := svc.get("healthcheck"):
            facts.append(f"health every {hc.get('interval', 30):g}s: " + " ".join(hc.get("test", [])[1:])[:70])
        limits = deploy.get("limits", {})
        if limits:
            facts.append("limits " + " / ".join(
                x for x in (f"{limits['cpus']:g} CPU" if "cpus" in limits else "",
                            _fmt_bytes(limits.get("memory"))) if x))
        out.append(f"  {svc['name']:<{width}}", style="bold")
        out.append(facts[0] + "\n")
        for fact in facts[1:]:
            out.append(" " * (width + 2) + fact + "\n")
    return out
