"""`stackctl render kubernetes`: the stack of a profile as Kubernetes manifests (nothing is applied)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stackctl.cli import rendering
from stackctl.cli.common import Output, ProfileOpt, emit, info, load_profile, profile_names, project_root, warn
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


@app.command("helm")
def helm(
    profiles: Annotated[list[str] | None, typer.Option(
        "--profile", "-p", metavar="NAME", autocompletion=profile_names,
        help="A profile to render (repeatable; its values go to values-NAME.yaml). Default: every profile "
             "but local. The first one's values are values.yaml's defaults.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="DIR", help="The chart directory (default: deploy/helm/<stack>).")] = None,
    version: Annotated[str, typer.Option(
        "--version", metavar="X.Y.Z", help="The chart's version (Chart.yaml; stackctl never bumps it).")] = "0.1.0",
    app_version: Annotated[str | None, typer.Option(
        "--app-version", metavar="TEXT", help="The chart's appVersion (default: the chart's version).")] = None,
    output: Annotated[Output, typer.Option(
        "--output", "-o", case_sensitive=False,
        help="text: a summary line (stderr); json/yaml: the chart, profiles and files as data on stdout.",
    )] = Output.text,
) -> None:
    """Write a Helm chart of the stack: templates from the profiles' render, what differs between
    profiles (images, replicas, resources, ingress, env values) in values-<profile>.yaml.

    `helm template R DIR -f DIR/values-P.yaml --namespace NS` equals `stackctl render kubernetes -p P`
    (Secrets aside). The chart holds no secret: it references each Secret by name
    (secrets.<name>.existingSecret), which `stackctl promote` or your GitOps tooling creates.
    """
    from rich.markup import escape

    from stackctl.errors import InputError
    from stackctl.kubernetes.helm import default_profiles, render_chart, write_chart
    from stackctl.kubernetes.render.helmchart import chart_name_for
    from stackctl.profile import list_profiles

    root = project_root()
    names = list(dict.fromkeys(profiles)) if profiles else default_profiles(list_profiles(root))
    if not names:
        raise InputError("no profile to render: the project has only the local profile; name one with -p",
                         field="--profile")
    loaded = [load_profile(name) for name in names]
    result = render_chart(loaded, version=version, app_version=app_version)
    for w in (*result.render_warnings, *result.chart.warnings):
        warn(escape(w))
    for n in result.notes:
        info(f"note: {escape(n)}")
    directory = out if out is not None else root / "deploy" / "helm" / chart_name_for(result.stack)
    shown = str(out) if out is not None else str(directory.relative_to(root)) if directory.is_relative_to(root) \
        else str(directory)
    write_chart(result, directory, shown=shown)
    if result.chart.secrets:
        info(f"note: the chart references Secret {', '.join(result.chart.secrets)} by name "
             f"(secrets.<name>.existingSecret); create it with `stackctl promote` or the GitOps output")
    if output is not Output.text:
        emit({"chart": shown, "profiles": names, "defaults": result.chart.defaults_profile,
              "written": list(result.written), "removed": list(result.removed), "unchanged": result.unchanged,
              "secrets": list(result.chart.secrets)}, output)
        return
    changed = (f"{len(result.written)} file{'s' if len(result.written) != 1 else ''} written"
               + (f", {len(result.removed)} removed" if result.removed else "")
               + (f", {result.unchanged} unchanged" if result.unchanged else ""))
    info(f"chart {shown} for profile{'s' if len(names) != 1 else ''} {', '.join(names)} (defaults: "
         f"{result.chart.defaults_profile}): {changed}")
@app.command("gitops")
def gitops(
    profiles: Annotated[list[str] | None, typer.Option(
        "--profile", "-p", metavar="NAME", autocompletion=profile_names,
        help="A profile to render (repeatable); default: every profile with a kubernetes: section.")] = None,
    out: Annotated[Path, typer.Option(
        "--out", metavar="DIR", help="The layout's directory (base/, overlays/<profile>/, clusters/<profile>/).",
    )] = Path("deploy/gitops"),
    output: Annotated[Output, typer.Option(
        "--output", "-o", case_sensitive=False,
        help="text: a line per file written or removed (stderr); json/yaml: the same as data on stdout.",
    )] = Output.text,
) -> None:
    """Write a kustomize layout for Argo CD or Flux: a base (what the profiles share) and one overlay per
    profile, so that `kustomize build overlays/<profile>` is `render kubernetes -p <profile>`.

    Secrets are never written in plaintext: each profile's `gitops.secrets` provider makes them SOPS
    files, SealedSecrets or ExternalSecrets (docs/gitops.md). Only files whose bytes change are written;
    an encrypted Secret whose values did not change is kept as it was.
    """
    from stackctl.cli.common import project_root
    from stackctl.kubernetes.gitops import default_profiles, render_gitops

    root = project_root()
    names = sorted(set(profiles)) if profiles else default_profiles(root)
    loaded = [load_profile(name) for name in names]
    target = out if out.is_absolute() else root / out
    outcome = render_gitops(loaded, target, shown=str(out))
    for w in outcome.warnings:
        warn(w)
    if output is not Output.text:
        emit({"out": str(out), "profiles": outcome.profiles, "written": outcome.written,
              "removed": outcome.removed, "unchanged": outcome.unchanged}, output)
        return
    for rel in outcome.written:
        info(f"wrote {rel}")
    for rel in outcome.removed:
        info(f"removed {rel}")
    changed = len(outcome.written) + len(outcome.removed)
    summary = f"{changed} file{'s' if changed != 1 else ''} changed" if changed else "nothing changed"
    info(f"{out} (profiles {', '.join(outcome.profiles)}): {summary}, {outcome.unchanged} unchanged")
