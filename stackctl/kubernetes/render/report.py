"""The conversion report (`render kubernetes --report`): per service, every Compose field it read and what
it became (object and field path), why it was dropped (the warning), or why nothing was needed.

Pure, and built from the render's results only — the model (each service's `fields`, as the loader read
them), the rendered objects and the warnings and notes — never from the render's internals, so the
parts of the renderer can change without it. `FIELDS` says where each Compose field can go; a
destination is claimed only when the rendered object really has it (a field the pod of this service
does not carry is not listed), so the report never names a destination that is not there.

A service's objects are found from its workload (`stackctl.io/service`): its pod template, the
Services and disruption budgets whose selector matches the pod's labels, the autoscaler that targets
it, and the NetworkPolicies annotated with the service.

Every field ends in one of three states: `became` (one or more destinations, maybe with warnings about
a part of it), `dropped` (nothing rendered; the reason is the warnings about it) or `ignored`
(nothing rendered and nothing lost: the table's reason). A field with nothing rendered, no warning and
no reason would be a silent loss: it is reported as dropped with `UNACCOUNTED` (a stackctl bug; a test
walks a project with many fields and asserts that it never happens).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stackctl import model as m
from stackctl.kubernetes import names as k
from stackctl.kubernetes.labels import A_SERVICE, WORKLOAD_KINDS

UNACCOUNTED = "nothing rendered and no warning (a stackctl bug: please report it)"


@dataclass(frozen=True)
class Dest:
    """Where a field can go: `root` is the workload (`workload`), its pod template (`template`), pod
    spec (`pod`), main container (`container`), or a related object's kind; `path` is below it, with
    `[]` for any item of a list and `[key]` for a key that holds dots (`limits[nvidia.com/gpu]`)."""

    root: str
    path: str


@dataclass(frozen=True)
class Row:
    dests: tuple[Dest, ...] = ()
    ignored: str | None = None  # why rendering nothing loses nothing (when none of `dests` is there)
    # For fields that share a destination list with others (ports and expose, volumes and secrets): the
    # values that identify this field's items there; a `*` in a path matches one of them.
    items: Callable[[m.Service], Iterable[str]] | None = None


def _row(*dests: str, ignored: str | None = None, items: Callable[[m.Service], Iterable[str]] | None = None) -> Row:
    return Row(tuple(Dest(*d.split(" ", 1)) for d in dests), ignored, items)


def _mounts(svc: m.Service) -> Iterable[str]:
    return (v.target for v in svc.volumes)


def _files(refs: Sequence[m.FileRef], default_dir: str) -> Iterable[str]:
    for ref in refs:
        target = ref.target or ref.source
        yield target if target.startswith("/") else f"{default_dir}/{target}".replace("//", "/")
        yield default_dir  # a projected volume of them all (secrets)


def _ports(numbers: Iterable[int | str]) -> Iterable[str]:
    for n in numbers:
        low, _, high = str(n).partition("/")[0].partition("-")
        yield from (str(p) for p in range(int(low), int(high or low) + 1))


_DEFAULT = "the value is Kubernetes' default"
# Compose service field (as the loader records it: `deploy` by its keys) → where it goes. Fields the model
# does not carry are not here: the loader warns about each by name, and the report shows the warning.
FIELDS: Mapping[str, Row] = {
    "image": _row("container image"),
    "build": _row("container image"),
    "command": _row("container args"),
    "entrypoint": _row("container command"),
    "environment": _row("container envFrom", "container env"),
    "env_file": _row("container envFrom", "container env", ignored="Compose merged it into `environment`"),
    "ports": _row("container ports[containerPort=*]", "Service spec.ports[port=*]",
                  items=lambda svc: _ports(p.target for p in svc.ports)),
    "expose": _row("container ports[containerPort=*]", "Service spec.ports[port=*]",
                   items=lambda svc: _ports(svc.expose)),
    "volumes": _row("container volumeMounts[mountPath=*]", items=_mounts),
    "tmpfs": _row("container volumeMounts[mountPath=*]", items=lambda svc: (t.target for t in svc.tmpfs)),
    "secrets": _row("container volumeMounts[mountPath=*]", items=lambda svc: _files(svc.secrets, "/run/secrets")),
    "configs": _row("container volumeMounts[mountPath=*]", items=lambda svc: _files(svc.configs, "")),
    "healthcheck": _row("container readinessProbe", "container startupProbe",
                        ignored="disabled, or a Job (Kubernetes probes no Job: its exit is its result)"),
    "depends_on": _row("pod initContainers[name=*]",
                       items=lambda svc: (k.with_suffix("wait-for", k.service_name(d.service) or d.service)
                                         for d in svc.depends_on),
                       ignored="`service_started` needs nothing (Kubernetes restarts what fails); a Job that "
                               "others wait for is applied in an earlier wave (stackctl.io/wave)"),
    "restart": _row("workload spec.backoffLimit", "workload spec.jobTemplate.spec.backoffLimit",
                    "pod restartPolicy", ignored="a long-running pod is always restarted in Kubernetes"),
    "labels": _row("template metadata.annotations[*]", items=lambda svc: svc.labels),
    "networks": _row("NetworkPolicy spec.podSelector",
                     ignored="Compose networks are flat in Kubernetes: every pod reaches every Service (an "
                             "alias is one more Service; an `internal: true` network a NetworkPolicy)"),
    "stop_grace_period": _row("pod terminationGracePeriodSeconds"),
    "user": _row("pod securityContext.runAsUser", "container securityContext.runAsUser"),
    "working_dir": _row("container workingDir"),
    "profiles": _row(ignored="chooses the services Compose resolves: applied before stackctl reads the project"),
    "pull_policy": _row("container imagePullPolicy",
                        ignored="`build`/`missing` is Kubernetes' default (IfNotPresent; Always for :latest)"),
    "hostname": _row("pod hostname", ignored="a StatefulSet's pods are named by Kubernetes"),
    "init": _row("pod shareProcessNamespace", ignored=_DEFAULT),
    "read_only": _row("container securityContext.readOnlyRootFilesystem", ignored=_DEFAULT),
    "cap_add": _row("container securityContext.capabilities.add"),
    "cap_drop": _row("container securityContext.capabilities.drop"),
    "privileged": _row("container securityContext.privileged", ignored=_DEFAULT),
    "sysctls": _row("pod securityContext.sysctls"),
    "post_start": _row("container lifecycle.postStart.exec"),
    "pre_stop": _row("container lifecycle.preStop.exec"),
    "gpus": _row("container resources.limits[nvidia.com/gpu]"),
    "develop": _row(ignored="the dev loop (`develop.watch`) is for a local stack only"),
    "deploy.mode": _row("workload kind"),
    "deploy.replicas": _row("workload spec.replicas", "HorizontalPodAutoscaler spec.minReplicas",
                            ignored="a DaemonSet or Job: Kubernetes sets the count"),
    "deploy.resources": _row("container resources"),
    "deploy.update_config": _row("workload spec.strategy", "workload spec.updateStrategy",
                                 "workload spec.minReadySeconds"),
    "deploy.restart_policy": _row("workload spec.backoffLimit", "workload spec.jobTemplate.spec.backoffLimit",
                                  "pod restartPolicy", ignored="a long-running pod is always restarted in Kubernetes"),
    "deploy.labels": _row("workload metadata.annotations[*]", items=lambda svc: svc.deploy.labels),
    "deploy.placement": _row("pod affinity", "pod topologySpreadConstraints"),
}


@dataclass(frozen=True)
class FieldReport:
    field: str
    became: tuple[str, ...] = ()  # `Deployment/web spec.template.spec.containers[web].image`
    dropped: str | None = None  # nothing rendered: why (the warnings)
    ignored: str | None = None  # nothing rendered, nothing lost: why
    warnings: tuple[str, ...] = ()  # about this field or a part of it (`ports[1]`)
    notes: tuple[str, ...] = ()

    def to_data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"became": list(self.became)}
        for key in ("dropped", "ignored"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        for key in ("warnings", "notes"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        return out


@dataclass(frozen=True)
class ServiceReport:
    name: str
    objects: tuple[str, ...]  # `Deployment/web`, `Service/web`, ...: what the service rendered into
    fields: tuple[FieldReport, ...]
    warnings: tuple[str, ...] = ()  # about the service as a whole (`services.web: is named ...`)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    services: tuple[ServiceReport, ...]
    warnings: tuple[str, ...] = field(default=())  # not about one service's field (profile, top-level)
    notes: tuple[str, ...] = field(default=())

    def to_data(self) -> dict[str, Any]:
        return {"services": {s.name: {"objects": list(s.objects),
                                      "fields": {f.field: f.to_data() for f in s.fields},
                                      **({"warnings": list(s.warnings)} if s.warnings else {}),
                                      **({"notes": list(s.notes)} if s.notes else {})}
                             for s in self.services},
                "warnings": list(self.warnings), "notes": list(self.notes)}

    def counts(self) -> dict[str, int]:
        fields = [f for s in self.services for f in s.fields]
        return {"fields": len(fields), "became": sum(bool(f.became) for f in fields),
                "ignored": sum(f.ignored is not None for f in fields),
                "dropped": sum(f.dropped is not None for f in fields)}


def build(stack: m.Stack, objects: Sequence[Mapping[str, Any]], warnings: Sequence[m.Warning_],
          notes: Sequence[m.Warning_] = ()) -> Report:
    """The report of one render: `warnings` and `notes` as the render and the loader gave them."""
    used: set[int] = set()
    noted: set[int] = set()
    services = []
    for svc in stack.services:
        where = f"services.{svc.name}"
        related = _related(svc.name, objects)
        fields = []
        for name in svc.fields:
            prefix = f"{where}.{name}"
            mine = [i for i, w in enumerate(warnings) if _under(w.field, prefix)]
            used.update(mine)
            about = [i for i, n in enumerate(notes) if _under(n.field, prefix)]
            noted.update(about)
            fields.append(_field(name, svc, related, tuple(str(warnings[i]) for i in mine),
                                 tuple(str(notes[i]) for i in about)))
        own = [i for i, w in enumerate(warnings) if i not in used and _under(w.field, where)]
        used.update(own)
        own_notes = [i for i, n in enumerate(notes) if i not in noted and _under(n.field, where)]
        noted.update(own_notes)
        services.append(ServiceReport(name=svc.name, objects=tuple(f"{o['kind']}/{o['metadata']['name']}"
                                                                   for _, o in related),
                                      fields=tuple(fields), warnings=tuple(str(warnings[i]) for i in own),
                                      notes=tuple(str(notes[i]) for i in own_notes)))
    return Report(services=tuple(services),
                  warnings=tuple(str(w) for i, w in enumerate(warnings) if i not in used),
                  notes=tuple(str(n) for i, n in enumerate(notes) if i not in noted))


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith((f"{prefix}.", f"{prefix}["))


def _field(name: str, svc: m.Service, related: list[tuple[str, Mapping[str, Any]]], warnings: tuple[str, ...],
           notes: tuple[str, ...]) -> FieldReport:
    row = FIELDS.get(name, Row())
    items = tuple(dict.fromkeys(row.items(svc))) if row.items is not None else ()
    became = [shown for dest in row.dests for shown in _found(dest, related, items)]
    if became:
        return FieldReport(name, became=tuple(dict.fromkeys(became)), warnings=warnings, notes=notes)
    if warnings:
        return FieldReport(name, dropped="; ".join(warnings), warnings=warnings, notes=notes)
    if row.ignored is not None:
        return FieldReport(name, ignored=row.ignored, notes=notes)
    return FieldReport(name, dropped=UNACCOUNTED, notes=notes)


# ---------------------------------------------------------------------------------------------
# The service's objects, and the paths they hold
# ---------------------------------------------------------------------------------------------
def _related(service: str, objects: Sequence[Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any]]]:
    """(root, object) of everything the service rendered into: its workload first."""
    workloads = [o for o in objects if o["kind"] in WORKLOAD_KINDS
                 and o["metadata"].get("annotations", {}).get(A_SERVICE) == service]
    out: list[tuple[str, Mapping[str, Any]]] = []
    for w in workloads:
        out.append(("workload", w))
        labels = _template(w).get("metadata", {}).get("labels", {})
        for o in objects:
            kind, spec = o["kind"], o.get("spec", {})
            if kind == "Service" and spec.get("selector"):
                selected = _selects({"matchLabels": spec["selector"]}, labels)
            elif kind in ("PodDisruptionBudget", "NetworkPolicy"):
                selected = _selects(spec.get("selector" if kind == "PodDisruptionBudget" else "podSelector"), labels)
            else:
                selected = (kind == "HorizontalPodAutoscaler"
                            and spec.get("scaleTargetRef", {}).get("name") == w["metadata"]["name"])
            if selected:
                out.append((kind, o))
    seen: set[tuple[str, str]] = set()
    unique = []
    for root, o in out:
        if (o["kind"], o["metadata"]["name"]) not in seen:
            seen.add((o["kind"], o["metadata"]["name"]))
            unique.append((root, o))
    return unique


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector against a pod's labels; an empty or missing one selects nothing here (a policy
    for every pod is not about one service)."""
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or ():
        value, op = labels.get(e["key"]), e["operator"]
        if not {"In": value in e.get("values", ()), "NotIn": value not in e.get("values", ()),
                "Exists": value is not None, "DoesNotExist": value is None}.get(op, False):
            return False
    return True


