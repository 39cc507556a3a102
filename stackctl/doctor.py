"""Environment checks behind `stackctl doctor`: each check says what it found and how to fix it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from stackctl.errors import StackctlError, ToolMissingError

if TYPE_CHECKING:
    from stackctl.kubernetes.settings import Settings
    from stackctl.profile.types import Profile

Status = Literal["ok", "warn", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def run_checks(root: Path, profile_name: str, *, reach_cluster: bool = True) -> list[Check]:
    checks: list[Check] = []
    checks.append(_guard("docker engine", _docker_engine))
    checks.append(_guard("compose v2", _compose))
    profile: Profile | None = None
    resolved: Settings | None = None
    try:
        from stackctl.kubernetes import settings
        from stackctl.profile import load_profile

        profile = load_profile(root, profile_name)
        resolved = settings.from_profile(profile)  # the combinations, checked where render checks them
        checks.append(Check("profile", "ok", f"{profile.display_path} is valid"))
    except StackctlError as exc:
        checks.append(Check("profile", "fail", str(exc), "fix the profile, or run `stackctl init`"))
    stack: list[Any] = []  # the loaded stack, when the compose project check got that far
    if profile is not None and checks[1].status == "ok":
        checks.append(_guard("compose project", lambda: _compose_project(profile, stack)))
    if stack and resolved is not None:
        checks.append(_replicated_databases(stack[0], resolved))
    if profile is not None:
        checks.append(_gitignore(root, profile.env.file))
        checks.extend(_kubernetes(profile, resolved, reach_cluster))
    return checks


def _guard(name: str, fn: Callable[[], Check | tuple[str, str]]) -> Check:
    try:
        result = fn()
    except StackctlError as exc:
        return Check(name, "fail", exc.message, exc.hint or "")
    if isinstance(result, Check):
        return result
    return Check(name, "ok", result[1])


def _docker_engine() -> tuple[str, str]:
    from stackctl.compose import cli

    info = cli.engine_info()
    return "ok", f"Docker engine {info['server_version']} ({info['operating_system']}, {info['storage_driver']})"


def _compose() -> tuple[str, str]:
    from stackctl.compose import cli

    return "ok", f"Docker Compose {cli.compose_version()}"


def _compose_project(profile: Any, out: list[Any]) -> Check:
    from stackctl.pipeline import load_stack

    loaded = load_stack(profile, secrets="masked")  # needs no env file and no key, shows no value
    out.append(loaded.stack)
    n = len(loaded.stack.services)
    if loaded.stack.warnings:
        return Check("compose project", "warn",
                     f"{n} services; {len(loaded.stack.warnings)} warnings: {loaded.stack.warnings[0]}",
                     f"see `stackctl config --profile {profile.name}`")
    return Check("compose project", "ok", f"stack {loaded.stack.name}: {n} services resolve cleanly")


def _replicated_databases(stack: Any, resolved: Settings) -> Check:
    """A database image with more than one replica (the profile's `replicas` or autoscaling `min`,
    Compose's `deploy.replicas`) is that many independent databases behind one Service: render warns,
    and so does doctor, before anything is promoted."""
    from stackctl.kubernetes.render.mapping import is_database_image

    found = []
    for svc in stack.services:
        scaling = resolved.of(svc.name).autoscaling
        count = scaling.min_replicas if scaling is not None else svc.deploy.replicas
        if count and count > 1 and is_database_image(svc.image):
            found.append(f"{svc.name} ({svc.image}, {count} replicas)")
    if not found:
        return Check("databases", "ok", "no database image runs more than one replica")
    return Check("databases", "warn", f"{', '.join(found)}: each replica of a database image is an independent "
                                      "database with its own data, behind one Service that spreads connections "
                                      "over them", "set replicas: 1 for it in the profile (replication needs the "
                                                   "image's own cluster setup or an operator)")


def _gitignore(root: Path, env_file: Path) -> Check:
    if not (root / ".git").exists():
        return Check("gitignore", "skip", "not a git repository")
    try:
        rel = env_file.relative_to(root)
    except ValueError:
        return Check("gitignore", "ok", f"{env_file} is outside the repository")
    from stackctl import git

    try:
        ignored = git.is_ignored(rel, root)
    except StackctlError as exc:  # no git on PATH, or git stuck: say we could not tell, not "fail"
        return Check("gitignore", "skip", f"cannot tell whether {rel} is git-ignored: {exc.message}",
                     exc.hint or "")
    if ignored is None:
        return Check("gitignore", "skip", f"git does not see a work tree at {root}")
    if ignored:
        return Check("gitignore", "ok", f"{rel} is git-ignored")
    return Check("gitignore", "fail", f"{rel} would be committed in plaintext",
                 "add it to .gitignore (`stackctl init` writes the lines)")


# --- kubeconfig ------------------------------------------------------------------------------
def _kubernetes(profile: Any, resolved: Settings | None, reach: bool) -> list[Check]:
    kube = profile.kubernetes
    if kube is None:
        return [Check("kubeconfig", "skip", f"profile {profile.name} has no kubernetes section")]
    from stackctl.kubernetes.client import contexts, kubeconfig_path

    try:
        found = contexts()  # the reader promote uses
    except ToolMissingError:
        return [Check("kubeconfig", "fail", f"no kubeconfig found ({kubeconfig_path()})",
                      "set KUBECONFIG or create ~/.kube/config for your cluster")]
    except Exception as exc:  # a broken kubeconfig is the user's to fix; say which file
        return [Check("kubeconfig", "fail", f"cannot read kubeconfig: {exc}", "check $KUBECONFIG")]
    contexts_, files = found.names, found.files
    wanted = kube.context or found.current
    if wanted is None:
        return [Check("kubeconfig", "fail", "no context named in the profile and no current-context",
                      f"set kubernetes.context in {profile.display_path}")]
    if wanted not in contexts_:
        return [Check("kubeconfig", "fail", f"context {wanted!r} not found (have: {', '.join(contexts_) or 'none'})",
                      f"add it to your kubeconfig or fix kubernetes.context in {profile.display_path}")]
    checks = [Check("kubeconfig", "ok", f"context {wanted!r} in {', '.join(str(f) for f in files)}")]
    if reach:
        checks.append(_reach(wanted))
        if checks[-1].status == "ok":
            checks.append(_guard("capacity", lambda: _capacity(wanted, profile)))
        argo_users = _argo_users(resolved) if resolved is not None else []
        if argo_users and checks[-1].status == "ok":
            checks.append(_guard("argo rollouts", lambda: _argo_rollouts(wanted, argo_users, profile)))
    return checks


def _capacity(context: str, profile: Any) -> Check:
    """The stack's requests × (replicas + rolling-update surge) against the nodes' allocatable, as
    promote checks them before applying (`stackctl.kubernetes.capacity`)."""
    from stackctl.kubernetes import capacity
    from stackctl.kubernetes.client import connect
    from stackctl.kubernetes.deploy.commands import release_of
    from stackctl.kubernetes.gather import render_profile

    try:
        rendered = render_profile(profile)  # secrets as markers: no key, no value
    except StackctlError as exc:
        return Check("capacity", "skip", f"not checked: the stack does not render ({exc})",
                     f"see `stackctl render kubernetes -p {profile.name}`")
    release = release_of(profile, rendered.loaded.stack.name)
    cluster = connect(context)
    try:
        state = capacity.read(cluster, namespace=release.namespace, stack=release.stack)
    finally:
        cluster.close()
    if isinstance(state, str):
        return Check("capacity", "skip", f"not checked: {state}")
    fit = capacity.check(capacity.workloads(rendered.rendered.objects, len(state.nodes)), state, context=context)
    if not fit.problems:
        return Check("capacity", "ok", fit.summary)
    worst = fit.errors or fit.warnings
    detail = "; ".join(p.message for p in fit.problems)
    return Check("capacity", "fail" if fit.errors else "warn", detail, worst[0].fix)


def _argo_users(resolved: Settings) -> list[str]:
    """The profile fields that make services Argo Rollouts (canary or blue-green)."""
    users = [f"defaults.{f}" for f in [resolved.defaults.argo_field] if f]
    users += [f"services.{name}.{f}" for name, s in sorted(resolved.services.items()) if (f := s.argo_field)]
    return users


def _argo_rollouts(context: str, services: list[str], profile: Any) -> Check:
    """Services rendered as Argo Rollouts need the kind in the cluster (promote refuses otherwise)."""
    from stackctl.kubernetes.client import connect
    from stackctl.kubernetes.deploy import argo

    cluster = connect(context)
    try:
        served = argo.served(cluster)
    finally:
        cluster.close()
    users = ", ".join(services)
    if served:
        return Check("argo rollouts", "ok", f"context {context!r} serves {argo.API_VERSION} {argo.KIND} "
                                            f"(for {users})")
    return Check("argo rollouts", "fail", f"context {context!r} does not serve {argo.API_VERSION} {argo.KIND}, "
                                          f"which {profile.display_path} asks for ({users})",
                 "install Argo Rollouts in the cluster, or use controller: stackctl")


def _reach(context: str) -> Check:
    """GET /version through the client promote uses (same kubeconfig reader, same transport)."""
    from stackctl.kubernetes.client import connect

    try:
        cluster = connect(context)
        try:
            version = cluster.request("GET", "/version", timeout=5)
        finally:
            cluster.close()
    except Exception as exc:  # doctor reports and goes on: whatever stops the request is the finding
        msg = str(exc).splitlines()[0][:160]
        return Check("cluster", "fail", f"API server for context {context!r} does not answer: {msg}",
                     "check the cluster is up and your credentials are valid")
    git_version = version.get("gitVersion", "?") if isinstance(version, dict) else "?"
    return Check("cluster", "ok", f"API server {git_version} answers for context {context!r}")
