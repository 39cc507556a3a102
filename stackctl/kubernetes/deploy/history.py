"""Revisions and the ApplySet, stored in the cluster next to the stack.

Identity: one stack in one namespace. Two objects carry it:

- the ApplySet parent, Secret `stackctl.applyset.<stack>` (kubectl's ApplySet convention: label
  `applyset.kubernetes.io/id`, annotations `applyset.kubernetes.io/tooling: stackctl/<version>` and
  `applyset.kubernetes.io/contains-group-kinds`). Every object promote applies carries the label
  `applyset.kubernetes.io/part-of: <id>`; prune lists exactly those (by the group-kinds the parent
  names) and nothing else, so objects that are not the stack's are never touched.
- one Secret per revision, `stackctl.rev.<stack>.v<N>` (type `stackctl.io/revision`: Secrets because
  the applied set holds the stack's secret values), with the applied objects (gzipped JSON), a
  summary, and labels for listing (`stackctl.io/stack`, `stackctl.io/revision`, `stackctl.io/status`:
  deployed | superseded | failed). The newest `MAX_REVISIONS` are kept. Where a revision came from
  (`Provenance`: `--message`, the git commit and whether the tree was dirty, user@host) is in
  annotations too; revisions written before those existed simply have none.

Names with dots cannot clash with rendered objects (the renderer makes DNS labels).
"""

from __future__ import annotations

import base64
import datetime as _dt
import gzip
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stackctl import __version__
from stackctl.errors import InputError, OperationError
from stackctl.kubernetes.client import KINDS, ApiError, Cluster, Ref
from stackctl.kubernetes.labels import (
    A_AUTHOR,
    A_CONTEXT,
    A_CREATED,
    A_DESCRIPTION,
    A_GIT_COMMIT,
    A_GIT_DIRTY,
    A_GROUP_KINDS,
    A_MESSAGE,
    A_PROFILE,
    A_TOOLING,
    A_VERSION,
    L_APPLYSET_ID,
    L_APPLYSET_PART_OF,
    L_MANAGED_BY,
    L_REVISION,
    L_STACK,
    L_STATUS,
    REVISION_TYPE,
)

MAX_REVISIONS = 10
TOOLING = f"stackctl/v{__version__}"


@dataclass(frozen=True)
class Release:
    """Which stack, where: the key of its ApplySet and revisions."""

    stack: str
    namespace: str
    profile: str

    @property
    def parent_name(self) -> str:
        return f"stackctl.applyset.{self.stack}"

    @property
    def parent_ref(self) -> Ref:
        return Ref(kind="Secret", name=self.parent_name, namespace=self.namespace, api_version="v1")

    @property
    def applyset_id(self) -> str:
        """kubectl's ApplySet id: base64url(sha256("<name>.<namespace>.<Kind>.<group>")), framed."""
        raw = f"{self.parent_name}.{self.namespace}.Secret."
        digest = base64.urlsafe_b64encode(hashlib.sha256(raw.encode()).digest()).decode().rstrip("=")
        return f"applyset-{digest}-v1"

    @property
    def member_selector(self) -> str:
        return f"{L_APPLYSET_PART_OF}={self.applyset_id}"

    def revision_name(self, number: int) -> str:
        return f"stackctl.rev.{self.stack}.v{number}"


@dataclass(frozen=True)
class Provenance:
    """Where a revision came from: the user's `--message`, the project's git commit (and whether its
    work tree had uncommitted changes), and who deployed it (user@host). Empty (None) when unknown:
    no git, no message, or a revision stored before stackctl recorded these."""

    message: str = ""
    commit: str = ""
    dirty: bool | None = None
    author: str = ""

    def annotations(self) -> dict[str, str]:
        out = {A_MESSAGE: self.message[:1000], A_GIT_COMMIT: self.commit, A_AUTHOR: self.author,
               A_GIT_DIRTY: "" if self.dirty is None else str(self.dirty).lower()}
        return {k: v for k, v in out.items() if v}

    @classmethod
    def of(cls, notes: Mapping[str, str]) -> Provenance:
        dirty = notes.get(A_GIT_DIRTY)
        return cls(message=notes.get(A_MESSAGE, ""), commit=notes.get(A_GIT_COMMIT, ""),
                   dirty=None if dirty is None else dirty == "true", author=notes.get(A_AUTHOR, ""))

    @property
    def source(self) -> str:
        """The commit as `history` shows it: short, `+dirty` when the tree had changes; "" unknown."""
        return (self.commit[:12] + ("+dirty" if self.dirty else "")) if self.commit else ""

    def as_data(self) -> dict[str, Any]:
        return {"message": self.message or None, "commit": self.commit or None, "dirty": self.dirty,
                "author": self.author or None}


