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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from stackctl.errors import InputError, OperationError, ProfileError
from stackctl.kubernetes.client import Cluster, Ref, connect_in_background, contexts
from stackctl.kubernetes.client import connect as connect_context
from stackctl.kubernetes.deploy import argo, canary, previews, runjob
from stackctl.kubernetes.deploy import history as kh
from stackctl.kubernetes.deploy.deployer import Deployer, Options, Result
from stackctl.kubernetes.deploy.diff import diff as diff_objects
from stackctl.kubernetes.labels import L_APPLYSET_PART_OF
from stackctl.kubernetes.names import label_value

if TYPE_CHECKING:
    from stackctl.kubernetes.deploy.watch import View
    from stackctl.profile import Profile
    from stackctl.profile.types import KubernetesSettings


@dataclass
class Terminal:
    """How a command talks to the user: progress lines, warnings, a yes/no question (None when
    nobody can answer it), raw text such as a diff (`show`), and the view that shows the command's
    progress as it happens (`open_view(start)`).

    `started` is when the command started (on `clock`): the view counts from it and the final line
    says how long the user waited, builds and rendering included. The view is opened on first use
    (after any question: a live view and a prompt cannot share the terminal) and closed by `close()`."""

    info: Callable[[str], None]
    warn: Callable[[str], None]
    ask: Callable[[str], bool | None]
    open_view: Callable[[float], View]
    show: Callable[[str], None] = lambda _text: None
    started: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = time.monotonic
    _view: View | None = field(default=None, init=False, repr=False)

    def view(self) -> View:
        if self._view is None:
            self._view = self.open_view(self.started)
        return self._view

    def phase(self, text: str) -> None:
        """What the command is doing now (the view shows it next to the running clock)."""
        self.view().phase(text)

    def close(self) -> None:
        if self._view is not None:
            self._view.close()
            self._view = None


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
    term: Terminal  # its view is open: `promote` or `diff` closes it


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


def prepare(prof: Profile, requested: str | None, *, readonly: bool, yes: bool, term: Terminal,
            preview: previews.Request | None = None) -> Prepared:
    """Everything before applying: the context (confirmed unless `readonly`), the render, the images
    (built and pushed unless `readonly`), the connection, and the Argo Rollouts pre-flight.
    `preview`: into the preview's own namespace, with its own generated secrets (`deploy.previews`)."""
    from stackctl.kubernetes import images  # the renderer and its inputs: only promote needs them
    from stackctl.kubernetes.gather import render_profile

    loaded = prof
    if preview is not None:
        prof = previews.profile_for(prof, preview.name)
    ctx, server = resolve_context(prof, requested)
    if not readonly:
        confirm(prof, ctx, server, yes, term, action="promote")
    connecting = connect_in_background(ctx)  # the client import overlaps with rendering
    try:
        pv: previews.Plan | None = None
        if preview is not None:  # what the cluster has of the preview decides its values and expiry
            term.phase(f"connecting to context {ctx}")
            pv = previews.begin(connecting(), loaded, preview)
        term.phase(f"rendering profile {prof.name}")
        environ = _environ(prof) if pv is None or not pv.values else previews.environ(prof, pv)
        rendered = render_profile(prof, with_values=True, environ=environ, env_from_store=environ is not None,
                                  overrides=pv.values if pv is not None else None)
        for w in rendered.warnings:
            term.warn(str(w))
        plans = images.plan(rendered.loaded.stack, rendered.target.kubernetes, root=prof.root)
        if plans:
            term.phase("looking for the images in the registry")
        for res in images.ensure(plans, dry_run=readonly, log=term.phase):
            term.info(f"image {res.plan.ref}: {_IMAGE_WORDS[res.action]}")
        objects = images.retag(rendered.rendered.objects, plans)
        if pv is not None:
            objects = previews.finish(objects, pv, term.warn)
        release = release_of(prof, rendered.loaded.stack.name)
        term.phase(f"connecting to context {ctx}")
        cluster = connecting()
        require_argo(cluster, objects, prof, ctx)
        term.phase(f"comparing the requests with the nodes of context {ctx}")
        require_fit(cluster, objects, release, ctx, term, readonly=readonly)
    except BaseException:
        term.close()  # the error is printed next: not under a live view
        raise
    return Prepared(profile=prof, context=ctx, cluster=cluster, release=release, objects=objects, term=term)


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


