"""`stackctl promote PROFILE`, `stackctl history PROFILE`, `stackctl rollback PROFILE`, `stackctl run-job`:
the stack on a Kubernetes cluster. Glue only: parse the options, call one function of
`stackctl.kubernetes.deploy.commands`, report the result.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from stackctl.cli.common import (
    Output,
    OutputOpt,
    console,
    emit,
    err_console,
    info,
    load_profile,
    profile_names,
    service_names,
    table,
    warn,
)

if TYPE_CHECKING:
    from stackctl.kubernetes.deploy.commands import Terminal
    from stackctl.kubernetes.deploy.deployer import Result
    from stackctl.kubernetes.deploy.previews import Request as PreviewRequest
    from stackctl.kubernetes.deploy.watch import View
    from stackctl.profile import Profile

ProfileArg = Annotated[str, typer.Argument(help="Profile name (profiles/<name>.yaml); it needs a kubernetes: section.",
                                           show_default=False, autocompletion=profile_names)]
ContextOpt = Annotated[str | None, typer.Option(
    "--context", help="kubeconfig context (default: the profile's kubernetes.context, else the current one). "
                      "A protected profile accepts only its own.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for the rollout.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (protected profiles ask).")]
ForceOpt = Annotated[bool, typer.Option("--force-conflicts",
                                        help="Take over fields that other field managers own (else: reported).")]
PruneOpt = Annotated[bool, typer.Option("--prune/--no-prune",
                                        help="Delete the stack's objects that it no longer renders.")]
MessageOpt = Annotated[str, typer.Option("--message", "-m", help="Why: stored with the revision, shown by "
                                                                  "`stackctl history`.", show_default=False)]
PreviewOpt = Annotated[str | None, typer.Option(
    "--preview", metavar="NAME", help="A preview environment: the profile's stack in its own namespace "
                                      "<namespace>-NAME (see `stackctl previews`).", show_default=False)]
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
    message: MessageOpt = "",
    preview: PreviewOpt = None,
    ttl: Annotated[str | None, typer.Option(
        "--ttl", metavar="DURATION", help="With --preview: expire the preview this long from now (30m, 72h; "
                                          "default: kubernetes.preview.ttl, else 72h; a re-promote without "
                                          "--ttl keeps the expiry).", show_default=False)] = None,
    output: OutputOpt = Output.text,
) -> None:
    """Apply the profile's stack to its Kubernetes cluster and wait until it has rolled out."""
    started = time.monotonic()  # the summary says how long the user waited: builds and rendering included
    from stackctl.kubernetes.deploy import commands
    from stackctl.kubernetes.deploy.deployer import Options

    if abort:
        _abort(profile, context, yes, output, preview)
        return
    request = _preview_request(preview, ttl)
    commands.warm_compose()  # while the profile loads
    term = _terminal(output, started)
    prep = commands.prepare(load_profile(profile), context, readonly=dry_run or diff, yes=yes, term=term,
                            preview=request)
    if diff:
        with _diff_errors():
            lines, differ = commands.diff(prep, prune=prune, force_conflicts=force_conflicts)
        _print_diff(lines, differ)
    options = Options(dry_run=dry_run, prune=prune, atomic=atomic, timeout=timeout,
                      force_conflicts=force_conflicts, finalize=finalize, fail_fast=fail_fast)
    with _why():
        result = commands.promote(prep, options, term, message=message)
    if output is not Output.text:
        emit(result.as_data(), output)
        return
    for note in result.notes:
        info(note)
    if dry_run:
        _print_plan(result)
        return
    _print_summary(result, "promoted", prep.context)


def _preview_request(preview: str | None, ttl: str | None) -> PreviewRequest | None:
    from stackctl.errors import InputError
    from stackctl.kubernetes.deploy.previews import Request
    from stackctl.units import parse_seconds

    if preview is None:
        if ttl is not None:
            raise InputError("--ttl is for a preview environment", field="--ttl", hint="add --preview NAME")
        return None
    seconds = None
    if ttl is not None:
        try:
            seconds = parse_seconds(ttl)
        except ValueError as exc:
            raise InputError(str(exc), field="--ttl") from None
        if seconds <= 0:
            raise InputError("must be more than 0s", field="--ttl")
    return Request(name=preview, ttl=seconds)


def _profile(profile: str, preview: str | None) -> Profile:
    """The profile, or with `--preview` the profile in its preview's namespace."""
    prof = load_profile(profile)
    if preview is None:
        return prof
    from stackctl.kubernetes.deploy.previews import profile_for

    return profile_for(prof, preview)


