"""Preview environments: `stackctl promote PROFILE --preview NAME`, `stackctl previews list|prune`.

A preview is the profile's stack in a namespace of its own, `<namespace>-<NAME>`, so that a branch
can be tried on the real cluster beside the main deployment and thrown away. Everything promote does
(render, apply in waves, wait, prune, record revisions, roll back) runs unchanged inside that
namespace: `profile_for` gives promote, `history` and `rollback` the profile with the preview's
namespace, and the ApplySet and revisions are keyed by namespace (`history.Release`), so a preview
has its own history and its prune lists only its own objects.

What makes it a preview, and keeps it off the main namespace:

- the rendered Namespace (the only cluster-scoped object the renderer makes) carries the labels
  `stackctl.io/preview`, `stackctl.io/profile`, `stackctl.io/branch` (the git branch as a label
  value; the full name in the annotation of the same key) and the annotation `stackctl.io/expires`
  (RFC 3339, UTC). `previews prune` deletes only namespaces with the preview label, and promote
  refuses to take over an existing namespace without it (`shop` + `prod` must not become someone's
  `shop-prod`);
- every other object must be in the preview's namespace (checked, not assumed), and an Ingress host
  becomes `<NAME>.<host>` so it never takes the main one's traffic;
- secrets the profile lists under `kubernetes.preview.generate` get values of their own, made by
  the key's `@secret` generator, kept in the Secret `stackctl.preview-values` of the preview's
  namespace (applied with the stack, type `stackctl.io/preview-values`) and read back on the next
  promote, so they stay the same across re-promotes and are gone with the namespace. Nothing of them
  is written to disk or printed. Every other secret comes from the profile's store, as for promote.

The expiry counts from the first promote; a re-promote keeps it (an unchanged re-promote stays
"no changes") unless `--ttl` is given, which sets it to now + TTL.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import secrets as _rand
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from stackctl.errors import InputError, OperationError, ProfileError
from stackctl.kubernetes.client import Cluster, Ref
from stackctl.kubernetes.labels import (
    A_BRANCH,
    A_EXPIRES,
    A_WAVE,
    L_BRANCH,
    L_PREVIEW,
    L_PROFILE,
    PREVIEW_VALUES_TYPE,
)
from stackctl.kubernetes.names import label_value
from stackctl.profile.reader import DNS1123_LABEL
from stackctl.profile.types import Profile

DEFAULT_TTL = 72 * 3600
VALUES_SECRET = "stackctl.preview-values"  # a dot: no rendered object (DNS labels) can be named so
_VERSION_SUFFIX = ".version"  # data key of the random id naming a value's version (its digest)
_RESERVED = ("default", "kube-system", "kube-public", "kube-node-lease")
_WAVE_CONFIG = "1"  # applied with the stack's Secrets, after the Namespace


@dataclass(frozen=True)
class Request:
    """What the user asked for: `--preview NAME` and `--ttl` (seconds; None: keep or default)."""

    name: str
    ttl: int | None = None


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------
def namespace_of(prof: Profile, name: str) -> str:
    """`<namespace>-<name>`, with the name and the result checked (errors name `--preview`)."""
    if prof.kubernetes is None:
        raise ProfileError("a preview needs a kubernetes: section (namespace, and the context to promote to)",
                           file=prof.display_path, field="kubernetes")
    if not name or len(name) > 63 or not DNS1123_LABEL.match(name):
        raise InputError(f"preview name {name!r} must be a DNS-1123 label (lowercase letters, digits and '-', "
                         "starting and ending with a letter or digit)", field="--preview",
                         hint="e.g. --preview pr-42")
    base = prof.kubernetes.namespace
    namespace = f"{base}-{name}"
    if len(namespace) > 63:
        raise InputError(f"preview namespace {namespace!r} would be {len(namespace)} characters; a namespace has at "
                         f"most 63 ({base!r} + '-' + the name)", field="--preview",
                         hint=f"use a name of at most {max(62 - len(base), 0)} characters")
    if namespace in _RESERVED or namespace.startswith("kube-"):
        raise InputError(f"preview namespace {namespace!r} is a namespace Kubernetes reserves", field="--preview",
                         hint="choose another name")
    return namespace


def profile_for(prof: Profile, name: str) -> Profile:
    """The profile with the preview's namespace: promote, history and rollback then act in it alone."""
    namespace = namespace_of(prof, name)
    assert prof.kubernetes is not None
    return replace(prof, kubernetes=replace(prof.kubernetes, namespace=namespace))


