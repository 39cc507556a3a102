"""`stackctl render helm`: render each profile (as `render kubernetes` does, without secret values),
build the chart from their objects (`render/helmchart.py`, pure) and write it.

The write changes only what changed: a file whose text is already on disk is left alone (a re-run
with no change writes nothing), each file is replaced atomically, and a file stackctl wrote before
(listed in `.stackctl-render`) that the new chart no longer has is removed. Files of the user's in
the chart directory stay; a non-empty directory stackctl never wrote is refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stackctl.errors import InputError
from stackctl.fsutil import owned_marker, write_owned
from stackctl.kubernetes.render.helmchart import DEFAULT_VERSION, Chart, ProfileObjects, build_chart
from stackctl.profile.types import Profile

MARKER = ".stackctl-render"


@dataclass
class HelmResult:
    chart: Chart
    stack: str
    namespaces: dict[str, str]
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    render_warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def default_profiles(names: Sequence[str]) -> list[str]:
    """Every profile but `local` (the one `stackctl up` runs), in name order."""
    return [n for n in sorted(names) if n != "local"]


def render_chart(profiles: Sequence[Profile], *, version: str = DEFAULT_VERSION,
                 app_version: str | None = None) -> HelmResult:
    """Render every profile and build the chart (nothing written)."""
    from stackctl.kubernetes.gather import render_profile

    renders: list[ProfileObjects] = []
    stacks: dict[str, str] = {}
    warnings: list[str] = []
    notes: list[str] = []
    for profile in profiles:
        result = render_profile(profile, with_values=False)
        stacks[profile.name] = result.loaded.stack.name
        renders.append(ProfileObjects(profile.name, result.target.kubernetes.namespace,
                                      list(result.rendered.objects)))
        warnings.extend(f"profile {profile.name}: {w}" for w in result.warnings)
        notes.extend(f"profile {profile.name}: {n}" for n in (*result.loaded.notes, *result.rendered.notes))
    if len(set(stacks.values())) > 1:
        shown = ", ".join(f"{p}: {s}" for p, s in stacks.items())
        raise InputError(f"the profiles render different stacks ({shown}); one chart holds one stack",
                         field="--profile")
    stack = next(iter(stacks.values()))
    chart = build_chart(renders, stack=stack, version=version, app_version=app_version)
    return HelmResult(chart=chart, stack=stack, namespaces={r.name: r.namespace for r in renders},
                      render_warnings=warnings, notes=notes)


def write_chart(result: HelmResult, directory: Path, *, shown: str) -> None:
    """Write the chart's files into `directory` (see the module docstring); fills `result`'s lists."""
    previous = owned_marker(directory, MARKER, writer="stackctl render helm", field=f"--out {shown}").get("files", [])
    files = result.chart.files
    marker = json.dumps({"written-by": "stackctl render helm", "files": sorted(files)}, indent=1) + "\n"
    written, removed, unchanged = write_owned(directory, files, previous, MARKER, marker)
    result.written.extend(written)
    result.removed.extend(removed)
    result.unchanged += unchanged
