"""`stackctl promote PROFILE`, `stackctl history PROFILE`, `stackctl rollback PROFILE`: the stack on a
Kubernetes cluster. Glue only: the work is in `stackctl.kubernetes.promote` and its neighbours.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stackctl.cli.common import (
    Output,
    OutputOpt,
    console,
    emit,
    err_console,
    info,
    load_profile,
    warn,
)

if TYPE_CHECKING:
    from stackctl.kubernetes.apply import Cluster
    from stackctl.kubernetes.history import Release
    from stackctl.kubernetes.promote import Result
    from stackctl.kubernetes.rollout import View
    from stackctl.profile import Profile

ProfileArg = Annotated[str, typer.Argument(help="Profile name (profiles/<name>.yaml); it needs a kubernetes: section.",
                                           show_default=False)]
ContextOpt = Annotated[str | None, typer.Option(
    "--context", help="kubeconfig context (default: the profile's kubernetes.context, else the current one). "
                      "A protected profile accepts only its own.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for the rollout.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (protected profiles ask).")]
ForceOpt = Annotated[bool, typer.Option("--force-conflicts",
                                        help="Take over fields that other field managers own (else: reported).")]
PruneOpt = Annotated[bool, typer.Option("--prune/--no-prune",
                                        help="Delete the stack's objects that it no longer renders.")]
FailFastOpt = Annotated[bool, typer.Option(
    "--fail-fast/--no-fail-fast",
    help="Stop waiting as soon as a pod of the new version cannot become ready by itself (image not pulled, "
         "crash loop, fits no node, probe never passing); --no-fail-fast waits for --timeout.")]


def promote(
    profile: ProfileArg,
    context: ContextOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Server-side dry run of every change; nothing is "
                                                            "changed, built or pushed.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Show a diff per object against the cluster; exit 0 when "
                                                      "there is none, 1 when there are differences, 2 on error.")]
    = False,
    prune: PruneOpt = True,
    atomic: Annotated[bool, typer.Option("--atomic", help="Roll back to the previous revision when the rollout "
                                                          "fails or times out.")] = False,
    timeout: TimeoutOpt = 300.0,
    fail_fast: FailFastOpt = True,
    yes: YesOpt = False,
    force_conflicts: ForceOpt = False,
    finalize: Annotated[bool, typer.Option("--finalize", help="Blue-green: remove the previous colour (kept "
                                                              "running after a switch for an instant "
                                                              "rollback).")] = False,
    abort: Annotated[bool, typer.Option("--abort", help="Canary: delete the stack's canary Deployments (the stable "
                                                        "ones still run the previous version) and abort its Argo "
                                                        "Rollouts in progress; nothing else is applied.")] = False,
    output: OutputOpt = Output.text,
) -> None:
    """Apply the profile's stack to its Kubernetes cluster and wait until it has rolled out."""
    from stackctl.errors import StackctlError
    from stackctl.kubernetes import images
    from stackctl.kubernetes import promote as kp
    from stackctl.kubernetes.gather import render_profile

    if abort:
        _abort(profile, context, yes, output)
        return
    _warm_compose()
    prof = load_profile(profile)
    ctx, server = _context(prof, context)
    readonly = dry_run or diff
    if not readonly:
        _confirm(prof, ctx, server, yes, action="promote")
    from stackctl.kubernetes.apply import connect_in_background

    connecting = connect_in_background(ctx)  # the client import overlaps with rendering
    environ = _environ(prof)
    rendered = render_profile(prof, with_values=True, environ=environ, env_from_store=environ is not None)
    for w in rendered.warnings:
        warn(str(w))
    plans = images.plan(rendered.loaded.stack, rendered.target.kubernetes, root=prof.root)
    for res in images.ensure(plans, dry_run=readonly, log=info):
        info(f"image {res.plan.ref}: {_IMAGE_WORDS[res.action]}")
    objects = images.retag(rendered.rendered.objects, plans)
    release = _release(prof, rendered.loaded.stack.name)
    cluster = connecting()
    _require_argo(cluster, objects, prof, ctx)
    if diff:
        try:
            lines, differ = kp.diff(cluster, release, objects, prune=prune, force_conflicts=force_conflicts)
        except StackctlError as exc:  # diff's own exit codes: 0 same, 1 different, 2 trouble
            err_console().print(f"[bold red]Error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        finally:
            cluster.close()
        sys.stdout.write("".join(lines))
        sys.stdout.flush()
        info(f"{differ} object(s) differ" if differ else "no differences")
        raise typer.Exit(1 if differ else 0)
    options = kp.Options(dry_run=dry_run, prune=prune, atomic=atomic, timeout=timeout,
                         force_conflicts=force_conflicts, finalize=finalize, fail_fast=fail_fast)
    verb = "dry run of promote" if dry_run else "promote"
    info(f"{verb}: stack {release.stack} (profile {prof.name}) → context {ctx} ({cluster.server}), "
         f"namespace {release.namespace}")
    result = _deploy(cluster, release, options, ctx, output,
                     lambda d: d.deploy(objects, description=f"promote {prof.name}"))
    if output is not Output.text:
        emit(result.as_data(), output)
        return
    for note in result.notes:
        info(note)
    if dry_run:
        _print_plan(result)
        return
    _print_summary(result, "promoted", ctx)


def _require_argo(cluster: Cluster, objects: Any, prof: Profile, ctx: str) -> None:
    """Services rendered as Argo Rollouts need the Rollout kind in the cluster: say so before applying."""
    from stackctl.errors import InputError
    from stackctl.kubernetes import argo

    names = argo.fields(objects)
    if names and not argo.served(cluster):
        cluster.close()
        raise InputError(f"runs as an Argo Rollouts Rollout, and context {ctx} does not serve "
                         f"{argo.API_VERSION} {argo.KIND} (Argo Rollouts is not installed there)",
                         file=prof.display_path, field=names[0],
                         hint="install Argo Rollouts in the cluster, or use controller: stackctl "
                              "(promote runs the canary steps itself)")


def _abort(profile: str, context: str | None, yes: bool, output: Output) -> None:
    from stackctl.kubernetes import argo, canary
    from stackctl.kubernetes import history as kh
    from stackctl.kubernetes.labels import L_APPLYSET_PART_OF

    prof = load_profile(profile)
    cluster, ctx = _connect(prof, context)
    try:
        release = _release(prof, _stack_name(prof))
        _confirm(prof, ctx, cluster.server, yes, action="abort the canaries")
        deleted = canary.abort(cluster, release)
        aborted = (argo.abort(cluster, release.namespace, f"{L_APPLYSET_PART_OF}={release.applyset_id}")
                   if argo.served(cluster) else [])
    finally:
        cluster.close()
    if output is not Output.text:
        emit({"stack": release.stack, "namespace": release.namespace, "deleted": [str(r) for r in deleted],
              "aborted": [str(r) for r in aborted]}, output)
        return
    if not deleted and not aborted:
        console().print(f"no canary of stack {release.stack} in namespace {release.namespace} (context {ctx})",
                        markup=False, highlight=False, soft_wrap=True)
        return
    if deleted:
        console().print(f"aborted: deleted {', '.join(str(r) for r in deleted)}; the stable Deployments run the "
                        "previous version", markup=False, highlight=False, soft_wrap=True)
    if aborted:
        console().print(f"aborted: {', '.join(str(r) for r in aborted)} (Argo Rollouts scales the canary down; "
                        "the stable pods keep serving)", markup=False, highlight=False, soft_wrap=True)


def history(profile: ProfileArg, context: ContextOpt = None, output: OutputOpt = Output.text) -> None:
    """List the stack's revisions stored in the cluster (newest last)."""
    from stackctl.kubernetes import history as kh

    prof = load_profile(profile)
    cluster, ctx = _connect(prof, context)
    try:
        release = _release(prof, _stack_name(prof))
        revs = kh.revisions(cluster, release)
    finally:
        cluster.close()
    data = [r.as_data() for r in revs]
    if output is not Output.text:
        emit({"stack": release.stack, "namespace": release.namespace, "context": ctx, "revisions": data}, output)
        return
    if not revs:
        info(f"no revisions of {release.stack} in namespace {release.namespace} (context {ctx})")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    for col in ("REVISION", "STATUS", "CREATED", "PROFILE", "DESCRIPTION"):
        table.add_column(col, no_wrap=col != "DESCRIPTION")
    for r in revs:
        table.add_row(str(r.number), r.status, r.created, r.profile, r.description)
    console().print(table)


def rollback(
    profile: ProfileArg,
    to: Annotated[int | None, typer.Option("--to", min=1, help="Revision to go back to (default: the one "
                                                                   "before the current).")] = None,
    context: ContextOpt = None,
    prune: PruneOpt = True,
    timeout: TimeoutOpt = 300.0,
    fail_fast: FailFastOpt = True,
    rerun_jobs: Annotated[bool, typer.Option("--rerun-jobs", help="Run the revision's Jobs again (by default "
                                             "they are not: they completed when it was deployed).")] = False,
    yes: YesOpt = False,
    force_conflicts: ForceOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Deploy a stored revision again (its objects, secrets included) and wait for it. Its Jobs
    (migrations, ...) completed when it was deployed and are not run again unless --rerun-jobs."""
    from stackctl.kubernetes import history as kh
    from stackctl.kubernetes import promote as kp

    prof = load_profile(profile)
    cluster, ctx = _connect(prof, context)
    release = _release(prof, _stack_name(prof))
    target = kh.pick_rollback(kh.revisions(cluster, release), to,
                              where=f"namespace {release.namespace} (context {ctx})")
    _confirm(prof, ctx, cluster.server, yes, action=f"roll back to revision {target.number}")
    info(f"rollback: stack {release.stack} → revision {target.number} ({target.description}), context {ctx}, "
         f"namespace {release.namespace}")
    options = kp.Options(prune=prune, timeout=timeout, force_conflicts=force_conflicts, fail_fast=fail_fast)
    from stackctl.kubernetes.apply import Ref

    objects, skipped = kh.rollback_objects(target, rerun_jobs=rerun_jobs)
    jobs = {o["metadata"]["name"]: o for o in target.objects() if o.get("kind") == "Job"}
    live = {name for name in skipped if cluster.get(Ref.of(jobs[name])) is not None}
    objects += [jobs[name] for name in sorted(live)]
    gone = sorted(set(skipped) - live)
    if gone:
        info(f"not run again: Job {', '.join(gone)} (completed when revision {target.number} was deployed; "
             "--rerun-jobs runs them)")
    result = _deploy(cluster, release, options, ctx, output,
                     lambda d: d.deploy(objects, description=f"rollback to {target.number}"))
    if output is not Output.text:
        emit(result.as_data(), output)
        return
    _print_summary(result, f"rolled back to revision {target.number}:", ctx)


def run_job(
    profile: ProfileArg,
    name: Annotated[str, typer.Argument(help="The CronJob: its Compose service name (or the CronJob's name).",
                                        show_default=False)],
    context: ContextOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for the Job.")] = 600.0,
    yes: YesOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Start a Job from one of the stack's CronJobs now and wait until it completes."""
    from stackctl.errors import OperationError
    from stackctl.kubernetes import runjob

    prof = load_profile(profile)
    cluster, ctx = _connect(prof, context)
    view = _view(output)
    try:
        release = _release(prof, _stack_name(prof))
        _confirm(prof, ctx, cluster.server, yes, action=f"run a Job from CronJob {name}")
        res = runjob.run(cluster, release, name, timeout=timeout, view=view)
    finally:
        view.close()
        cluster.close()
    if output is not Output.text:
        emit(res.as_data(), output)
    if not res.ok:
        con = err_console()
        con.print("[bold]Why:[/]", markup=True)
        for line in res.report:
            con.print("  " + line, markup=False, highlight=False, soft_wrap=True)
        raise OperationError(f"{res.job} (from {res.cronjob}) {res.message}")
    if output is Output.text:
        console().print(f"{res.job} (from {res.cronjob}) completed in {res.elapsed:.1f}s", markup=False,
                        highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
_IMAGE_WORDS = {"present": "already in the registry", "pushed": "pushed", "built": "built and pushed",
                "planned": "would be built and pushed"}


def _kube(prof: Profile) -> Any:
    from stackctl.errors import ProfileError

    if prof.kubernetes is None:
        raise ProfileError("promote needs a kubernetes: section (namespace, and the context to promote to)",
                           file=prof.display_path, field="kubernetes")
    return prof.kubernetes


def _context(prof: Profile, requested: str | None) -> tuple[str, str]:
    """The context to use (guard rails checked) and its API server URL."""
    from stackctl.errors import InputError
    from stackctl.kubernetes import apply as ka
    from stackctl.kubernetes.promote import choose_context

    kube = _kube(prof)
    found = ka.contexts()
    ctx = choose_context(requested=requested, profile_context=kube.context, protected=kube.protected,
                         current=found.current, profile_file=prof.display_path)
    if ctx not in found.names:
        raise InputError(f"no context {ctx!r} in the kubeconfig (contexts: {', '.join(found.names) or 'none'})",
                         file=found.path, field="contexts")
    return ctx, found.servers.get(ctx, "")


def _connect(prof: Profile, requested: str | None) -> tuple[Cluster, str]:
    from stackctl.kubernetes import apply as ka

    ctx, _ = _context(prof, requested)
    return ka.connect(ctx), ctx


def _warm_compose() -> None:
    """Run the Compose version check (rendering needs it first) on a thread while the profile loads:
    it is a process start of its own. Its result is cached; a failure shows when rendering asks."""
    import contextlib
    import threading

    from stackctl.compose import cli

    def check() -> None:
        with contextlib.suppress(Exception):  # rendering calls it again and reports it
            cli.compose_version()

    threading.Thread(target=check, name="compose-version", daemon=True).start()


def _environ(prof: Profile) -> dict[str, str] | None:
    """What Compose interpolates with: the environment plus the profile's env as `env render` would
    write it, secrets from the store included — the current values, not a possibly stale env file."""
    if not prof.secrets.store.is_file():
        return None
    import os

    from stackctl.secrets import env_values

    return {**os.environ, **env_values(prof)}


def _stack_name(prof: Profile) -> str:
    if prof.stack:
        return prof.stack
    from stackctl.pipeline import load_stack

    return load_stack(prof).stack.name


def _release(prof: Profile, stack: str) -> Release:
    from stackctl.kubernetes.history import Release
    from stackctl.kubernetes.names import label_value

    return Release(stack=label_value(stack), namespace=_kube(prof).namespace, profile=prof.name)


def _confirm(prof: Profile, ctx: str, server: str, yes: bool, *, action: str) -> None:
    from stackctl.errors import InputError, OperationError

    if yes or not _kube(prof).protected:
        return
    question = (f"{prof.display_path} is protected: {action} to context {ctx} ({server}), namespace "
                f"{_kube(prof).namespace}?")
    try:
        ok = typer.confirm(question, default=False, err=True)
    except typer.Abort:
        raise InputError(f"the profile is protected and nobody confirmed ({action})", file=prof.display_path,
                         field="kubernetes.protected", hint="answer the question on a terminal, or pass --yes") from None
    if not ok:
        raise OperationError(f"{action} not confirmed")


def _view(output: Output) -> View:
    from stackctl.kubernetes.rollout import LineView, LiveView

    con = err_console()
    if output is Output.text and con.is_terminal:
        return LiveView(con)
    return LineView(con)


def _deploy(cluster: Cluster, release: Release, options: Any, ctx: str, output: Output, run: Any) -> Result:
    from stackctl.kubernetes.promote import Deployer, RolloutFailed

    view = _view(output)
    deployer = Deployer(cluster, release, view=view, options=options, context=ctx)
    try:
        return run(deployer)  # type: ignore[no-any-return]
    except RolloutFailed as exc:
        view.close()
        con = err_console()
        con.print("[bold]Why:[/]", markup=True)
        for line in exc.report:
            con.print("  " + line, markup=False, highlight=False, soft_wrap=True)
        raise
    finally:
        view.close()
        deployer.close()
        cluster.close()


def _print_summary(result: Result, verb: str, ctx: str) -> None:
    s = result.summary()
    rel = result.release
    kept = ""
    if result.kept:
        kept = (f"  kept {len(result.kept)} object(s) the stack no longer renders (--no-prune, or "
                f"stackctl.io/prune: \"false\"): " + ", ".join(str(r) for r in result.kept))
    if not result.changed:
        console().print(f"no changes: stack {rel.stack} in namespace {rel.namespace} (context {ctx}) is up to date"
                        + (f" at revision {result.revision}" if result.revision else "")
                        + f" ({result.elapsed:.1f}s)", markup=False, highlight=False, soft_wrap=True)
        if kept:
            console().print(kept, markup=False, highlight=False, soft_wrap=True)
        return
    console().print(f"{verb} stack {rel.stack} to namespace {rel.namespace} (context {ctx}): revision "
                    f"{result.revision} in {result.elapsed:.1f}s", markup=False, highlight=False, soft_wrap=True)
    console().print(f"  created {s['created']}, configured {s['configured']}, unchanged {s['unchanged']}, "
                    f"pruned {s['pruned']}", markup=False, highlight=False, soft_wrap=True)
    if kept:
        console().print(kept, markup=False, highlight=False, soft_wrap=True)


def _print_plan(result: Result) -> None:
    lines = [f"  {_PLAN_WORDS[a.action]:<10} {a.ref}" for a in result.applied if a.action != "unchanged"]
    lines += [f"  {'prune':<10} {r}" for r in result.deleted]
    lines += [f"  {'keep':<10} {r} (not pruned)" for r in result.kept]
    out = console()
    out.print(f"dry run: {len(lines)} change(s), {result.count('unchanged')} object(s) unchanged; nothing was changed",
              markup=False, highlight=False, soft_wrap=True)
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


_PLAN_WORDS = {"created": "create", "configured": "configure", "unchanged": "unchanged"}
