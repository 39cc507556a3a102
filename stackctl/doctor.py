"""Environment checks behind `stackctl doctor`: each check says what it found and how to fix it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from stackctl.errors import StackctlError

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
    if profile is not None and checks[1].status == "ok":
        checks.append(_guard("compose project", lambda: _compose_project(profile)))
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


def _compose_project(profile: Any) -> Check:
    from stackctl.pipeline import load_stack

    loaded = load_stack(profile)
    n = len(loaded.stack.services)
    if loaded.stack.warnings:
        return Check("compose project", "warn",
                     f"{n} services; {len(loaded.stack.warnings)} warnings: {loaded.stack.warnings[0]}",
                     f"see `stackctl config --profile {profile.name}`")
    return Check("compose project", "ok", f"stack {loaded.stack.name}: {n} services resolve cleanly")


def _gitignore(root: Path, env_file: Path) -> Check:
    if not (root / ".git").exists():
        return Check("gitignore", "skip", "not a git repository")
    try:
        rel = env_file.relative_to(root)
    except ValueError:
        return Check("gitignore", "ok", f"{env_file} is outside the repository")
    proc = subprocess.run(["git", "check-ignore", "-q", "--no-index", str(rel)], cwd=root, capture_output=True)
    if proc.returncode == 0:
        return Check("gitignore", "ok", f"{rel} is git-ignored")
    return Check("gitignore", "fail", f"{rel} would be committed in plaintext",
                 "add it to .gitignore (`stackctl init` writes the lines)")


# --- kubeconfig ------------------------------------------------------------------------------
def kubeconfig_paths() -> list[Path]:
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def read_kubeconfig() -> tuple[list[str], str | None, list[Path]]:
    """Context names and current-context merged as kubectl merges them (first file wins)."""
    import yaml

    contexts: list[str] = []
    current: str | None = None
    found = []
    for path in kubeconfig_paths():
        if not path.is_file():
            continue
        found.append(path)
        data = yaml.safe_load(path.read_text()) or {}
        for ctx in data.get("contexts") or []:
            name = ctx.get("name")
            if name and name not in contexts:
                contexts.append(name)
        if current is None and data.get("current-context"):
            current = data["current-context"]
    return contexts, current, found


def _kubernetes(profile: Any, resolved: Settings | None, reach: bool) -> list[Check]:
    kube = profile.kubernetes
    if kube is None:
        return [Check("kubeconfig", "skip", f"profile {profile.name} has no kubernetes section")]
    try:
        contexts, current, files = read_kubeconfig()
    except Exception as exc:  # a broken kubeconfig is the user's to fix; say which file
        return [Check("kubeconfig", "fail", f"cannot read kubeconfig: {exc}", "check $KUBECONFIG")]
    if not files:
        where = os.pathsep.join(str(p) for p in kubeconfig_paths())
        return [Check("kubeconfig", "fail", f"no kubeconfig found ({where})",
                      "set KUBECONFIG or create ~/.kube/config for your cluster")]
    wanted = kube.context or current
    if wanted is None:
        return [Check("kubeconfig", "fail", "no context named in the profile and no current-context",
                      f"set kubernetes.context in {profile.display_path}")]
    if wanted not in contexts:
        return [Check("kubeconfig", "fail", f"context {wanted!r} not found (have: {', '.join(contexts) or 'none'})",
                      f"add it to your kubeconfig or fix kubernetes.context in {profile.display_path}")]
    checks = [Check("kubeconfig", "ok", f"context {wanted!r} in {', '.join(str(f) for f in files)}")]
    if reach:
        checks.append(_reach(wanted))
        argo_users = _argo_users(resolved) if resolved is not None else []
        if argo_users and checks[-1].status == "ok":
            checks.append(_guard("argo rollouts", lambda: _argo_rollouts(wanted, argo_users, profile)))
    return checks


def _argo_users(resolved: Settings) -> list[str]:
    """The profile fields that make services Argo Rollouts (canary or blue-green)."""
    users = [f"defaults.{f}" for f in [resolved.defaults.argo_field] if f]
    users += [f"services.{name}.{f}" for name, s in sorted(resolved.services.items()) if (f := s.argo_field)]
    return users


def _argo_rollouts(context: str, services: list[str], profile: Any) -> Check:
    """Services rendered as Argo Rollouts need the kind in the cluster (promote refuses otherwise)."""
    from stackctl.kubernetes import apply as ka
    from stackctl.kubernetes import argo

    cluster = ka.connect(context)
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
    try:
        from kubernetes import client, config

        api_client = config.new_client_from_config(context=context)
        api_client.configuration.retries = 0
        version = client.VersionApi(api_client).get_code(_request_timeout=5)
        return Check("cluster", "ok", f"API server {version.git_version} answers for context {context!r}")
    except Exception as exc:
        msg = str(exc).splitlines()[0][:160]
        return Check("cluster", "fail", f"API server for context {context!r} does not answer: {msg}",
                     "check the cluster is up and your credentials are valid")
