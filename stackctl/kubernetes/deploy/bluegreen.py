"""Blue-green at promote time: which colour to deploy, which Services switch, which colour is kept.

The renderer stays pure: a blue-green service renders as `<svc>-blue` (label `stackctl.io/colour`)
and Services whose selector names `blue`. Promote reads what is live and rewrites the colour here:

- nothing live (first promote): deploy as rendered;
- the live colour's Deployment already runs this spec (`stackctl.io/template-hash`, over the spec
  without replicas and colour): stay on that colour (an unchanged or scaled service does not switch);
- else deploy the *idle* colour; its Services are held back (`switch`) and applied only after every
  workload has rolled out — the switch. A failed rollout never moves traffic.

The other colour's Deployment is protected from prune (`keep`): it is still running, so a rollback to
the previous revision finds it ready and only switches the Service back. `--finalize` (or the
profile's `blue_green.keep_previous: false`, annotation `stackctl.io/keep-previous`) drops that
protection, and prune removes it. The functions here are pure: they read `live`, they call no API.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stackctl.kubernetes import names as k
from stackctl.kubernetes.client import Ref
from stackctl.kubernetes.labels import (
    A_KEEP_PREVIOUS,
    A_TEMPLATE_HASH,
    COLOURS,
    L_COLOUR,
    L_INSTANCE,
    L_NAME,
)

Key = tuple[str, str, str]


@dataclass
class BlueGreenPlan:
    objects: list[dict[str, Any]]  # everything to apply and record, colours chosen
    switch: set[Key] = field(default_factory=set)  # Services to apply only after the rollout
    keep: set[Key] = field(default_factory=set)  # the other colours' Deployments: not pruned
    notes: list[str] = field(default_factory=list)  # "web: blue → green"


def other(colour: str) -> str:
    return COLOURS[1] if colour == COLOURS[0] else COLOURS[0]


def colour_of(obj: Mapping[str, Any]) -> str | None:
    """The colour of a blue-green Deployment, or the colour a Service selects; None for the rest."""
    if obj.get("kind") == "Deployment":
        value = ((obj.get("metadata") or {}).get("labels") or {}).get(L_COLOUR)
    elif obj.get("kind") == "Service":
        value = ((obj.get("spec") or {}).get("selector") or {}).get(L_COLOUR)
    else:
        return None
    return value if value in COLOURS else None


def base_name(deployment: Mapping[str, Any]) -> str:
    name: str = deployment["metadata"]["name"]
    colour = colour_of(deployment)
    return name[: -len(colour) - 1] if colour and name.endswith(f"-{colour}") else name


def template_hash(deployment: Mapping[str, Any]) -> str:
    """A digest of what the pods run: the spec without replicas, with the colour blanked out."""
    spec = copy.deepcopy(dict(deployment.get("spec") or {}))
    spec.pop("replicas", None)
    spec.get("selector", {}).get("matchLabels", {}).pop(L_COLOUR, None)
    spec.get("template", {}).get("metadata", {}).get("labels", {}).pop(L_COLOUR, None)
    return k.short_hash(k.canonical(spec), length=16)


def recolour(obj: Mapping[str, Any], colour: str, base: str | None = None) -> dict[str, Any]:
    """A copy of a blue-green Deployment (named `<base>-<colour>`) or Service selecting `colour`."""
    out = copy.deepcopy(dict(obj))
    if out["kind"] == "Service":
        out["spec"]["selector"][L_COLOUR] = colour
        return out
    assert base is not None
    meta = out["metadata"]
    meta["name"] = f"{base}-{colour}"
    meta["labels"] = {**meta.get("labels", {}), L_COLOUR: colour}
    out["spec"]["selector"]["matchLabels"][L_COLOUR] = colour
    out["spec"]["template"]["metadata"]["labels"][L_COLOUR] = colour
    meta["annotations"] = dict(sorted({**meta.get("annotations", {}), A_TEMPLATE_HASH: template_hash(obj)}.items()))
    return out


def _selects(service: Mapping[str, Any], deployment: Mapping[str, Any]) -> bool:
    sel = (service.get("spec") or {}).get("selector") or {}
    mine = deployment["spec"]["selector"]["matchLabels"]
    return L_COLOUR in sel and all(sel.get(key) == mine.get(key) for key in (L_INSTANCE, L_NAME))


def plan(desired: Sequence[dict[str, Any]], live: Mapping[Key, Mapping[str, Any]], *,
         finalize: bool = False) -> BlueGreenPlan:
    """Choose the colour of every blue-green Deployment in `desired` against `live` (see module doc)."""
    out = BlueGreenPlan(objects=list(desired))
    deployments = [i for i, o in enumerate(desired) if o["kind"] == "Deployment" and colour_of(o)]
    if not deployments:
        return out
    for i in deployments:
        dep = desired[i]
        base = base_name(dep)
        services = [j for j, o in enumerate(desired) if o["kind"] == "Service" and _selects(o, dep)]
        live_colour = None
        for j in services:
            found = live.get(Ref.of(desired[j]).key)
            if found is not None and colour_of(found):
                live_colour = colour_of(found)
                break
        digest = template_hash(dep)
        if live_colour is None:  # first promote (or the Service is new): as rendered, nothing to switch
            target = colour_of(dep) or COLOURS[0]
        else:
            running = live.get(Ref.of(recolour(dep, live_colour, base)).key)
            same = running is not None and (running.get("metadata", {}).get("annotations") or {}).get(
                A_TEMPLATE_HASH) == digest
            target = live_colour if same else other(live_colour)
        out.objects[i] = recolour(dep, target, base)
        for j in services:
            out.objects[j] = recolour(desired[j], target)
            if live_colour is not None and target != live_colour:
                out.switch.add(Ref.of(desired[j]).key)
        if live_colour is not None and target != live_colour:
            out.notes.append(f"{base}: blue-green, deploying {target} beside {live_colour}; the Service "
                             f"switches to {target} when it is ready")
        annotations = dep.get("metadata", {}).get("annotations") or {}
        if not finalize and annotations.get(A_KEEP_PREVIOUS) != "false":
            out.keep.add(Ref.of(recolour(dep, other(target), base)).key)
    return out