def _template(workload: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = workload.get("spec", {})
    if workload["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template: Mapping[str, Any] = spec.get("template", {})
    return template


def _found(dest: Dest, related: list[tuple[str, Mapping[str, Any]]], items: tuple[str, ...]) -> Iterator[str]:
    for root, obj in related:
        if root != ("workload" if dest.root in ("workload", "template", "pod", "container") else dest.root):
            continue
        start: Any = obj
        prefix = ""
        template_at = "spec.jobTemplate.spec.template" if obj["kind"] == "CronJob" else "spec.template"
        if dest.root == "template":
            start, prefix = _template(obj), f"{template_at}."
        elif dest.root in ("pod", "container"):
            start, prefix = _template(obj).get("spec", {}), f"{template_at}.spec."
            if dest.root == "container":
                containers = start.get("containers") or [{}]
                start, prefix = containers[0], f"{prefix}containers[{containers[0].get('name', '')}]."
        paths = [dest.path.replace("*", item) for item in items] if "*" in dest.path else [dest.path]
        for path in paths:
            if path == "kind" or _has(start, path):
                shown = "" if path == "kind" else f" {prefix}{path}"
                yield f"{obj['kind']}/{obj['metadata']['name']}{shown}"


_SEGMENT = re.compile(r"([^.\[\]]+)(?:\[([^\]=]+)=([^\]]*)\])?|\[([^\]]*)\]")


def _has(value: Any, path: str) -> bool:
    """Whether `path` leads to a value that is set (not None, not empty). `list[key=value]` is the item
    of a list whose `key` is `value` (compared as text)."""
    current = [value]
    for match in _SEGMENT.finditer(path):
        key = match.group(1) if match.group(1) is not None else match.group(4)
        nxt: list[Any] = []
        for v in current:
            if isinstance(v, Mapping) and key in v:
                nxt.append(v[key])
        if match.group(2) is not None:  # select the items of the list just reached
            nxt = [item for v in nxt if isinstance(v, list) for item in v
                   if isinstance(item, Mapping) and str(item.get(match.group(2))) == match.group(3)]
        current = nxt
    return any(v not in (None, "", [], {}) for v in current)


def text(report: Report) -> str:
    """Plain lines (they survive pipes and grep): a service, its objects, then one line per field and
    destination; `->` became, `dropped:` lost, `ignored:` nothing lost, `warning:`/`note:` about a part."""
    lines: list[str] = []
    width = max((len(f.field) for s in report.services for f in s.fields), default=0)
    for s in report.services:
        lines.append(f"{s.name}: {', '.join(s.objects) or 'no object'}")
        lines += [f"  warning: {w}" for w in s.warnings]
        lines += [f"  note: {n}" for n in s.notes]
        for f in s.fields:
            pad = f.field.ljust(width)
            if f.became:
                lines += [f"  {pad if i == 0 else ' ' * width}  -> {b}" for i, b in enumerate(f.became)]
                lines += [f"  {' ' * width}  warning: {w}" for w in f.warnings]
            elif f.dropped is not None:
                lines.append(f"  {pad}  dropped: {f.dropped}")
            else:
                lines.append(f"  {pad}  ignored: {f.ignored}")
            lines += [f"  {' ' * width}  note: {n}" for n in f.notes]
    lines += [f"warning: {w}" for w in report.warnings]
    lines += [f"note: {n}" for n in report.notes]
    c = report.counts()
    lines.append(f"{c['fields']} fields in {len(report.services)} services: {c['became']} carried over, "
                 f"{c['ignored']} ignored (nothing lost), {c['dropped']} dropped")
    return "\n".join(lines) + "\n"
