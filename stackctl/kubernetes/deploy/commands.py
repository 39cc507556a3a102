"""The commands behind `stackctl promote` (with `--diff` and `--abort`), `history`, `rollback` and
`run-job`: one function each, from a loaded profile to a result the CLI reports.

The CLI (`stackctl.cli.promote`) parses options and prints; everything in between is here: which
kubeconfig context (the guard rails of a protected profile), the confirmation a protected profile
asks for, rendering with the current secrets, images built and pushed, the pre-flight for Argo
Rollouts, and the `Deployer`. What a command tells or asks the user goes through a `Terminal`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stackctl.errors import InputError, OperationError, ProfileError
from stackctl.kubernetes.client import Cluster, Ref, connect_in_background, contexts
from stackctl.kubernetes.client import connect as connect_context
from stackctl.kubernetes.deploy import argo, canary, runjob
from stackctl.kubernetes.deploy import history as kh
from stackctl.kubernetes.deploy.deployer import Deployer, Options, Result
from stackctl.kubernetes.deploy.diff import diff as diff_objects
from stackctl.kubernetes.labels import L_APPLYSET_PART_OF
from stackctl.kubernetes.names import label_value

if TYPE_CHECKING:
    from stackctl.kubernetes.deploy.watch import View
    from stackctl.profile import Profile
    from stackctl.profile.types import KubernetesSettings


@dataclass(frozen=True)
class Terminal:
    """How a command talks to the user: progress lines, warnings, a yes/no question (None when
    nobody can answer it), and the view that shows a rollout as it happens."""

    info: Callable[[str], None]
    warn: Callable[[str], None]
    ask: Callable[[str], bool | None]
    view: Callable[[], View]


# ---------------------------------------------------------------------------------------------
# Guard rails: which context, and the confirmation of a protected profile
# ---------------------------------------------------------------------------------------------
def choose_context(*, requested: str | None, profile_context: str | None, protected: bool, current: str | None,
                   profile_file: str) -> str:
    """The kubeconfig context to use. A protected profile goes only to the context it names."""
    if protected:
        target = requested or profile_context
        if target != profile_context:
            raise InputError(f"the profile is protected: it promotes only to context {profile_context!r}, "
                             f"not {target!r}", file=profile_file, field="kubernetes.context",
                             hint="drop --context, or use another profile")
        assert target is not None
        return target
    target = requested or profile_context or current
    if not target:
        raise InputError("no kubeconfig context: the profile names none and the kubeconfig has no current-context",
                         file=profile_file, field="kubernetes.context", hint="pass --context or set kubernetes.context")
    return target


def kube_settings(prof: Profile) -> KubernetesSettings:
    if prof.kubernetes is None:
        raise ProfileError("promote needs a kubernetes: section (namespace, and the context to promote to)",
                           file=prof.display_path, field="kubernetes")
    return prof.kubernetes


def resolve_context(prof: Profile, requested: str | None) -> tuple[str, str]:
    """The context to use (guard rails checked) and its API server URL."""
    kube = kube_settings(prof)
    found = contexts()
    ctx = choose_context(requested=requested, profile_context=kube.context, protected=kube.protected,
                         current=found.current, profile_file=prof.display_path)
    if ctx not in found.names:
        raise InputError(f"no context {ctx!r} in the kubeconfig (contexts: {', '.join(found.names) or 'none'})",
                         file=found.path, field="contexts")
    return ctx, found.servers.get(ctx, "")


def connect(prof: Profile, requested: str | None) -> tuple[Cluster, str]:
    ctx, _ = resolve_context(prof, requested)
    return connect_context(ctx), ctx


def confirm(prof: Profile, ctx: str, server: str, yes: bool, term: Terminal, *, action: str) -> None:
    """A protected profile asks before it changes anything (unless --yes)."""
    if yes or not kube_settings(prof).protected:
        return
    question = (f"{prof.display_path} is protected: {action} to context {ctx} ({server}), namespace "
                f"{kube_settings(prof).namespace}?")
    ok = term.ask(question)
    if ok is None:
        raise InputError(f"the profile is protected and nobody confirmed ({action})", file=prof.display_path,
                         field="kubernetes.protected", hint="answer the question on a terminal, or pass --yes")
    if not ok:
        raise OperationError(f"{action} not confirmed")


def stack_name(prof: Profile) -> str:
    if prof.stack:
        return prof.stack
    from stackctl.pipeline import load_stack  # runs `docker compose config`: only when the profile names no stack

    return load_stack(prof, secrets="masked").stack.name  # no env file needed (production)


def release_of(prof: Profile, stack: str) -> kh.Release:
    return kh.Release(stack=label_value(stack), namespace=kube_settings(prof).namespace, profile=prof.name)


# ---------------------------------------------------------------------------------------------
# promote
# ---------------------------------------------------------------------------------------------
_IMAGE_WORDS = {"present": "already in the registry", "pushed": "pushed", "built": "built and pushed",
                "planned": "would be built and pushed"}


@dataclass
class Prepared:
    """A rendered stack, its images in place, and the cluster it goes to."""

    profile: Profile
    context: str
    cluster: Cluster
    release: kh.Release
    objects: list[dict[str, Any]]


def warm_compose() -> None:
    """Run the Compose version check (rendering needs it first) on a thread while the profile loads:
    it is a process start of its own. Its result is cached; a failure shows when rendering asks."""
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
    from stackctl.secrets import env_values

    return {**os.environ, **env_values(prof)}


def prepare(prof: Profile, requested: str | None, *, readonly: bool, yes: bool, term: Terminal) -> Prepared:
    """Everything before applying: the context (confirmed unless `readonly`), the render, the images
    (built and pushed unless `readonly`), the connection, and the Argo Rollouts pre-flight."""
    from stackctl.kubernetes import images  # the renderer and its inputs: only promote needs them
    from stackctl.kubernetes.gather import render_profile

    ctx, server = resolve_context(prof, requested)
    if not readonly:
        confirm(prof, ctx, server, yes, term, action="promote")
    connecting = connect_in_background(ctx)  # the client import overlaps with rendering
    environ = _environ(prof)
    rendered = render_profile(prof, with_values=True, environ=environ, env_from_store=environ is not None)
    for w in rendered.warnings:
        term.warn(str(w))
    plans = images.plan(rendered.loaded.stack, rendered.target.kubernetes, root=prof.root)
    for res in images.ensure(plans, dry_run=readonly, log=term.info):
        term.info(f"image {res.plan.ref}: {_IMAGE_WORDS[res.action]}")
    objects = images.retag(rendered.rendered.objects, plans)
    release = release_of(prof, rendered.loaded.stack.name)
    cluster = connecting()
    require_argo(cluster, objects, prof, ctx)
    return Prepared(profile=prof, context=ctx, cluster=cluster, release=release, objects=objects)


def require_argo(cluster: Cluster, objects: Sequence[dict[str, Any]], prof: Profile, ctx: str) -> None:
    """Services rendered as Argo Rollouts need the Rollout kind in the cluster: say so before applying."""
    names = argo.fields(objects)
    if names and not argo.served(cluster):
        cluster.close()
        raise InputError(f"runs as an Argo Rollouts Rollout, and context {ctx} does not serve "
                         f"{argo.API_VERSION} {argo.KIND} (Argo Rollouts is not installed there)",
                         file=prof.display_path, field=names[0],
                         hint="install Argo Rollouts in the cluster, or use controller: stackctl "
                              "(promote runs the canary steps itself)")


def diff(prep: Prepared, *, prune: bool, force_conflicts: bool) -> tuple[list[str], int]:
    """`promote --diff`: (unified diff lines, number of objects that differ); see `deploy.diff`."""
    try:
        return diff_objects(prep.cluster, prep.release, prep.objects, prune=prune, force_conflicts=force_conflicts)
    finally:
        prep.cluster.close()


def promote(prep: Prepared, options: Options, term: Terminal) -> Result:
    verb = "dry run of promote" if options.dry_run else "promote"
    release = prep.release
    term.info(f"{verb}: stack {release.stack} (profile {prep.profile.name}) → context {prep.context} "
              f"({prep.cluster.server}), namespace {release.namespace}")
    return deploy(prep.cluster, release, options, prep.context, term,
                  lambda d: d.deploy(prep.objects, description=f"promote {prep.profile.name}"))


def deploy(cluster: Cluster, release: kh.Release, options: Options, ctx: str, term: Terminal,
           run: Callable[[Deployer], Result]) -> Result:
    """Run `run` with a Deployer showing progress on the terminal's view; closes the cluster.
    A `RolloutFailed` goes to the caller once the view is closed (its report is for the user)."""
    view = term.view()
    deployer = Deployer(cluster, release, view=view, options=options, context=ctx)
    try:
        return run(deployer)
    finally:
        view.close()
        deployer.close()
        cluster.close()


# ---------------------------------------------------------------------------------------------
# promote --abort, history, rollback, run-job
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Aborted:
    release: kh.Release
    context: str
    deleted: list[Ref]  # canary Deployments
    aborted: list[Ref]  # Argo Rollouts


def abort(prof: Profile, requested: str | None, *, yes: bool, term: Terminal) -> Aborted:
    """Delete the stack's canary Deployments and abort its Argo Rollouts in progress."""
    cluster, ctx = connect(prof, requested)
    try:
        release = release_of(prof, stack_name(prof))
        confirm(prof, ctx, cluster.server, yes, term, action="abort the canaries")
        deleted = canary.abort(cluster, release)
        aborted = (argo.abort(cluster, release.namespace, f"{L_APPLYSET_PART_OF}={release.applyset_id}")
                   if argo.served(cluster) else [])
    finally:
        cluster.close()
    return Aborted(release=release, context=ctx, deleted=deleted, aborted=aborted)


