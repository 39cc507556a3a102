"""`stackctl render gitops`: the profiles' stacks as a kustomize layout for Argo CD or Flux to apply.

```
OUT/
  base/kustomization.yaml, <kind>-<name>.yaml      what every profile shares (layout.py)
  overlays/<profile>/kustomization.yaml            the base + the profile's own objects + patches
  overlays/<profile>/<kind>-<name>.yaml            objects only this profile has
  overlays/<profile>/patches/<kind>-<name>.yaml    JSON 6902: this profile's values of a base object
  overlays/<profile>/secrets/...                   the Secrets: SOPS, SealedSecret or ExternalSecret
  clusters/<profile>/...                           Argo CD Application / Flux GitRepository+Kustomization
  .stackctl-gitops.json                            the files stackctl owns here, the Secrets' digests
```

`kustomize build overlays/<p>` is `stackctl render kubernetes -p <p>` object for object (with the
values, `--include-secrets`, for the sops and sealed-secrets providers: the pod checksums are those
promote applies), except that each Secret is its provider's object. Everything is computed in
memory first (rendering, encryption); only then is anything written, file by file and only where
the bytes changed, so a second run with nothing changed writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackctl.errors import InputError, OperationError, ProfileError, SecretsError
from stackctl.fsutil import owned_marker, write_owned
from stackctl.kubernetes.gitops import layout
from stackctl.kubernetes.gitops.secrets import Sealed, seal, seal_path
from stackctl.profile.types import Profile

MARKER = ".stackctl-gitops.json"
DEFAULT_OUT = "deploy/gitops"


@dataclass
class Files:
    """The whole layout: relative path → text, and the digest records of the encrypted files."""

    texts: dict[str, str] = field(default_factory=dict)
    sealed: dict[str, dict[str, str]] = field(default_factory=dict)


    def add(self, rel: str, text: str) -> None:
        """One file; two objects may not claim one path (a kind and name the file names cannot tell apart)."""
        if rel in self.texts:
            raise OperationError(f"two objects would be written to {rel}", field="--out",
                                 hint="rename one of the services, or report this layout as a bug")
        self.texts[rel] = text


@dataclass(frozen=True)
class Outcome:
    written: list[str]  # new or changed
    removed: list[str]  # stale files of a previous run
    unchanged: int
    warnings: list[str]  # "profile: warning", already located
    profiles: list[str]


def default_profiles(root: Path) -> list[str]:
    """Every profile with a `kubernetes:` section: the others are local-only (`up`)."""
    from stackctl.profile import list_profiles, load_profile

    return [name for name in list_profiles(root) if load_profile(root, name).kubernetes is not None]


def render_gitops(profiles: Sequence[Profile], out: Path, *, shown: str | None = None) -> Outcome:
    """Render `profiles` into the layout at `out` (see the module docstring)."""
    shown = shown or str(out)
    previous = _previous(out, shown)
    files, warnings = build(profiles, out, previous)
    return _write_outcome(out, files, previous, warnings, [p.name for p in profiles])


def build(profiles: Sequence[Profile], out: Path, previous: dict[str, Any]) -> tuple[Files, list[str]]:
    """Every file of the layout, in memory (no write). Raises before anything is written."""
    from stackctl.kubernetes import write
    from stackctl.kubernetes.gather import render_profile

    if not profiles:
        raise InputError("no profile to render: none has a kubernetes: section", field="--profile",
                         hint="name one with -p, or add kubernetes: {namespace: ...} to a profile")
    files = Files()
    warnings: list[str] = []
    objects: dict[str, list[dict[str, Any]]] = {}
    sealed: dict[str, list[Sealed]] = {}
    stacks: dict[str, str] = {}
    old_records: dict[str, dict[str, str]] = previous.get("sealed", {})
    for profile in profiles:
        if profile.kubernetes is None:
            raise ProfileError("render gitops needs a kubernetes: section (the namespace, at least)",
                               file=profile.display_path, field="kubernetes")
        provider = profile.gitops.secrets if profile.gitops else None
        with_values = provider is not None and provider.provider != "external-secrets"
        if with_values:
            _require_store(profile)
        result = render_profile(profile, with_values=with_values)
        warnings.extend(f"{profile.name}: {w}" for w in result.warnings)
        if with_values:
            _require_values(profile, result.secrets.keys, result.secrets.values or {})
        plain = [o for o in result.rendered.objects if o["kind"] != "Secret"]
        secret_objs = [o for o in result.rendered.objects if o["kind"] == "Secret"]
        if secret_objs and provider is None:
            names = ", ".join(o["metadata"]["name"] for o in secret_objs)
            raise ProfileError(f"is required: the stack has Secrets ({names}) and GitOps output never holds a "
                               "value in plaintext", file=profile.display_path, field="gitops.secrets",
                               hint="choose a provider: sops (age recipients), sealed-secrets (the "
                                    "controller's certificate) or external-secrets (your SecretStore); "
                                    "see docs/gitops.md")
        objects[profile.name] = plain
        stacks[profile.name] = result.loaded.stack.name
        overlay_dir = f"overlays/{profile.name}"
        sealed[profile.name] = []
        for secret in secret_objs:
            assert provider is not None
            name = secret["metadata"]["name"]
            guess = seal_path(provider.provider, name)
            rel = f"{overlay_dir}/{guess}"
            prev_text = _read_text(out / rel) if rel in old_records else None
            item = seal(profile, provider, secret, stack=result.loaded.stack.name,
                        previous=old_records.get(rel), previous_text=prev_text,
                        warn=_warner(profile, warnings))
            sealed[profile.name].append(item)
    split = layout.split(objects)
    base_names = []
    for obj in split.base:
        name = f"{layout.file_stem(obj['kind'], obj['metadata']['name'])}.yaml"
        files.add(f"base/{name}", write.to_yaml(obj))
        base_names.append(name)
    if base_names:
        files.add("base/kustomization.yaml", write.to_yaml({**layout.KUSTOMIZATION, "resources": base_names}))
    for profile in profiles:
        overlay = split.overlays[profile.name]
        prefix = f"overlays/{profile.name}"
        resources = ["../../base"] if base_names else []
        for obj in overlay.objects:
            name = f"{layout.file_stem(obj['kind'], obj['metadata']['name'])}.yaml"
            files.add(f"{prefix}/{name}", write.to_yaml(obj))
            resources.append(name)
        for item in sealed[profile.name]:
            files.add(f"{prefix}/{item.path}", item.text)
            resources.append(item.path)
            if item.record is not None:
                files.sealed[f"{prefix}/{item.path}"] = item.record
        patches = []
        for key, ops in overlay.patches:
            name = f"patches/{layout.file_stem(key[1], key[2])}.yaml"
            files.add(f"{prefix}/{name}", write.to_yaml(ops))
            patches.append({"path": name, "target": layout.target(key)})
        kustomization: dict[str, Any] = {**layout.KUSTOMIZATION, "resources": resources}
        if patches:
            kustomization["patches"] = patches
        files.add(f"{prefix}/kustomization.yaml", write.to_yaml(kustomization))
        for rel, text in _controllers(profile, out, stacks[profile.name]).items():
            files.add(rel, text)
    return files, warnings


def _warner(profile: Profile, warnings: list[str]) -> Callable[[str], None]:
    def warn(message: str) -> None:
        warnings.append(f"{profile.name}: {profile.display_path}: {message}")
    return warn


def _controllers(profile: Profile, out: Path, stack: str) -> dict[str, str]:
    """`clusters/<profile>/`: the Argo CD Application and the Flux objects that sync the overlay."""
    from stackctl.kubernetes import write
    from stackctl.kubernetes.gitops import controllers

    if profile.gitops is None or profile.kubernetes is None:
        return {}
    overlay = _repo_path(out / "overlays" / profile.name, profile.root)
    texts = {}
    prefix = f"clusters/{profile.name}"
    sops = profile.gitops.secrets is not None and profile.gitops.secrets.provider == "sops"
    if profile.gitops.argocd is not None:
        app = controllers.argocd_application(profile.gitops.argocd, stack=stack, profile=profile.name,
                                             namespace=profile.kubernetes.namespace, path=overlay)
        texts[f"{prefix}/argocd-application.yaml"] = write.to_yaml(app)
    if profile.gitops.flux is not None:
        repo, kustomization = controllers.flux_objects(profile.gitops.flux, stack=stack, profile=profile.name,
                                                       path=overlay, sops=sops)
        texts[f"{prefix}/flux-gitrepository.yaml"] = write.to_yaml(repo)
        texts[f"{prefix}/flux-kustomization.yaml"] = write.to_yaml(kustomization)
    return texts


def _repo_path(path: Path, root: Path) -> str:
    """The overlay as a path in the repository: relative to the project root (where profiles/ is)."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _require_store(profile: Profile) -> None:
    """The store must exist when `.env.example` declares secrets (else there is nothing to encrypt)."""
    if profile.secrets.store.is_file() or not _template_has_secrets(profile):
        return
    from stackctl.secrets.ops import store_display

    raise SecretsError("the secrets store does not exist: the encrypted Secrets need its values",
                       file=store_display(profile), hint=f"run `stackctl secrets generate -p {profile.name}` first")