def preview_host(host: str, name: str) -> str:
    """The host of a preview's Ingress: `<name>.<host>` (`*.example.com` → `*.<name>.example.com`)."""
    if host.startswith("*."):
        return f"*.{name}.{host[2:]}"
    return f"{name}.{host}"


def rfc3339(moment: _dt.datetime) -> str:
    return moment.astimezone(_dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> _dt.datetime | None:
    try:
        moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=_dt.UTC)


# ---------------------------------------------------------------------------------------------
# promote --preview: before and after rendering
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """A preview about to be promoted: where, from which branch, until when, and its own secret
    values (NAME → (value, digest)); never shown (`repr` leaves the values out)."""

    name: str
    namespace: str
    profile: str
    branch: str | None
    expires: str
    values: Mapping[str, tuple[str, str]]
    versions: Mapping[str, str]

    def __repr__(self) -> str:
        return f"Plan(name={self.name!r}, namespace={self.namespace!r}, values={sorted(self.values)})"


def begin(cluster: Cluster, prof: Profile, request: Request, *, now: _dt.datetime | None = None) -> Plan:
    """Read what the cluster has of the preview (its Namespace, its generated values) and decide
    the expiry and the values: kept when present, generated when missing. `prof` is the profile as
    loaded (not `profile_for`'s)."""
    from stackctl import git

    namespace = namespace_of(prof, request.name)
    assert prof.kubernetes is not None
    live = cluster.get(Ref(kind="Namespace", name=namespace, api_version="v1"))
    meta = (live or {}).get("metadata") or {}
    labels = meta.get("labels") or {}
    if live is not None and labels.get(L_PREVIEW) != request.name:
        raise InputError(f"namespace {namespace} exists and is not preview {request.name!r} (no "
                         f"{L_PREVIEW}={request.name} label): stackctl does not take it over", field="--preview",
                         hint="choose another preview name")
    if live is not None and labels.get(L_PROFILE) not in (None, prof.name):
        raise InputError(f"namespace {namespace} is preview {request.name!r} of profile {labels[L_PROFILE]!r}, "
                         f"not of {prof.name!r}", field="--preview", hint="choose another preview name")
    moment = now or _dt.datetime.now(_dt.UTC)
    kept = (meta.get("annotations") or {}).get(A_EXPIRES)
    if request.ttl is None and kept and parse_time(kept) is not None:
        expires = kept
    else:
        ttl = request.ttl or prof.kubernetes.preview.ttl or DEFAULT_TTL
        expires = rfc3339(moment + _dt.timedelta(seconds=ttl))
    values, versions = _values(cluster, prof, namespace)
    return Plan(name=request.name, namespace=namespace, profile=prof.name, branch=git.current_branch(prof.root),
                expires=expires, values=values, versions=versions)


def _values(cluster: Cluster, prof: Profile, namespace: str
            ) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """The preview's own values of `kubernetes.preview.generate`: read back, or generated."""
    assert prof.kubernetes is not None
    names = prof.kubernetes.preview.generate
    if not names:
        return {}, {}
    from stackctl.secrets.ops import template_if_any

    template = template_if_any(prof)
    generators = {}
    for i, name in enumerate(names):
        key = template.get(name) if template is not None else None
        where = f"kubernetes.preview.generate[{i}]"
        if key is None or not key.is_secret:
            raise ProfileError(f"{name} is not a @secret key of the template "
                               f"{template.display if template else prof.env.template.name}",
                               file=prof.display_path, field=where, hint="list only keys annotated @secret GENERATOR")
        if key.generator is None:
            raise ProfileError(f"{name} has no generator (`# @secret` alone): a preview cannot make a value for it",
                               file=prof.display_path, field=where,
                               hint="annotate it with a generator, e.g. `# @secret password:24`, or leave it out")
        generators[name] = key.generator
    live = cluster.get(Ref(kind="Secret", name=VALUES_SECRET, namespace=namespace, api_version="v1"))
    data = {k: base64.b64decode(v).decode("utf-8") for k, v in ((live or {}).get("data") or {}).items()}
    values: dict[str, tuple[str, str]] = {}
    versions: dict[str, str] = {}
    for name, gen in generators.items():
        value, version = data.get(name), data.get(name + _VERSION_SUFFIX)
        if value is None or not version or gen.validate(value) is not None:
            value, version = gen.generate(), _rand.token_hex(16)
        digest = hashlib.sha256(f"stackctl/v1 preview|{namespace}|{name}|{version}".encode()).hexdigest()[:32]
        values[name] = (value, digest)
        versions[name] = version
    return values, versions


