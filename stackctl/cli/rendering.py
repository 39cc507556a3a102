"""What `stackctl render kubernetes` does, without typer: stackctl/cli/render.py declares the
options for typer, stackctl/cli/fast.py parses a plain command line itself; both call `kubernetes`.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from stackctl.cli.base import escape, info, load_profile, say, warn
from stackctl.errors import OperationError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from stackctl.kubernetes.gather import ProfileRender


class Format(enum.StrEnum):
    yaml = "yaml"
    kustomize = "kustomize"


STREAM_FORMATS = ("yaml", "json")


class StrictError(OperationError):
    """`--strict` and something could not be carried over: exit 1, the check a CI pipeline runs."""
MAX_PROBLEMS_SHOWN = 50


@contextlib.contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """Without the cyclic garbage collector: a render builds one graph (the model, the objects, the
    text) that lives until the command ends and makes no cycles worth collecting, and the
    collector's full passes over it grew with the stack — 30 % of a 3,000-service render, the one
    part that was not linear (docs/performance.md). Switched back on after, also on an error (the
    tests call the command in-process)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_without_cyclic_gc()
def kubernetes(profile: str = "local", output: str = "yaml", out_dir: Path | None = None, fmt: Format = Format.yaml,
               validate: bool = False, strict: bool = False, report: bool = False, include_secrets: bool = False,
               kube_version: str | None = None) -> None:
    """The command's body; its help and options are in stackctl/cli/render.py."""
    from stackctl.errors import InputError
    from stackctl.kubernetes.gather import render_profile

    stream_format = _stream_format(output, out_dir)
    if fmt is Format.kustomize and out_dir is None:
        raise InputError("kustomize needs --out-dir DIR (a kustomization lists files)", field="--format")
    if report and out_dir is not None:
        raise InputError("the report goes to stdout; --out-dir writes manifests", field="--report")
    loaded_profile = load_profile(profile)
    result = render_profile(loaded_profile, with_values=include_secrets, kube_version=kube_version)
    warnings = result.warnings
    if report:
        _report(result, stream_format)
    elif not strict:
        for w in warnings:
            warn(str(w))
    for n in (*result.loaded.notes, *(() if report else result.rendered.notes)):  # the report has the render's
        info(f"note: {n}")
    if strict and warnings:
        # Every one, as an error: a CI log must show all that a fix has to cover, not one per run.
        for w in warnings:
            say(f"error: {w}")
        raise StrictError(f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''} with --strict (above); "
                          f"{'the report is all that was printed' if report else 'nothing printed or written'}")
    objects = list(result.rendered.objects)
    version = result.target.kubernetes.version
    if validate:
        from stackctl.kubernetes.validate import validate as run_validate

        problems = run_validate(objects, version)
        for problem in problems[:MAX_PROBLEMS_SHOWN]:
            say(f"invalid: {problem}")
        if len(problems) > MAX_PROBLEMS_SHOWN:
            info(f"... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
        if problems:
            raise OperationError(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} against the "
                                 f"Kubernetes {version} schema; nothing written")
    if report:  # printed above, in place of the manifests
        return
    from stackctl.kubernetes import write

    objects, omitted = write.split_valueless_secrets(objects)
    if omitted:
        info(f"note: left out Secret {', '.join(omitted)} (its values live in the encrypted store; applied "
             f"without them it would blank the cluster's): add --include-secrets for the real values, or let "
             f"`stackctl promote {profile}` apply them")
    summary = (f"{len(objects)} objects for namespace {result.target.kubernetes.namespace} "
               f"(profile {profile}, Kubernetes {version}"
               f"{', validated' if validate else ''}"
               f"{f', {len(omitted)} Secret{_s(omitted)} left out' if omitted else ''})")
    if out_dir is None:
        sys.stdout.write(write.to_json(objects) if stream_format == "json" else write.to_stream(objects))
        sys.stdout.flush()
        info(f"rendered {summary}")
        return
    written = write.write_directory(objects, out_dir, fmt=fmt.value, shown=str(out_dir))
    secrets = [path for path, obj in zip(written, objects, strict=False) if obj["kind"] == "Secret"]
    if secrets and _not_ignored(secrets[0]):
        warn(f"{escape(str(out_dir))} is not ignored by git: its Secret manifests hold plaintext values; add it to "
             ".gitignore before you commit, or write them outside the repository")
    info(f"wrote {summary} to {out_dir}")


def _report(result: ProfileRender, stream_format: str) -> None:
    """The conversion report on stdout, in place of the manifests (plain lines, or one JSON document)."""
    import json

    from stackctl.kubernetes.render import report

    built = report.build(result.loaded.stack, result.rendered.objects, result.warnings, result.rendered.notes)
    if stream_format == "json":
        sys.stdout.write(json.dumps(built.to_data(), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(report.text(built))
    sys.stdout.flush()


def _not_ignored(path: Path) -> bool:
    """True when `path` is in a git work tree that does not ignore it, as `env render` warns for the
    env file. Only a warning: a directory outside any repository, and one git ignores, are fine, and
    a missing or stuck git does not block the render."""
    from stackctl import git
    from stackctl.errors import StackctlError

    try:
        return git.is_ignored(path.resolve(), path.parent) is False
    except StackctlError:
        return False


def _s(items: list[str]) -> str:
    return "s" if len(items) != 1 else ""


def _stream_format(value: str, out_dir: Path | None) -> str:
    """`-o` is a format, as everywhere in stackctl; a path there is the old meaning (a directory), said so."""
    from stackctl.errors import InputError

    chosen = value.lower()
    if chosen not in STREAM_FORMATS:
        hint = (f"; to write one file per object into a directory use --out-dir {value}"
                if chosen not in ("text", "kustomize") else "")
        raise InputError(f"{value!r} is not a format (expected yaml or json){hint}", field="--output")
    if out_dir is not None and chosen != "yaml":
        raise InputError("--out-dir writes YAML files (one per object); -o json is for the stream on stdout",
                         field="--output")
    return chosen