NO_PROVENANCE = Provenance()


@dataclass(frozen=True)
class Revision:
    number: int
    status: str  # deployed | superseded | failed
    created: str
    description: str
    profile: str
    context: str
    version: str
    summary: Mapping[str, Any]
    raw: Mapping[str, Any]  # the Secret
    provenance: Provenance = Provenance()

    def objects(self) -> list[dict[str, Any]]:
        data = (self.raw.get("data") or {}).get("objects")
        if not data:
            return []
        return json.loads(gzip.decompress(base64.b64decode(data)))  # type: ignore[no-any-return]

    def as_data(self) -> dict[str, Any]:
        return {"revision": self.number, "status": self.status, "created": self.created,
                "description": self.description, "profile": self.profile, "context": self.context,
                "stackctl": self.version, **self.provenance.as_data(),
                **({"summary": dict(self.summary)} if self.summary else {})}


def now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------
# ApplySet
# ---------------------------------------------------------------------------------------------
def member(obj: Mapping[str, Any], release: Release) -> dict[str, Any]:
    """The object as promote applies it: the ApplySet part-of label added (not on the Namespace,
    which promote never prunes)."""
    out = dict(obj)
    if obj.get("kind") == "Namespace":
        return out
    meta = dict(obj.get("metadata") or {})
    meta["labels"] = {**(meta.get("labels") or {}), L_APPLYSET_PART_OF: release.applyset_id}
    out["metadata"] = meta
    return out


def group_kinds(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted({Ref.of(o).group_kind for o in objects if o.get("kind") != "Namespace"})


def read_parent(cluster: Cluster, release: Release) -> dict[str, Any] | None:
    parent = cluster.get(release.parent_ref)
    if parent is None:
        return None
    meta = parent.get("metadata") or {}
    tooling = (meta.get("annotations") or {}).get(A_TOOLING, "")
    if (meta.get("labels") or {}).get(L_APPLYSET_ID) != release.applyset_id or not tooling.startswith("stackctl/"):
        raise OperationError(f"Secret/{release.parent_name} in namespace {release.namespace} is not stackctl's "
                             f"ApplySet (tooling {tooling or 'unknown'}); stackctl will not manage objects through "
                             "it", hint="delete or rename it if it is a leftover")
    return parent


def parent_group_kinds(parent: Mapping[str, Any] | None) -> list[str]:
    if not parent:
        return []
    text = ((parent.get("metadata") or {}).get("annotations") or {}).get(A_GROUP_KINDS, "")
    return [gk for gk in text.split(",") if gk]


def write_parent(cluster: Cluster, release: Release, kinds: Iterable[str], *, dry_run: bool = False) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": release.parent_name, "namespace": release.namespace,
                         "labels": {L_APPLYSET_ID: release.applyset_id, L_MANAGED_BY: "stackctl",
                                    L_STACK: release.stack},
                         "annotations": {A_TOOLING: TOOLING, A_GROUP_KINDS: ",".join(sorted(set(kinds)))}}}
    cluster.apply(body, force=True, dry_run=dry_run)


# ---------------------------------------------------------------------------------------------
# Revisions
# ---------------------------------------------------------------------------------------------
def _revision(secret: Mapping[str, Any]) -> Revision | None:
    meta = secret.get("metadata") or {}
    labels, notes = meta.get("labels") or {}, meta.get("annotations") or {}
    try:
        number = int(labels.get(L_REVISION, ""))
    except ValueError:
        return None
    summary: Mapping[str, Any] = {}
    raw = (secret.get("data") or {}).get("summary")
    if raw:
        try:
            summary = json.loads(base64.b64decode(raw))
        except ValueError:
            summary = {}
    return Revision(number=number, status=labels.get(L_STATUS, "?"), created=notes.get(A_CREATED, ""),
                    description=notes.get(A_DESCRIPTION, ""), profile=notes.get(A_PROFILE, ""),
                    context=notes.get(A_CONTEXT, ""), version=notes.get(A_VERSION, ""), summary=summary, raw=secret,
                    provenance=Provenance.of(notes))


def revisions(cluster: Cluster, release: Release) -> list[Revision]:
    """Every stored revision of the stack, oldest first."""
    items, _ = cluster.list(KINDS[("v1", "Secret")], release.namespace,
                            selector=f"{L_STACK}={release.stack},{L_REVISION}")
    out = [r for r in (_revision(s) for s in items if s.get("type") == REVISION_TYPE) if r is not None]
    return sorted(out, key=lambda r: r.number)