def require_fit(cluster: Cluster, objects: Sequence[dict[str, Any]], release: kh.Release, ctx: str, term: Terminal,
                *, readonly: bool = False) -> None:
    """Pods that no node has room for stay Pending: say so before applying (`capacity`). What cannot
    fit even without a rolling update's surge is an error (a warning for `--diff`, `--dry-run` and on a cluster
    that adds nodes on demand); what fits only without the surge, a warning. A user who may not list
    the nodes gets a line saying it was not checked."""
    from stackctl.kubernetes import capacity

    state = capacity.read(cluster, namespace=release.namespace, stack=release.stack)
    if isinstance(state, str):
        term.info(f"capacity not checked: {state}")
        return
    fit = capacity.check(capacity.workloads(objects, len(state.nodes)), state, context=ctx)
    for problem in fit.problems:
        if problem.level == "warning" or readonly:
            term.warn(str(problem))
    if fit.errors and not readonly:
        cluster.close()
        first = fit.errors[0]
        more = "".join(f"; {p.message}" for p in fit.errors[1:])
        raise OperationError(f"context {ctx}: {first.message}{more}", hint=first.fix)


def diff(prep: Prepared, *, prune: bool, force_conflicts: bool) -> tuple[list[str], int]:
    """`promote --diff`: (unified diff lines, number of objects that differ); see `deploy.diff`."""
    try:
        prep.term.phase("comparing with the cluster")
        return diff_objects(prep.cluster, prep.release, prep.objects, prune=prune, force_conflicts=force_conflicts)
    finally:
        prep.term.close()
        prep.cluster.close()


def provenance(prof: Profile, message: str = "") -> kh.Provenance:
    """What a revision records about where it came from: `message`, the project's git commit and
    whether its work tree had changes (nothing when git or a repository is missing), user@host."""
    from stackctl import git
    from stackctl.secrets.ops import default_recipient_name  # the name the secrets store records people by

    commit = git.head_commit(prof.root) or ""
    return kh.Provenance(message=message, commit=commit, dirty=git.is_dirty(prof.root) if commit else None,
                         author=default_recipient_name())


def promote(prep: Prepared, options: Options, term: Terminal, *, message: str = "") -> Result:
    verb = "dry run of promote" if options.dry_run else "promote"
    release = prep.release
    term.info(f"{verb}: stack {release.stack} (profile {prep.profile.name}) → context {prep.context} "
              f"({prep.cluster.server}), namespace {release.namespace}")
    try:
        source = kh.Provenance() if options.dry_run else provenance(prep.profile, message)
    except BaseException:
        term.close()
        prep.cluster.close()
        raise
    return deploy(prep.cluster, release, options, prep.context, term,
                  lambda d: d.deploy(prep.objects, description=f"promote {prep.profile.name}"), provenance=source)


def deploy(cluster: Cluster, release: kh.Release, options: Options, ctx: str, term: Terminal,
           run: Callable[[Deployer], Result], *, provenance: kh.Provenance = kh.NO_PROVENANCE) -> Result:
    """Run `run` with a Deployer showing progress on the terminal's view; closes the cluster.
    A `RolloutFailed` goes to the caller once the view is closed (its report is for the user).
    The result's `elapsed` counts from the command's start (`term.started`) to the end of the deploy."""
    deployer = Deployer(cluster, release, view=term.view(), options=options, context=ctx, started=term.started,
                        clock=term.clock, provenance=provenance)
    try:
        return run(deployer)
    finally:
        term.close()
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


@dataclass
class RollbackPlan:
    """What a rollback deploys: the revision, its objects (its Jobs only when --rerun-jobs or still
    live), the Jobs left out because they are gone, and where. `cluster` is open: `rollback_diff`
    or `rollback` closes it."""

    profile: Profile
    cluster: Cluster
    context: str
    release: kh.Release
    target: kh.Revision
    objects: list[dict[str, Any]]
    gone: list[str]


