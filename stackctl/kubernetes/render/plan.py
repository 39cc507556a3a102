"""Planning: the decisions per service (Kubernetes name, workload kind, ports, claims, level), made
before any object is built."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stackctl import model as m
from stackctl.errors import InputError
from stackctl.kubernetes import names as k
from stackctl.kubernetes.render import config, mapping, refs, storage
from stackctl.kubernetes.render.context import Context, Plan, Port

PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP"}


def check_profile_references(ctx: Context) -> None:
    ctx.settings.check_names(ctx.stack.service_names)
    for vol in ctx.kube.volumes:
        if vol not in ctx.volumes:
            raise ctx.profile_error(f"kubernetes.volumes.{vol}", "no such named volume in the Compose "
                                     f"project (volumes: {', '.join(sorted(ctx.volumes)) or 'none'})")


def make_plans(ctx: Context) -> None:
    taken: dict[str, str] = {}
    for svc in ctx.stack.services:
        name = k.service_name(svc.name)
        if name is None:
            raise InputError("cannot be named in Kubernetes (a Service name must start with a letter and "
                             "hold only letters, digits and '-'); rename the service",
                             field=f"services.{svc.name}")
        if name in taken:
            raise InputError(f"becomes the Kubernetes name {name!r}, like services.{taken[name]}; rename one "
                             "of them", field=f"services.{svc.name}")
        taken[name] = svc.name
        if name != svc.name:
            ctx.warn(f"services.{svc.name}", f"is named {name!r} in Kubernetes (names are DNS labels); "
                                              f"clients that connect to {svc.name!r} must use {name!r}")
        ctx.names[("Service", name)] = svc.name
        ctx.plans[svc.name] = Plan(svc=svc, name=name, kind="", settings=ctx.settings.of(svc.name),
                                   ports=_ports(ctx, svc))
    storage.data_binds(ctx)
    users: dict[str, list[str]] = {}  # named volume or bind data directory (`bind:<name>`) → services
    for svc in ctx.stack.services:
        binds = ctx.plans[svc.name].data_binds
        for i, mount in enumerate(svc.volumes):
            vol = mount.source if mount.type == "volume" else binds[i][0] if i in binds else None
            if vol:
                users.setdefault(vol, [])
                if svc.name not in users[vol]:
                    users[vol].append(svc.name)
    one_shots = ctx.stack.one_shot_services()
    sole: dict[str, list[str]] = {}  # service → named volumes only it uses
    for vol, svcs in users.items():
        if len(svcs) == 1 and not _external(ctx, vol):
            sole.setdefault(svcs[0], []).append(vol)
    for plan in ctx.plans.values():
        plan.kind = _kind(ctx, plan, one_shots, sole.get(plan.svc.name, []))
    for vol, svcs in users.items():
        spec = ctx.volumes.get(vol)
        for svc_name in svcs:
            plan = ctx.plans[svc_name]
            if spec is not None and spec.external:
                plan.claims[vol] = "external"
            elif len(svcs) == 1 and plan.kind == "StatefulSet":
                plan.claims[vol] = "template"
            else:
                plan.claims[vol] = "claim"
    for plan in ctx.plans.values():
        _level(ctx, plan, ())
    ctx.sorted_plans = [ctx.plans[n] for n in sorted(ctx.plans)]
    _service_ports(ctx)
    bare = sorted(p.svc.name for p in ctx.plans.values() if not _has_resources(ctx, p))
    if bare:
        ctx.note(f"services.{bare[0]}" if len(bare) == 1 else "services",
                  f"{'' if len(bare) == 1 else ', '.join(bare) + ': '}no resources, so the pods are "
                  "BestEffort (first evicted under pressure); set defaults.resources in the profile")


def _has_resources(ctx: Context, plan: Plan) -> bool:
    deploy = plan.svc.deploy
    return any((deploy.limits.cpus, deploy.limits.memory, deploy.reservations.cpus, deploy.reservations.memory))


def _service_ports(ctx: Context) -> None:
    """The ports of each long-running service's Service: its `ports` and `expose`, the profile's
    `ports`, and the ones the others connect to (`refs`). In Compose a container reaches another on
    any port of a shared network; in Kubernetes only the ports a Service lists, and a name with no
    Service does not resolve at all."""
    ctx.hostnames = refs.hostnames(ctx.stack)
    found = refs.references(ctx.stack, ctx.host, ctx.hostnames,
                            hide=lambda text: refs.masked(text, config.secrets_in(ctx, text)))
    for plan in ctx.sorted_plans:
        given = plan.settings.ports
        if plan.kind in ("Job", "CronJob"):
            if given:
                raise ctx.profile_error(f"{plan.where}.ports", f"a {plan.kind} gets no Service; ports only "
                                                                "apply to a long-running service")
            continue
        if given:  # the profile's word: no inference
            have = {(p.target, p.protocol) for p in plan.ports}
            plan.ports.extend(Port(port, "TCP", k.port_name(port, "TCP")) for port in given
                              if (port, "TCP") not in have)
            continue
        _infer_ports(ctx, plan, found.get(plan.svc.name, []))


def _infer_ports(ctx: Context, plan: Plan, references: Sequence[refs.Ref]) -> None:
    """A service with neither `ports` nor `expose` is still reachable by the others in Compose.
    Its Service listens where they connect (a port written or implied by the scheme or client),
    on its health check URL's port, and for a reference without a port on its image's well-known
    port (also with nobody connecting: a database nobody names yet). A service that declares
    ports also gets the port numbers another service writes in a reference. Referenced
    on no port at all: a warning naming who connects and the profile setting that fixes it."""
    found: dict[int, str] = {}
    if plan.ports:
        declared = {p.target for p in plan.ports if p.protocol == "TCP"}
        for ref in references:  # its own mentions (`KAFKA_LISTENERS`) are no client's need
            if not ref.own and ref.written and ref.port is not None and ref.port not in declared:
                found.setdefault(ref.port, ref.where)
        if found:
            _add_ports(plan, found)
            ctx.note(plan.where, f"its Service also listens on {_listing(found)}, where it is connected to; "
                                  f"add {_expose(found)} to say so")
        return
    hc = plan.svc.healthcheck
    if hc is not None and hc.argv is not None:
        http = mapping.http_check(hc.argv)
        if http is not None:
            found.setdefault(http.port, "its health check")
    image = k.parse_image(plan.svc.image or "").name
    defaults = mapping.image_ports(plan.svc.image)
    for ref in sorted(references, key=lambda r: r.own):  # named after another service's use first
        if ref.port is not None:
            found.setdefault(ref.port, ref.where)
        else:
            for port in defaults:
                found.setdefault(port, f"{ref.where}, no port: the default of the {image} image")
    if not found:
        for port in defaults:
            found[port] = f"the default of the {image} image"
    if found:
        _add_ports(plan, found)
        ctx.note(plan.where, f"has no ports or expose; its Service listens on {_listing(found)}. Add "
                              f"{_expose(found)} to say so")
        return
    users = [ref.where for ref in references if not ref.own]
    if users:
        shown = "; ".join(users[:3]) + (f"; and {len(users) - 3} more" if len(users) > 3 else "")
        ctx.warn(plan.where, f"other services connect to it ({shown}) but on no port that can be inferred (no "
                              "ports, expose, port in those references or well-known image), so it gets no Service "
                              f"and the name {plan.svc.name} does not resolve in Kubernetes; set the ports it "
                              f"listens on in the profile (`services.{plan.svc.name}.ports: [<port>]`) or add "
                              "`expose` to the Compose file")


def _add_ports(plan: Plan, found: Mapping[int, str]) -> None:
    for port in sorted(found):
        plan.ports.append(Port(port, "TCP", k.port_name(port, "TCP")))


def _listing(found: Mapping[int, str]) -> str:
    return "; ".join(f"{port} ({why})" for port, why in sorted(found.items()))


def _expose(found: Mapping[int, str]) -> str:
    return "`expose: [" + ", ".join(f'"{p}"' for p in sorted(found)) + "]`"


def _kind(ctx: Context, plan: Plan, one_shots: frozenset[str], own_volumes: list[str]) -> str:
    svc, o = plan.svc, plan.settings
    if o.schedule is not None:
        return "CronJob"
    if o.kind is not None:
        return o.kind
    if svc.name in one_shots:
        if svc.deploy.mode == "global-job":
            ctx.warn(f"{plan.where}.deploy.mode", "global-job has no Kubernetes equivalent; it runs as "
                                                   "one Job (use a DaemonSet for per-node work)")
        return "Job"
    if svc.deploy.mode == "global":
        return "DaemonSet"
    if own_volumes or mapping.is_database_image(svc.image):
        return "StatefulSet"
    return "Deployment"


def _external(ctx: Context, vol: str) -> bool:
    spec = ctx.volumes.get(vol)
    return bool(spec and spec.external)


def _level(ctx: Context, plan: Plan, path: tuple[str, ...]) -> int:
    """Workload level: one more than any Job this service waits for (see the module docstring)."""
    if plan.svc.name in ctx.levels:
        return ctx.levels[plan.svc.name]
    if plan.svc.name in path:
        return 0  # Compose rejects cycles; stay total anyway
    level = 0
    for dep in plan.svc.depends_on:
        other = ctx.plans.get(dep.service)
        if other is None:
            continue
        dep_level = _level(ctx, other, (*path, plan.svc.name))
        if dep.condition == "service_completed_successfully" and other.kind == "Job":
            other.awaited = True
            dep_level += 1
        level = max(level, dep_level)
    plan.level = ctx.levels[plan.svc.name] = level
    return level


def _ports(ctx: Context, svc: m.Service) -> list[Port]:
    found: dict[tuple[int, str], Port] = {}
    where = f"services.{svc.name}"

    def add(target: int, protocol: str, name: str | None, app: str | None, published: str | None,
            field_path: str) -> None:
        proto = PROTOCOLS.get(protocol.lower())
        if proto is None:
            ctx.warn(field_path, f"protocol {protocol!r} is not supported by Kubernetes; port {target} dropped")
            return
        if not 0 < target < 65536:
            ctx.warn(field_path, f"port {target} is out of range; dropped")
            return
        port = found.get((target, proto))
        if port is None:
            port = found[(target, proto)] = Port(target, proto, k.port_name(target, proto, name), app)
        if published:
            first = published.split("-", 1)[0]
            if first.isdigit() and int(first) not in port.published:
                port.published.append(int(first))

    for i, p in enumerate(svc.ports):
        add(p.target, p.protocol, p.name, p.app_protocol, p.published, f"{where}.ports[{i}]")
    for i, text in enumerate(svc.expose):
        spec, _, proto = str(text).partition("/")
        low, _, high = spec.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            ctx.warn(f"{where}.expose[{i}]", f"cannot read port {text!r}; dropped")
            continue
        top = int(high) if high else int(low)
        if top - int(low) > 100:
            ctx.warn(f"{where}.expose[{i}]", f"range {text} has more than 100 ports; only the first 101 "
                                              "are exposed")
            top = int(low) + 100
        for number in range(int(low), top + 1):
            add(number, proto or "tcp", None, None, None, f"{where}.expose[{i}]")
    ports = list(found.values())
    seen: set[str] = set()
    for port in ports:  # a duplicate name falls back to the protocol-port form
        if port.name in seen:
            port.name = k.port_name(port.target, port.protocol)
        seen.add(port.name)
    return ports
