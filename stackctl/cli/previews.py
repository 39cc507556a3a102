"""`stackctl previews list|prune`: the preview environments `promote PROFILE --preview NAME` made.
Glue only: the work is in `stackctl.kubernetes.deploy.previews`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from stackctl.cli.common import Output, OutputOpt, console, emit, info, table

if TYPE_CHECKING:
    from stackctl.kubernetes.client import Cluster

app = typer.Typer(help="Preview environments: the namespaces `stackctl promote PROFILE --preview NAME` made.",
                  no_args_is_help=True)

ContextOpt = Annotated[str | None, typer.Option(
    "--context", help="kubeconfig context (default: the kubeconfig's current one).")]


def _connect(context: str | None) -> tuple[Cluster, str]:
    from stackctl.errors import InputError
    from stackctl.kubernetes.client import connect, contexts

    found = contexts()
    ctx = context or found.current
    if not ctx:
        raise InputError("no kubeconfig context: the kubeconfig has no current-context", field="--context",
                         hint="pass --context")
    if ctx not in found.names:
        raise InputError(f"no context {ctx!r} in the kubeconfig (contexts: {', '.join(found.names) or 'none'})",
                         file=found.path, field="contexts")
    return connect(ctx), ctx


@app.command("list")
def list_(context: ContextOpt = None, output: OutputOpt = Output.text) -> None:
    """List the preview environments of the cluster: name, profile, namespace, branch, created, expires."""
    from stackctl.kubernetes.deploy import previews

    cluster, ctx = _connect(context)
    try:
        found = previews.list_previews(cluster)
    finally:
        cluster.close()
    if output is not Output.text:
        emit({"context": ctx, "previews": [p.as_data() for p in found]}, output)
        return
    if not found:
        info(f"no preview environments in context {ctx}")
        return
    console().print(table(("NAME", "PROFILE", "NAMESPACE", "BRANCH", "CREATED", "EXPIRES", "EXPIRED"),
                          ((p.name, p.profile, p.namespace, p.branch or "-", p.created or "-", p.expires or "-",
                            "terminating" if p.terminating else ("yes" if p.expired else "no")) for p in found),
                          key=("NAME", "NAMESPACE"), boxed=False))


@app.command("prune")
def prune(
    names: Annotated[list[str] | None, typer.Argument(
        metavar="[NAME]...", help="Previews to delete: a preview name (every profile's) or its namespace.",
        show_default=False)] = None,
    expired: Annotated[bool, typer.Option("--expired", help="The expired previews (of those named, if any).")]
    = False,
    context: ContextOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for the namespaces to "
                                                                   "be gone.")] = 300.0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    output: OutputOpt = Output.text,
) -> None:
    """Delete preview environments (their namespaces, with everything in them) and wait until they
    are gone. Only namespaces labelled as previews are ever deleted."""
    from stackctl.errors import InputError, OperationError
    from stackctl.kubernetes.deploy import previews

    cluster, ctx = _connect(context)
    try:
        chosen = previews.select(cluster, names or [], expired=expired)
        if chosen and not yes:
            shown = ", ".join(f"{p.namespace} (preview {p.name} of {p.profile})" for p in chosen)
            try:
                ok = typer.confirm(f"delete namespace {shown} in context {ctx}?", default=False, err=True)
            except typer.Abort:
                raise InputError("nobody confirmed the deletion", field="--yes",
                                 hint="answer the question on a terminal, or pass --yes") from None
            if not ok:
                raise OperationError("prune not confirmed")
        previews.delete(cluster, chosen, timeout=timeout)
    finally:
        cluster.close()
    if output is not Output.text:
        emit({"context": ctx, "deleted": [p.as_data() for p in chosen]}, output)
        return
    if not chosen:
        info(f"no expired previews in context {ctx}")
        return
    for p in chosen:
        console().print(f"deleted preview {p.name} (profile {p.profile}): namespace {p.namespace}", markup=False,
                        highlight=False, soft_wrap=True)