def plan_rollback(prof: Profile, requested: str | None, *, to: int | None, rerun_jobs: bool) -> RollbackPlan:
    cluster, ctx = connect(prof, requested)
    try:
        release = release_of(prof, stack_name(prof))
        target = kh.pick_rollback(kh.revisions(cluster, release), to,
                                  where=f"namespace {release.namespace} (context {ctx})")
        objects, skipped = kh.rollback_objects(target, rerun_jobs=rerun_jobs)
        jobs = {o["metadata"]["name"]: o for o in target.objects() if o.get("kind") == "Job"}
        live = {name for name in skipped if cluster.get(Ref.of(jobs[name])) is not None}
    except BaseException:
        cluster.close()
        raise
    objects += [jobs[name] for name in sorted(live)]
    return RollbackPlan(profile=prof, cluster=cluster, context=ctx, release=release, target=target,
                        objects=objects, gone=sorted(set(skipped) - live))


def revision_line(rev: kh.Revision) -> str:
    """A revision in one line: what, why, from which commit, by whom, when."""
    src = rev.provenance
    what = rev.description + (f": {src.message}" if src.message else "")
    facts = [f"commit {src.source}" if src.source else "", f"by {src.author}" if src.author else "",
             f"created {rev.created}" if rev.created else ""]
    return f"revision {rev.number} ({what}" + "".join(f", {f}" for f in facts if f) + ")"


def rollback_diff(plan: RollbackPlan, *, prune: bool, force_conflicts: bool, close: bool = False
                  ) -> tuple[list[str], int]:
    """What the rollback would change (see `deploy.diff`): (unified diff lines, objects that differ).
    `close`: this is all (`rollback --diff`), close the connection."""
    try:
        return diff_objects(plan.cluster, plan.release, plan.objects, prune=prune, force_conflicts=force_conflicts,
                            label=f"rollback-to-{plan.target.number}")
    finally:
        if close:
            plan.cluster.close()


def rollback(plan: RollbackPlan, *, options: Options, yes: bool, term: Terminal, message: str = "") -> Result:
    """Deploy a stored revision again (`plan_rollback`). A protected profile shows what will change
    (the diff) and then asks. The new revision records the target's commit, `message`, and who
    rolled back."""
    prof, cluster, ctx, release, target = plan.profile, plan.cluster, plan.context, plan.release, plan.target
    try:
        term.info(f"rollback: stack {release.stack} → {revision_line(target)}, context {ctx}, "
                  f"namespace {release.namespace}")
        if not yes and kube_settings(prof).protected:
            lines, differ = rollback_diff(plan, prune=options.prune, force_conflicts=options.force_conflicts)
            term.show("".join(lines))
            term.info(f"{differ} object(s) would change" if differ else "no object would change")
            confirm(prof, ctx, cluster.server, yes, term, action=f"roll back to revision {target.number}")
        if plan.gone:
            term.info(f"not run again: Job {', '.join(plan.gone)} (completed when revision {target.number} was "
                      "deployed; --rerun-jobs runs them)")
        from stackctl.secrets.ops import default_recipient_name

        source = replace(target.provenance, message=message, author=default_recipient_name())
    except BaseException:
        cluster.close()
        raise
    return deploy(cluster, release, options, ctx, term,
                  lambda d: d.deploy(plan.objects, description=f"rollback to {target.number}"), provenance=source)


def run_job(prof: Profile, requested: str | None, name: str, *, timeout: float, yes: bool,
            term: Terminal) -> runjob.JobRun:
    """Start a Job from one of the stack's CronJobs and wait for it (see `runjob`)."""
    cluster, ctx = connect(prof, requested)
    try:
        release = release_of(prof, stack_name(prof))
        confirm(prof, ctx, cluster.server, yes, term, action=f"run a Job from CronJob {name}")
        return runjob.run(cluster, release, name, timeout=timeout, view=term.view())
    finally:
        term.close()
        cluster.close()
