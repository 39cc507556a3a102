"""Which services `stackctl up` brings up, and what each one waits for. Pure: model in, plan out.

`up SERVICE...` takes the named services plus everything they depend on (like `docker compose up
SERVICE`). Optional dependencies (`required: false`) are brought up too when they are part of the
project, but never gate their dependents; an optional dependency the active Compose profiles left
out is ignored, as Compose does. A dependency cycle or an unknown service is an input error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from stackctl import model as m
from stackctl.errors import InputError


@dataclass(frozen=True)
class Plan:
    services: tuple[str, ...]  # every service to bring up, dependencies before dependents
    gates: Mapping[str, tuple[m.Dependency, ...]]  # what each service waits for (required deps only)
    optional: Mapping[str, tuple[m.Dependency, ...]] = field(default_factory=dict)  # shown, never waited on
    one_shot: frozenset[str] = frozenset()  # services that run to completion (exit 0 = done)
    selected: tuple[str, ...] = ()  # what the user named (empty: the whole stack)

    def dependents(self, service: str) -> tuple[str, ...]:
        """Services in the plan that wait (directly or not) on `service`."""
        out: list[str] = []
        todo = [service]
        while todo:
            current = todo.pop()
            for name in self.services:
                if name not in out and any(d.service == current for d in self.gates.get(name, ())):
                    out.append(name)
                    todo.append(name)
        return tuple(sorted(out, key=self.services.index))

    def chain_depths(self) -> dict[str, int]:
        """Per service, the longest chain of services waiting on it (0: nothing waits on it). When
        several may start, the deeper ones go first: the engine starts containers largely one at a time."""
        depth: dict[str, int] = {}
        for name in reversed(self.services):
            depth[name] = max((depth[other] + 1 for other in self.services if other in depth
                               and any(d.service == name for d in self.gates.get(other, ()))), default=0)
        return depth

    def waiters(self, service: str) -> tuple[tuple[str, str], ...]:
        """Direct dependents of `service` and the condition each waits for."""
        return tuple((name, d.condition) for name in self.services for d in self.gates.get(name, ())
                     if d.service == service)


def plan_up(stack: m.Stack, selected: Sequence[str] = ()) -> Plan:
    """The services to bring up for `up [SERVICE...]`, in a stable dependency order."""
    known = set(stack.service_names)
    _check_names(selected, known)
    wanted: list[str] = []
    todo = list(selected) if selected else list(stack.service_names)
    while todo:
        name = todo.pop(0)
        if name in wanted:
            continue
        wanted.append(name)
        for dep in stack.service(name).depends_on:
            if dep.service in known:
                todo.append(dep.service)
            elif dep.required:
                raise InputError(f"depends on {dep.service!r}, which is not in the project",
                                 field=f"services.{name}.depends_on")
    gates = {name: tuple(d for d in stack.service(name).depends_on if d.required and d.service in known)
             for name in wanted}
    optional = {name: tuple(d for d in stack.service(name).depends_on if not d.required and d.service in known)
                for name in wanted}
    order = _topological(wanted, {n: [d.service for d in (*gates[n], *optional[n])] for n in wanted})
    return Plan(services=order, gates={n: gates[n] for n in order}, optional={n: optional[n] for n in order},
                one_shot=frozenset(stack.one_shot_services()) & set(order), selected=tuple(selected))


def plan_restart(stack: m.Stack, selected: Sequence[str]) -> Plan:
    """`restart SERVICE...`: those services, gated on nothing (their dependencies keep running), then
    the services that declare `depends_on: {SERVICE: {restart: true}}` on one of them (and so on down),
    each once what it waits for among the restarted ones is up again, as `docker compose restart` does."""
    _check_names(selected, set(stack.service_names))
    names = list(dict.fromkeys(selected))
    gates: dict[str, tuple[m.Dependency, ...]] = {n: () for n in names}
    changed = True
    while changed:
        changed = False
        for svc in stack.services:
            if svc.name in gates:
                continue
            waits = tuple(d for d in svc.depends_on if d.restart and d.service in gates)
            if waits:
                gates[svc.name] = waits
                names.append(svc.name)
                changed = True
    order = _topological(names, {n: [d.service for d in gates[n]] for n in names})
    return Plan(services=order, gates={n: gates[n] for n in order},
                one_shot=stack.one_shot_services() & set(names), selected=tuple(dict.fromkeys(selected)))


def restart_dependents(stack: m.Stack, plan: Plan, updated: Iterable[str]) -> frozenset[str]:
    """Services of `plan` to restart because a dependency they declare `restart: true` on was updated
    (created or recreated) by this `up`: Compose restarts them once the dependency is up again."""
    changed = set(updated)
    return frozenset(name for name in plan.services if name not in changed and any(
        d.restart and d.service in changed for d in stack.service(name).depends_on))


def _check_names(selected: Iterable[str], known: set[str]) -> None:
    unknown = [s for s in selected if s not in known]
    if unknown:
        raise InputError(f"no such service: {', '.join(unknown)} (services: {', '.join(sorted(known)) or 'none'})",
                         field="SERVICE")


def _topological(names: list[str], deps: Mapping[str, list[str]]) -> tuple[str, ...]:
    """Dependencies first, by depth (what Compose would call waves), then by name: a stable order
    to show. A cycle is an input error."""
    depth: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> int:
        if name in path:
            cycle = [*path[path.index(name):], name]
            raise InputError(f"dependency cycle: {' -> '.join(cycle)}", field=f"services.{name}.depends_on")
        if name not in depth:
            depth[name] = 1 + max((visit(d, [*path, name]) for d in sorted(deps.get(name, ()))), default=-1)
        return depth[name]

    for name in sorted(names):
        visit(name, [])
    return tuple(sorted(names, key=lambda n: (depth[n], n)))