def environ(prof: Profile, plan: Plan) -> dict[str, str]:
    """What Compose interpolates with (as promote's): the environment and the profile's env, with the
    preview's own values in place of the store's."""
    import os

    from stackctl.secrets import env_values

    return {**os.environ, **env_values(prof, {n: v for n, (v, _) in plan.values.items()})}


def finish(objects: Sequence[dict[str, Any]], plan: Plan, warn: Callable[[str], None]) -> list[dict[str, Any]]:
    """The rendered objects made the preview's: the Namespace labelled, every object checked to be in
    the preview's namespace, Ingress hosts moved to `<name>.<host>`, the generated values' Secret added."""
    out: list[dict[str, Any]] = []
    namespace_seen = False
    stack_labels: dict[str, str] = {}
    for obj in objects:
        obj = _copy(obj)
        meta = obj.setdefault("metadata", {})
        if obj.get("kind") == "Namespace":
            if meta.get("name") != plan.namespace:
                raise OperationError(f"the render made Namespace {meta.get('name')}, not the preview's "
                                     f"{plan.namespace}: nothing was applied")
            namespace_seen = True
            stack_labels = dict(meta.get("labels") or {})
            meta["labels"] = {**stack_labels, **namespace_labels(plan)}
            meta["annotations"] = dict(sorted({**(meta.get("annotations") or {}),
                                               **namespace_annotations(plan)}.items()))
        elif meta.get("namespace") != plan.namespace:
            raise OperationError(f"{obj.get('kind')} {meta.get('name')} is rendered for namespace "
                                 f"{meta.get('namespace') or '(none: cluster-scoped)'}, outside the preview's "
                                 f"{plan.namespace}: nothing was applied")
        if obj.get("kind") == "Ingress":
            _move_hosts(obj, plan, warn)
        out.append(obj)
    if not namespace_seen:
        raise OperationError(f"the render made no Namespace {plan.namespace}: nothing was applied")
    if plan.values:
        out.append(values_secret(plan, stack_labels))
    return out


def namespace_labels(plan: Plan) -> dict[str, str]:
    out = {L_PREVIEW: plan.name, L_PROFILE: label_value(plan.profile)}
    if plan.branch:
        out[L_BRANCH] = label_value(plan.branch)
    return out


def namespace_annotations(plan: Plan) -> dict[str, str]:
    return {A_EXPIRES: plan.expires, **({A_BRANCH: plan.branch} if plan.branch else {})}


def values_secret(plan: Plan, labels: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, str] = {}
    for name in sorted(plan.values):
        data[name] = base64.b64encode(plan.values[name][0].encode("utf-8")).decode("ascii")
        data[name + _VERSION_SUFFIX] = base64.b64encode(plan.versions[name].encode("ascii")).decode("ascii")
    return {"apiVersion": "v1", "kind": "Secret", "type": PREVIEW_VALUES_TYPE,
            "metadata": {"name": VALUES_SECRET, "namespace": plan.namespace,
                         "labels": {**labels, L_PREVIEW: plan.name}, "annotations": {A_WAVE: _WAVE_CONFIG}},
            "data": data}


