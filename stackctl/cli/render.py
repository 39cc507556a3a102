"""`stackctl render kubernetes`: the stack of a profile as Kubernetes manifests (nothing is applied)."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer

from stackctl.cli.common import ProfileOpt, err_console, info, load_profile, warn

app = typer.Typer(help="Render the stack for a backend (Kubernetes manifests), without applying anything.",
                  no_args_is_help=True)


class Format(enum.StrEnum):
    yaml = "yaml"
    kustomize = "kustomize"


MAX_PROBLEMS_SHOWN = 50


@app.command("kubernetes")
def kubernetes(
    profile: ProfileOpt = "local",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="DIR",
        help="Write one file per object into DIR (Secrets with mode 0600) instead of a YAML stream on stdout.",
    )] = None,
    fmt: Annotated[Format, typer.Option(
        "--format", case_sensitive=False,
        help="yaml: plain manifests; kustomize: plus a kustomization.yaml (needs -o DIR).")] = Format.yaml,
    validate: Annotated[bool, typer.Option(
        "--validate", help="Check every object against the official schema of the target Kubernetes version.",
    )] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Fail (exit 2) when anything cannot be carried over (every warning becomes an error).",
    )] = False,
    with_secrets: Annotated[bool, typer.Option(
        "--with-secrets", help="Fill Secret values from the encrypted store (needs -o DIR and the store key). "
                               "Without it Secrets are rendered with empty values, safe to print.")] = False,
    kube_version: Annotated[str | None, typer.Option(
        "--kube-version", metavar="X.Y", help="Target Kubernetes version (default: the profile's, else 1.35).",
    )] = None,
) -> None:
    """Render the profile's stack as Kubernetes objects: workloads, Services, ConfigMaps, Secrets,
    claims, NetworkPolicies, Ingress, autoscalers and disruption budgets, in apply order."""
    from stackctl.errors import InputError, OperationError
    from stackctl.kubernetes.gather import render_profile

    if with_secrets and output is None:
        raise InputError("writes Secret values, so it needs -o DIR (the files are written with mode 0600); "
                         "stdout stays free of secrets", field="--with-secrets")
    if fmt is Format.kustomize and output is None:
        raise InputError("kustomize needs -o DIR (a kustomization lists files)", field="--format")
    loaded_profile = load_profile(profile)
    result = render_profile(loaded_profile, with_values=with_secrets, kube_version=kube_version)
    warnings = result.warnings
    for w in warnings:
        warn(str(w))
    for n in result.rendered.notes:
        info(f"note: {n}")
    if strict and warnings:
        raise InputError(f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''} with --strict "
                         f"(first: {warnings[0]})")
    objects = list(result.rendered.objects)
    version = result.target.kubernetes.version
    if validate:
        from stackctl.kubernetes.validate import validate as run_validate

        problems = run_validate(objects, version)
        for problem in problems[:MAX_PROBLEMS_SHOWN]:
            err_console().print(f"invalid: {problem}", highlight=False, soft_wrap=True, markup=False)
        if len(problems) > MAX_PROBLEMS_SHOWN:
            info(f"... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
        if problems:
            raise OperationError(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} against the "
                                 f"Kubernetes {version} schema; nothing written")
    from stackctl.kubernetes import write

    summary = (f"{len(objects)} objects for namespace {result.target.kubernetes.namespace} "
               f"(profile {profile}, Kubernetes {version}"
               f"{', validated' if validate else ''}{', Secret values omitted' if not with_secrets else ''})")
    if output is None:
        sys.stdout.write(write.to_stream(objects))
        sys.stdout.flush()
        info(f"rendered {summary}")
        return
    write.write_directory(objects, output, fmt=fmt.value, shown=str(output))
    info(f"wrote {summary} to {output}")
