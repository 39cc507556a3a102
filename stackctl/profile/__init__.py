"""Profiles and Compose loading: profile + Compose files → the typed stack model."""

from __future__ import annotations

from pathlib import Path

from stackctl.errors import ProfileError
from stackctl.profile.schema import PROFILE_NAME, Profile, display, parse_profile

__all__ = ["Profile", "find_project_root", "load_profile", "list_profiles", "read_yaml"]

PROFILES_DIR = "profiles"


def find_project_root(start: Path | None = None) -> Path:
    """The nearest directory (from `start`, default cwd, upwards) that holds a `profiles/` directory.

    Falls back to `start` itself, so `stackctl init` can scaffold a new project there.
    """
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / PROFILES_DIR).is_dir():
            return candidate
    return here


def list_profiles(root: Path) -> list[str]:
    directory = root / PROFILES_DIR
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.yaml"))


def read_yaml(path: Path, root: Path) -> object:
    """Parse a YAML file; syntax errors name the file, line and column (exit 2)."""
    import yaml

    shown = display(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError("file not found", file=shown) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read: {exc}", file=shown) from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        raise ProfileError(f"invalid YAML: {exc.problem}", file=shown, field=where) from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"invalid YAML: {exc}", file=shown) from None


def load_profile(root: Path, name: str) -> Profile:
    """Load and validate `profiles/<name>.yaml` under the project root."""
    if not PROFILE_NAME.match(name):
        raise ProfileError(f"invalid profile name {name!r} (use lowercase letters, digits, '-' and '_')",
                           field="--profile")
    path = root / PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        known = list_profiles(root)
        hint = f"known profiles: {', '.join(known)}" if known else "run `stackctl init` to create profiles"
        raise ProfileError(f"profile {name!r} not found", file=display(path, root), hint=hint)
    return parse_profile(read_yaml(path, root), name=name, path=path, root=root)
