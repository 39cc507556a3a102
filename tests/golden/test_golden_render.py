"""Golden tests: every case under tests/golden/<case>/ rendered for Kubernetes through the real
pipeline (`docker compose config` resolves it) and compared byte for byte with
`expected/<profile>.yaml` and `expected/<profile>.warnings.txt`.

    .venv/bin/pytest tests/golden                    # compare
    .venv/bin/pytest tests/golden --update-golden    # rewrite expected/ (then review the diff)

A case is a small project: `compose.yaml`, `profiles/*.yaml` (each profile is rendered), an optional
`.env.example` (secret annotations) and `values.env` (the values Compose interpolates). A case may
hold `case.yaml` with `root:` (render a project elsewhere, such as the bundled examples),
`copy:` (render a copy of those paths of `root`, so local env files there cannot leak in),
`profiles:` (which to render) and `environ:` (variables for Compose). Every rendered object must
also validate against the Kubernetes schema of the profile's version.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackctl.kubernetes import write
from stackctl.kubernetes.gather import render_profile
from stackctl.kubernetes.render import report as conversion
from stackctl.kubernetes.validate import validate
from stackctl.profile import list_profiles, load_profile

pytestmark = pytest.mark.docker

HERE = Path(__file__).resolve().parent
# Only what the Docker CLI needs: a developer's shell variables must not leak into the output.
PASSED_ENV = ("PATH", "HOME", "DOCKER_CONFIG", "DOCKER_HOST", "DOCKER_CONTEXT", "XDG_RUNTIME_DIR")


def _cases() -> list[tuple[Path, Path, str, dict[str, str], tuple[str, ...]]]:
    out = []
    for case in sorted(p for p in HERE.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        spec: dict[str, Any] = {}
        if (case / "case.yaml").is_file():
            spec = yaml.safe_load((case / "case.yaml").read_text()) or {}
        root = (case / spec.get("root", ".")).resolve()
        for profile in spec.get("profiles") or list_profiles(root):
            out.append((case, root, profile, {str(k): str(v) for k, v in (spec.get("environ") or {}).items()},
                        tuple(spec.get("copy") or ())))
    return out


CASES = _cases()


def test_corpus_is_large_enough() -> None:
    assert len({case for case, *_ in CASES}) >= 20


@pytest.mark.parametrize(("case", "root", "profile", "environ", "copy"), CASES,
                         ids=[f"{c[0].name}-{c[2]}" for c in CASES])
def test_golden(case: Path, root: Path, profile: str, environ: dict[str, str], copy: tuple[str, ...],
                request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if copy:
        for rel in copy:
            shutil.copytree(root / rel, tmp_path / rel)
        root = tmp_path
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    result = render_profile(load_profile(root, profile), environ={**env, **environ})
    objects = list(result.rendered.objects)
    manifests = write.to_stream(objects)
    report = "".join(f"warning: {w}\n" for w in result.warnings)
    report += "".join(f"note: {n}\n" for n in result.rendered.notes)
    report = report.replace(str(root), "<root>")

    expected_dir = case / "expected"
    files = {expected_dir / f"{profile}.yaml": manifests, expected_dir / f"{profile}.warnings.txt": report}
    if request.config.getoption("--update-golden"):
        expected_dir.mkdir(exist_ok=True)
        for path, text in files.items():
            path.write_text(text, encoding="utf-8")
    for path, text in files.items():
        assert path.is_file(), f"{path} is missing: run pytest tests/golden --update-golden and review it"
        assert text == path.read_text(encoding="utf-8"), (
            f"{path.relative_to(HERE)} differs: run pytest tests/golden --update-golden and review the diff")
    problems = validate(objects, result.target.kubernetes.version)
    assert not problems, "\n".join(map(str, problems))
    assert list(yaml.safe_load_all(manifests)) == objects  # the text loads back to exactly the objects
    # The conversion report (`render kubernetes --report`) accounts for every field of every service: a
    # field with nothing rendered has a warning (so --strict fails on it) or a reason that nothing is lost.
    built = conversion.build(result.loaded.stack, result.rendered.objects, result.warnings, result.rendered.notes)
    unaccounted = [f"services.{s.name}.{f.field}" for s in built.services for f in s.fields
                   if f.dropped == conversion.UNACCOUNTED]
    assert not unaccounted, f"dropped without a warning: {unaccounted}"
    assert [f.field for s in built.services for f in s.fields] == [
        name for svc in result.loaded.stack.services for name in svc.fields]
