"""`stackctl render kubernetes`: the stack of a profile as Kubernetes manifests (nothing is applied)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stackctl.cli import rendering
from stackctl.cli.common import ProfileOpt
from stackctl.cli.rendering import Format as Format
from stackctl.cli.rendering import StrictError as StrictError

app = typer.Typer(help="Render the stack for a backend (Kubernetes manifests), without applying anything.",
                  no_args_is_help=True)


@app.command("kubernetes")
def kubernetes(
    profile: ProfileOpt = "local",
    output: Annotated[str, typer.Option(
        "--output", "-o", metavar="yaml|json",
        help="Format of the stream on stdout: yaml (one document per object) or json (one List).",
    )] = "yaml",
    out_dir: Annotated[Path | None, typer.Option(
        "--out-dir", "-d", metavar="DIR",
        help="Write one file per object into DIR (Secrets with mode 0600) instead of a stream on stdout.",
    )] = None,
    fmt: Annotated[Format, typer.Option(
        "--format", case_sensitive=False,
        help="Layout of --out-dir: yaml (plain files) or kustomize (plus a kustomization.yaml).")] = Format.yaml,
    validate: Annotated[bool, typer.Option(
        "--validate", help="Check every object against the official schema of the target Kubernetes version.",
    )] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Fail (exit 1) when anything cannot be carried over: every warning is listed as an "
                         "error, and nothing is printed or written (with --report: after the report).",
    )] = False,
    report: Annotated[bool, typer.Option(
        "--report", help="Print, instead of the manifests, what each Compose field of each service became "
                         "(object and field path) or why it was dropped; -o json for the same as data.",
    )] = False,
    include_secrets: Annotated[bool, typer.Option(
        "--include-secrets", help="Include the Secrets, with their real values from the encrypted store (needs "
                                  "your key). Without it Secrets are left out (named on stderr): a Secret "
                                  "without its values would blank the cluster's when applied.")] = False,
    kube_version: Annotated[str | None, typer.Option(
        "--kube-version", metavar="X.Y", help="Target Kubernetes version (default: the profile's, else 1.35).",
    )] = None,
) -> None:
    """Render the profile's stack as Kubernetes objects: workloads, Services, ConfigMaps, Secrets,
    claims, NetworkPolicies, Ingress, autoscalers and disruption budgets, in apply order.

    Everything printed or written is safe to `kubectl apply`: Secrets appear only with their real
    values (--include-secrets); without it they are left out and named on stderr.
    """
    rendering.kubernetes(profile=profile, output=output, out_dir=out_dir, fmt=fmt, validate=validate, strict=strict,
                         report=report, include_secrets=include_secrets, kube_version=kube_version)