def history(prof: Profile, requested: str | None) -> tuple[kh.Release, str, list[kh.Revision]]:
    """(the release, the context, its revisions stored in the cluster, oldest first)."""
    cluster, ctx = connect(prof, requested)
    try:
        release = release_of(prof, stack_name(prof))
        return release, ctx, kh.revisions(cluster, release)
    finally:
        cluster.close()


def rollback(prof: Profile, requested: str | None, *, to: int | None, options: Options, rerun_jobs: bool,
             yes: bool, term: Terminal) -> tuple[Result, kh.Revision, str]:
    """Deploy a stored revision again; its Jobs only when --rerun-jobs, or when they are still
    live (applied again unchanged). (the result, the revision rolled back to, the context)."""
    cluster, ctx = connect(prof, requested)
    release = release_of(prof, stack_name(prof))
    target = kh.pick_rollback(kh.revisions(cluster, release), to,
                              where=f"namespace {release.namespace} (context {ctx})")
    confirm(prof, ctx, cluster.server, yes, term, action=f"roll back to revision {target.number}")
    term.info(f"rollback: stack {release.stack} → revision {target.number} ({target.description}), context {ctx}, "
              f"namespace {release.namespace}")
    objects, skipped = kh.rollback_objects(target, rerun_jobs=rerun_jobs)
    jobs = {o["metadata"]["name"]: o for o in target.objects() if o.get("kind") == "Job"}
    live = {name for name in skipped if cluster.get(Ref.of(jobs[name])) is not None}
    objects += [jobs[name] for name in sorted(live)]
    gone = sorted(set(skipped) - live)
    if gone:
        term.info(f"not run again: Job {', '.join(gone)} (completed when revision {target.number} was deployed; "
                  "--rerun-jobs runs them)")
    result = deploy(cluster, release, options, ctx, term,
                    lambda d: d.deploy(objects, description=f"rollback to {target.number}"))
    return result, target, ctx


def run_job(prof: Profile, requested: str | None, name: str, *, timeout: float, yes: bool,
            term: Terminal) -> runjob.JobRun:
    """Start a Job from one of the stack's CronJobs and wait for it (see `runjob`)."""
    cluster, ctx = connect(prof, requested)
    view = term.view()
    try:
        release = release_of(prof, stack_name(prof))
        confirm(prof, ctx, cluster.server, yes, term, action=f"run a Job from CronJob {name}")
        return runjob.run(cluster, release, name, timeout=timeout, view=view)
    finally:
        view.close()
        cluster.close()
