"""Images of `build:` services for a cluster: an immutable tag, built and pushed only when missing.

The tag is a content digest of what the build reads: every file of the build context that
`.dockerignore` does not exclude (path, mode, bytes), the Dockerfile (also when it lives outside the
context), the target and the build args — `src-<16 hex>`. The same sources give the same tag on any
machine; a changed file gives a new tag, so a workload's pod template changes exactly when its image
does. (Base images are not part of it: rebuild with a new `image_tag` to pick up a new base.) A
profile's `kubernetes.image_tag` wins over the digest when set.

`plan()` computes the references (pure: it only reads the build contexts), `ensure()` builds and
pushes what the registry does not have yet (`docker manifest inspect` first, `docker build`,
`docker push`: all through `stackctl.compose.cli`, the one docker runner), `retag()` points the
rendered workloads at the planned references.
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackctl import model as m
from stackctl.errors import InputError
from stackctl.profile.types import KubernetesSettings

TAG_PREFIX = "src-"
MAX_CONTEXT_FILES = 50_000


@dataclass(frozen=True)
class ImagePlan:
    service: str
    rendered: str  # the reference the renderer wrote (profile tag, or the Compose image's tag)
    ref: str  # what the cluster pulls: <registry>/<name>:<immutable tag>
    context: Path
    dockerfile: Path | None
    target: str | None
    args: Mapping[str, str]

    @property
    def tag(self) -> str:
        return self.ref.rpartition(":")[2]


@dataclass(frozen=True)
class ImageResult:
    plan: ImagePlan
    action: str  # present | pushed | built | planned


def plan(stack: m.Stack, kube: KubernetesSettings, *, root: Path) -> list[ImagePlan]:
    """One plan per built image (services sharing an `image:` share it). Empty without a registry:
    then the cluster must already have the images, named as rendered."""
    from stackctl.kubernetes.names import built_image

    if not kube.registry:
        return []
    plans: dict[str, ImagePlan] = {}
    for svc in stack.services:
        if svc.build is None:
            continue
        rendered = built_image(stack.name, svc.name, svc.image, kube.registry, kube.image_tag)
        if rendered in plans:
            continue
        context = Path(svc.build.context)
        if not context.is_absolute():
            context = (root / context).resolve()
        if not context.is_dir():
            raise InputError(f"build context {context} is not a directory", field=f"services.{svc.name}.build")
        dockerfile = None
        if svc.build.dockerfile:
            dockerfile = Path(svc.build.dockerfile)
            if not dockerfile.is_absolute():
                dockerfile = context / dockerfile
        args = {k: v for k, v in sorted(svc.build.args.items()) if v is not None}
        tag = kube.image_tag or TAG_PREFIX + content_digest(context, dockerfile, svc.build.target, args)[:16]
        ref = built_image(stack.name, svc.name, svc.image, kube.registry, tag)
        plans[rendered] = ImagePlan(service=svc.name, rendered=rendered, ref=ref, context=context,
                                    dockerfile=dockerfile, target=svc.build.target, args=args)
    return list(plans.values())


def content_digest(context: Path, dockerfile: Path | None, target: str | None, args: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    h.update(b"stackctl-image-v1\0")
    patterns = _dockerignore(context)
    for count, (rel, path) in enumerate(_walk(context, patterns), start=1):
        if count > MAX_CONTEXT_FILES:
            raise InputError(f"build context {context} has more than {MAX_CONTEXT_FILES} files; add a .dockerignore")
        st = path.lstat()
        h.update(rel.encode() + b"\0" + oct(stat.S_IMODE(st.st_mode) & 0o111).encode() + b"\0")
        if stat.S_ISLNK(st.st_mode):
            h.update(b"link\0" + os.readlink(path).encode())
        else:
            h.update(hashlib.sha256(path.read_bytes()).digest())
    df = dockerfile or context / "Dockerfile"
    h.update(b"\0dockerfile\0")
    if df.is_file():
        h.update(df.read_bytes())
    h.update(b"\0target\0" + (target or "").encode())
    for k, v in sorted(args.items()):
        h.update(b"\0arg\0" + k.encode() + b"=" + v.encode())
    return h.hexdigest()


def _dockerignore(context: Path) -> list[tuple[bool, str]]:
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pat = os.path.normpath(line.lstrip("!").strip().lstrip("/"))
        out.append((negate, pat))
    return out


def _ignored(rel: str, patterns: Sequence[tuple[bool, str]]) -> bool:
    ignored = False
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for negate, pat in patterns:
        pat = pat.replace("**/", "*/") if pat.startswith("**/") else pat
        hit = any(fnmatch.fnmatchcase(p, pat) or fnmatch.fnmatchcase(p, pat.replace("**", "*")) for p in prefixes)
        if hit:
            ignored = not negate
    return ignored


def _walk(context: Path, patterns: Sequence[tuple[bool, str]]) -> list[tuple[str, Path]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(context):
        base = Path(dirpath)
        dirnames.sort()
        for fname in sorted(filenames):
            path = base / fname
            rel = path.relative_to(context).as_posix()
            if rel == ".dockerignore" or not _ignored(rel, patterns):
                out.append((rel, path))
    return out


def _loopback(ref: str) -> bool:
    host = ref.split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def present(ref: str) -> bool:
    """Whether the registry already has `ref` (a loopback registry may speak plain HTTP)."""
    from stackctl.compose import cli

    args = ["manifest", "inspect"] + (["--insecure"] if _loopback(ref) else []) + [ref]
    return cli.run(args, check=False, timeout=60).returncode == 0


def ensure(plans: Sequence[ImagePlan], *, dry_run: bool = False,
           log: Callable[[str], None] = lambda _t: None) -> list[ImageResult]:
    """Build and push every planned image the registry does not have. `dry_run` only looks."""
    from stackctl.compose import cli

    results = []
    for p in plans:
        if present(p.ref):
            results.append(ImageResult(p, "present"))
            continue
        if dry_run:
            results.append(ImageResult(p, "planned"))
            continue
        local = cli.run(["image", "inspect", "--format", "{{.Id}}", p.ref], check=False, timeout=60).returncode == 0
        if not local:
            log(f"building {p.ref} (service {p.service})")
            # --force-rm: the classic builder (no buildx) keeps the container of a failed RUN otherwise
            argv = ["build", "--force-rm", "-t", p.ref]
            if p.dockerfile is not None:
                argv += ["-f", str(p.dockerfile)]
            if p.target:
                argv += ["--target", p.target]
            for k, v in p.args.items():
                argv += ["--build-arg", f"{k}={v}"]
            cli.run([*argv, str(p.context)], timeout=3600)
        log(f"pushing {p.ref}")
        cli.run(["push", p.ref], timeout=3600)
        results.append(ImageResult(p, "pushed" if local else "built"))
    return results


def retag(objects: Sequence[dict[str, Any]], plans: Sequence[ImagePlan]) -> list[dict[str, Any]]:
    """The objects with every container image that is a planned build pointed at its immutable ref.

    A Job's pod template is immutable, so the renderer names a Job after a hash of its spec; that
    hash was taken before the images were pointed at their refs. A Job whose image changed here gets
    its name from the final spec instead: a new build of its image is a new Job (the old one is
    pruned), the same build keeps the name and the Job does not run again."""
    mapping = {p.rendered: p.ref for p in plans if p.rendered != p.ref}
    if not mapping:
        return list(objects)
    out = []
    for obj in objects:
        new = _retag(obj, mapping)
        if new.get("kind") == "Job" and new != obj:
            new["metadata"]["name"] = _job_name(str(obj["metadata"]["name"]), new["spec"])
        out.append(new)
    return out


def _job_name(rendered: str, spec: Mapping[str, Any]) -> str:
    from stackctl.kubernetes.names import canonical, short_hash, with_suffix

    base, _, suffix = rendered.rpartition("-")
    if not (base and len(suffix) == 8 and all(c in "0123456789abcdef" for c in suffix)):
        base = rendered
    return with_suffix(base, short_hash(canonical(spec)))


def _retag(obj: Any, mapping: Mapping[str, str]) -> Any:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "image" and isinstance(v, str) and v in mapping:
                out[k] = mapping[v]
            else:
                out[k] = _retag(v, mapping)
        return out
    if isinstance(obj, list):
        return [_retag(v, mapping) for v in obj]
    return obj