def current(revs: Sequence[Revision]) -> Revision | None:
    """The revision the cluster runs: the newest deployed one."""
    deployed = [r for r in revs if r.status == "deployed"]
    return deployed[-1] if deployed else None


def pick_rollback(revs: Sequence[Revision], to: int | None, *, where: str) -> Revision:
    """The revision `rollback` goes to: `to`, else the newest good one before the current one."""
    if not revs:
        raise InputError(f"no revisions of this stack in {where}: promote it first")
    if to is not None:
        for r in revs:
            if r.number == to:
                if r.status == "failed":
                    raise InputError(f"revision {to} failed to roll out; roll back to a good one "
                                     f"(stackctl history shows them)", field="--to")
                return r
        raise InputError(f"no revision {to} (kept: {', '.join(str(r.number) for r in revs)})", field="--to")
    cur = current(revs)
    older = [r for r in revs if r.status != "failed" and (cur is None or r.number < cur.number)]
    if not older:
        raise InputError(f"nothing to roll back to: revision {cur.number if cur else '?'} is the only good one")
    return older[-1]


def rollback_objects(rev: Revision, *, rerun_jobs: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """What a rollback to `rev` applies, and the names of the Jobs it leaves out.

    Every Job of a good revision ran to completion when that revision was deployed (promote waits
    for them). A rollback restores what was running; it does not replay one-shot tasks such as a
    migration, which would also make the workloads that wait on it start seconds later. (A Job of
    that revision still in the cluster is applied, unchanged, so nothing prunes it.) `rerun_jobs`
    applies them all, so the ones gone since run again."""
    objects = rev.objects()
    if rerun_jobs or rev.status == "failed":
        return objects, []
    jobs = [o for o in objects if o.get("kind") == "Job"]
    return [o for o in objects if o.get("kind") != "Job"], [str(o["metadata"]["name"]) for o in jobs]


def record(cluster: Cluster, release: Release, objects: Sequence[Mapping[str, Any]], *, status: str,
           description: str, context: str, summary: Mapping[str, Any], previous: Sequence[Revision],
           provenance: Provenance = Provenance()) -> int:
    """Store a new revision; a deployed one supersedes the previous deployed one. Returns its number."""
    number = (max((r.number for r in previous), default=0)) + 1
    payload = gzip.compress(json.dumps(list(objects), separators=(",", ":"), sort_keys=True).encode(), mtime=0)
    body = {
        "apiVersion": "v1", "kind": "Secret", "type": REVISION_TYPE,
        "metadata": {
            "name": release.revision_name(number), "namespace": release.namespace,
            "labels": {L_MANAGED_BY: "stackctl", L_STACK: release.stack, L_REVISION: str(number), L_STATUS: status},
            "annotations": {A_PROFILE: release.profile, A_CREATED: now(), A_DESCRIPTION: description[:1000],
                            A_CONTEXT: context, A_VERSION: __version__, **provenance.annotations()},
        },
        "data": {"objects": base64.b64encode(payload).decode(),
                 "summary": base64.b64encode(json.dumps(dict(summary), sort_keys=True).encode()).decode()},
    }
    try:
        cluster.request("POST", f"/api/v1/namespaces/{release.namespace}/secrets", body=body)
    except ApiError as exc:
        if exc.status == 409:
            raise OperationError(f"revision {number} of {release.stack} was just written by someone else: another "
                                 "promote of this stack is running", hint="wait for it, then check "
                                 "`stackctl history`") from None
        raise
    if status == "deployed":
        for r in previous:
            if r.status == "deployed":
                set_status(cluster, release, r.number, "superseded")
    trim(cluster, release, [*previous, Revision(number, status, "", "", "", "", "", {}, body)])
    return number


def set_status(cluster: Cluster, release: Release, number: int, status: str) -> None:
    cluster.request("PATCH", f"/api/v1/namespaces/{release.namespace}/secrets/{release.revision_name(number)}",
                    query=[("fieldManager", "stackctl")], body={"metadata": {"labels": {L_STATUS: status}}},
                    content_type="application/merge-patch+json")


def trim(cluster: Cluster, release: Release, revs: Sequence[Revision]) -> None:
    for r in sorted(revs, key=lambda r: r.number)[:-MAX_REVISIONS]:
        cluster.delete(Ref(kind="Secret", name=release.revision_name(r.number), namespace=release.namespace,
                           api_version="v1"))