@contextlib.contextmanager
def _diff_errors() -> Iterator[None]:
    """`--diff` has diff's exit codes: 0 same, 1 different, 2 trouble."""
    from stackctl.errors import StackctlError

    try:
        yield
    except StackctlError as exc:
        err_console().print(f"[bold red]Error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _print_diff(lines: list[str], differ: int) -> None:
    sys.stdout.write("".join(lines))
    sys.stdout.flush()
    info(f"{differ} object(s) differ" if differ else "no differences")
    raise typer.Exit(1 if differ else 0)


def _abort(profile: str, context: str | None, yes: bool, output: Output, preview: str | None) -> None:
    from stackctl.kubernetes.deploy import commands

    res = commands.abort(_profile(profile, preview), context, yes=yes, term=_terminal(output))
    release = res.release
    if output is not Output.text:
        emit({"stack": release.stack, "namespace": release.namespace, "deleted": [str(r) for r in res.deleted],
              "aborted": [str(r) for r in res.aborted]}, output)
        return
    if not res.deleted and not res.aborted:
        _say(f"no canary of stack {release.stack} in namespace {release.namespace} (context {res.context})")
        return
    if res.deleted:
        _say(f"aborted: deleted {', '.join(str(r) for r in res.deleted)}; the stable Deployments run the "
             "previous version")
    if res.aborted:
        _say(f"aborted: {', '.join(str(r) for r in res.aborted)} (Argo Rollouts scales the canary down; "
             "the stable pods keep serving)")


def history(profile: ProfileArg, context: ContextOpt = None, preview: PreviewOpt = None,
            output: OutputOpt = Output.text) -> None:
    """List the stack's revisions stored in the cluster (newest last)."""
    from stackctl.kubernetes.deploy import commands

    release, ctx, revs = commands.history(_profile(profile, preview), context)
    data = [r.as_data() for r in revs]
    if output is not Output.text:
        emit({"stack": release.stack, "namespace": release.namespace, "context": ctx, "revisions": data}, output)
        return
    if not revs:
        info(f"no revisions of {release.stack} in namespace {release.namespace} (context {ctx})")
        return
    # revisions stored before stackctl recorded commit and author show "-"
    console().print(table(("REVISION", "STATUS", "CREATED", "PROFILE", "COMMIT", "BY", "DESCRIPTION"),
                          ((str(r.number), r.status, r.created, r.profile, r.provenance.source or "-",
                            r.provenance.author or "-",
                            r.description + (f": {r.provenance.message}" if r.provenance.message else ""))
                           for r in revs),
                          key=("REVISION", "STATUS", "CREATED", "COMMIT"), boxed=False))


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
    diff: Annotated[bool, typer.Option("--diff", help="Only show what the rollback would change; exit 0 when "
                                                      "nothing, 1 when something, 2 on error.")] = False,
    yes: YesOpt = False,
    force_conflicts: ForceOpt = False,
    message: MessageOpt = "",
    preview: PreviewOpt = None,
    output: OutputOpt = Output.text,
) -> None:
    """Deploy a stored revision again (its objects, secrets included) and wait for it. Its Jobs
    (migrations, ...) completed when it was deployed and are not run again unless --rerun-jobs.
    A protected profile shows what will change, then asks."""
    started = time.monotonic()
    from stackctl.kubernetes.deploy import commands
    from stackctl.kubernetes.deploy.deployer import Options

    term = _terminal(output, started)
    plan = commands.plan_rollback(_profile(profile, preview), context, to=to, rerun_jobs=rerun_jobs)
    if preview is not None:
        from stackctl.kubernetes.deploy.previews import keep_expiry

        try:
            plan.objects = keep_expiry(plan.cluster, plan.objects, plan.release.namespace)
        except BaseException:
            plan.cluster.close()
            raise
    if diff:
        info(f"rollback: stack {plan.release.stack} → {commands.revision_line(plan.target)}")
        with _diff_errors():
            lines, differ = commands.rollback_diff(plan, prune=prune, force_conflicts=force_conflicts, close=True)
        _print_diff(lines, differ)
    options = Options(prune=prune, timeout=timeout, force_conflicts=force_conflicts, fail_fast=fail_fast)
    with _why():
        result = commands.rollback(plan, options=options, yes=yes, term=term, message=message)
    if output is not Output.text:
        emit(result.as_data(), output)
        return
    _print_summary(result, f"rolled back to {commands.revision_line(plan.target)}:", plan.context)


def run_job(
    profile: ProfileArg,
    name: Annotated[str, typer.Argument(help="The CronJob: its Compose service name (or the CronJob's name).",
                                        show_default=False, autocompletion=service_names)],
    context: ContextOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for the Job.")] = 600.0,
    yes: YesOpt = False,
    output: OutputOpt = Output.text,
) -> None:
    """Start a Job from one of the stack's CronJobs now and wait until it completes."""
    from stackctl.errors import OperationError
    from stackctl.kubernetes.deploy import commands

    res = commands.run_job(load_profile(profile), context, name, timeout=timeout, yes=yes, term=_terminal(output))
    if output is not Output.text:
        emit(res.as_data(), output)
    if not res.ok:
        _print_why(res.report)
        raise OperationError(f"{res.job} (from {res.cronjob}) {res.message}")
    if output is Output.text:
        _say(f"{res.job} (from {res.cronjob}) completed in {res.elapsed:.1f}s")


# ---------------------------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------------------------
def _terminal(output: Output, started: float | None = None) -> Terminal:
    from stackctl.kubernetes.deploy.commands import Terminal

    return Terminal(info=info, warn=warn, ask=_ask, show=_show, open_view=lambda start: _view(output, start),
                    started=time.monotonic() if started is None else started)


def _show(text: str) -> None:
    """Raw text (a diff) on stderr, where the question that follows it goes; stdout stays the result's."""
    sys.stderr.write(text)
    sys.stderr.flush()


def _ask(question: str) -> bool | None:
    try:
        return bool(typer.confirm(question, default=False, err=True))
    except typer.Abort:
        return None


def _view(output: Output, start: float) -> View:
    from stackctl.kubernetes.deploy.watch import LineView, LiveView

    con = err_console()
    if output is Output.text and con.is_terminal:
        return LiveView(con, start=start)
    return LineView(con, start=start)


@contextlib.contextmanager
def _why() -> Iterator[None]:
    """A rollout that failed: its diagnosis on stderr, then the error (main() prints it)."""
    from stackctl.kubernetes.deploy.deployer import RolloutFailed

    try:
        yield
    except RolloutFailed as exc:
        _print_why(exc.report)
        raise


def _print_why(report: list[str]) -> None:
    con = err_console()
    con.print("[bold]Why:[/]", markup=True)
    for line in report:
        con.print("  " + line, markup=False, highlight=False, soft_wrap=True)


def _say(text: str) -> None:
    console().print(text, markup=False, highlight=False, soft_wrap=True)


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