def _template_has_secrets(profile: Profile) -> bool:
    if not profile.env.template.is_file():
        return False
    from stackctl.profile.types import display
    from stackctl.secrets.template import load_template

    template = load_template(profile.env.template, display=display(profile.env.template, profile.root),
                             set_in=profile.env.template_set_in)
    return any(key.is_secret for key in template.keys)


def _require_values(profile: Profile, keys: frozenset[str], values: Mapping[str, str]) -> None:
    """Every secret of the template has a value: an encrypted Secret with an empty value would deploy a
    stack that cannot start."""
    from stackctl.secrets.ops import store_display

    missing = sorted(k for k in keys if k not in values)
    if missing:
        raise SecretsError(f"the store has no value for {', '.join(missing)}", file=store_display(profile),
                           hint=f"run `stackctl secrets generate -p {profile.name}`")


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _previous(out: Path, shown: str) -> dict[str, Any]:
    """The marker of the previous run (the files stackctl owns here); refuses a directory it did not write."""
    data = owned_marker(out, MARKER, writer="stackctl render gitops", field=f"--out {shown}")
    if not data:
        return {}
    files = data["files"]
    sealed = {k: v for k, v in (data.get("sealed") or {}).items()
              if isinstance(k, str) and isinstance(v, dict) and k in files}
    return {"files": files, "sealed": sealed}


def _write_outcome(out: Path, files: Files, previous: dict[str, Any], warnings: list[str],
                   profiles: list[str]) -> Outcome:
    marker = json.dumps({"written-by": "stackctl render gitops", "files": sorted(files.texts),
                         "sealed": dict(sorted(files.sealed.items()))}, indent=1, sort_keys=True) + "\n"
    written, removed, unchanged = write_owned(out, files.texts, previous.get("files", []), MARKER, marker)
    return Outcome(written=written, removed=removed, unchanged=unchanged, warnings=warnings, profiles=profiles)