def keep_expiry(cluster: Cluster, objects: Sequence[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """A rollback inside a preview deploys the revision's objects, its Namespace included: with the
    expiry the preview has now, not the one it had then (a rollback must not shorten or end it)."""
    live = cluster.get(Ref(kind="Namespace", name=namespace, api_version="v1"))
    expires = (((live or {}).get("metadata") or {}).get("annotations") or {}).get(A_EXPIRES)
    out = []
    for obj in objects:
        if expires and obj.get("kind") == "Namespace" and obj.get("metadata", {}).get("name") == namespace:
            obj = _copy(obj)
            meta = obj["metadata"]
            meta["annotations"] = dict(sorted({**(meta.get("annotations") or {}), A_EXPIRES: expires}.items()))
        out.append(obj)
    return out


def _move_hosts(obj: dict[str, Any], plan: Plan, warn: Callable[[str], None]) -> None:
    spec = obj.get("spec") or {}
    name = obj["metadata"].get("name")
    moved: list[str] = []
    for rule in spec.get("rules") or []:
        if rule.get("host"):
            new = preview_host(rule["host"], plan.name)
            if len(new) > 253:
                raise InputError(f"Ingress {name}: preview host {new[:60]}... is longer than 253 characters",
                                 field="--preview", hint="use a shorter preview name")
            moved.append(f"{rule['host']} → {new}")
            rule["host"] = new
    for tls in spec.get("tls") or []:
        tls["hosts"] = [preview_host(h, plan.name) for h in tls.get("hosts") or []]
        warn(f"Ingress {name} of preview {plan.name}: its TLS Secret {tls.get('secretName')} must exist in "
             f"namespace {plan.namespace} and cover {', '.join(tls['hosts'])}")
    if moved:
        warn(f"Ingress {name} of preview {plan.name}: host {', '.join(moved)} (a preview never serves the main "
             "host)")


def _copy(obj: Mapping[str, Any]) -> dict[str, Any]:
    import copy

    return copy.deepcopy(dict(obj))


# ---------------------------------------------------------------------------------------------
# previews list / prune
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Info:
    """One preview as `previews list` shows it."""

    name: str
    profile: str
    namespace: str
    branch: str
    created: str
    expires: str
    expired: bool
    terminating: bool

    def as_data(self) -> dict[str, Any]:
        return {"name": self.name, "profile": self.profile, "namespace": self.namespace,
                "branch": self.branch or None, "created": self.created, "expires": self.expires or None,
                "expired": self.expired, "terminating": self.terminating}


def info_of(namespace: Mapping[str, Any], now: _dt.datetime) -> Info:
    meta = namespace.get("metadata") or {}
    labels = meta.get("labels") or {}
    notes = meta.get("annotations") or {}
    expires = notes.get(A_EXPIRES, "")
    moment = parse_time(expires) if expires else None
    return Info(name=labels.get(L_PREVIEW, ""), profile=labels.get(L_PROFILE, ""), namespace=meta.get("name", ""),
                branch=notes.get(A_BRANCH) or labels.get(L_BRANCH, ""), created=meta.get("creationTimestamp", ""),
                expires=expires, expired=moment is not None and moment <= now,
                terminating=(namespace.get("status") or {}).get("phase") == "Terminating"
                or bool(meta.get("deletionTimestamp")))


def list_previews(cluster: Cluster, *, now: _dt.datetime | None = None) -> list[Info]:
    """Every preview namespace of the cluster (those with the preview label), by namespace."""
    items, _ = cluster.list(cluster.kind("v1", "Namespace"), None, selector=L_PREVIEW)
    moment = now or _dt.datetime.now(_dt.UTC)
    return sorted((info_of(ns, moment) for ns in items if (ns.get("metadata") or {}).get("labels", {}).get(L_PREVIEW)),
                  key=lambda i: i.namespace)


def select(cluster: Cluster, names: Iterable[str], *, expired: bool, now: _dt.datetime | None = None) -> list[Info]:
    """The previews `previews prune` deletes: those named (a preview name or its namespace) and, with
    `expired`, the expired ones (of those named, when names are given). A named namespace that is not
    a preview is refused: prune never deletes anything else."""
    wanted = list(dict.fromkeys(names))
    if not wanted and not expired:
        raise InputError("name the previews to prune, or pass --expired", field="NAME",
                         hint="`stackctl previews list` shows them")
    found = list_previews(cluster, now=now)
    if not wanted:
        return [i for i in found if i.expired]
    out: list[Info] = []
    for name in wanted:
        match = [i for i in found if name in (i.name, i.namespace)]
        if not match:
            live = cluster.get(Ref(kind="Namespace", name=name, api_version="v1"))
            if live is not None:
                raise InputError(f"namespace {name} is not a preview (it has no {L_PREVIEW} label): stackctl "
                                 "never deletes it", field="NAME")
            raise InputError(f"no preview {name!r} (previews: {', '.join(i.namespace for i in found) or 'none'})",
                             field="NAME")
        out += [i for i in match if i not in out and (i.expired or not expired)]
    return out


def delete(cluster: Cluster, previews: Sequence[Info], *, timeout: float, sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.monotonic) -> None:
    """Delete the previews' namespaces (their objects and generated values go with them) and wait
    until they are gone. Each is checked again just before: only a namespace with the preview label."""
    refs = [Ref(kind="Namespace", name=i.namespace, api_version="v1") for i in previews]
    for ref in refs:
        live = cluster.get(ref)
        if live is None:
            continue
        if not ((live.get("metadata") or {}).get("labels") or {}).get(L_PREVIEW):
            raise InputError(f"namespace {ref.name} is not a preview (no {L_PREVIEW} label): not deleted",
                             field="NAME")
        cluster.delete(ref)
    end = clock() + timeout
    waiting = list(refs)
    while waiting:
        waiting = [r for r in waiting if cluster.get(r) is not None]
        if not waiting:
            return
        if clock() >= end:
            raise OperationError(f"namespace {', '.join(r.name for r in waiting)} still terminating after "
                                 f"{timeout:g}s (its objects' finalizers hold it)",
                                 hint="`kubectl get all -n NAMESPACE` shows what is left")
        sleep(0.5)
