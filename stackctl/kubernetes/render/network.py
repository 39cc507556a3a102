"""Network objects: Services (with the headless one of a StatefulSet and one per network alias),
Ingress, and the NetworkPolicies of internal Compose networks."""

from __future__ import annotations

from typing import Any

from stackctl.kubernetes import names as k
from stackctl.kubernetes.labels import A_SERVICE, L_INSTANCE, L_NAME
from stackctl.kubernetes.render.context import WAVE_CONFIG, Context, Plan


def headless_name(ctx: Context, plan: Plan) -> str:
    return k.with_suffix(plan.name, "headless")


def services(ctx: Context, plan: Plan) -> None:
    svc_type = plan.settings.service_type or "ClusterIP"
    if plan.kind == "StatefulSet":
        headless = ctx.claim_name("Service", headless_name(ctx, plan), plan.where)
        spec: dict[str, Any] = {"clusterIP": "None", "publishNotReadyAddresses": True,
                                "selector": ctx.selector(plan.name)}
        if plan.ports:
            spec["ports"] = _service_ports(ctx, plan, "ClusterIP")
        ctx.emit("Service", headless, {"spec": spec}, wave=WAVE_CONFIG, label_name=plan.name)
    if not plan.ports:
        if svc_type != "ClusterIP":
            ctx.warn(f"services.{plan.svc.name}.service_type", "the service has no ports; no Service")
        return
    spec = {"type": svc_type, "selector": ctx.pod_selector(plan), "ports": _service_ports(ctx, plan, svc_type)}
    ctx.emit("Service", plan.name, {"spec": spec}, wave=WAVE_CONFIG, label_name=plan.name)
    for net in plan.svc.networks:
        for alias in net.aliases:
            name = k.service_name(alias)
            where = f"{plan.where}.networks.{net.name}.aliases"
            if name is None or name == plan.name:
                if name is None:
                    ctx.warn(where, f"alias {alias!r} is not a valid Service name; dropped")
                continue
            if ("Service", name) in ctx.names:
                ctx.warn(where, f"alias {alias!r} is already a Service name; dropped")
                continue
            ctx.names[("Service", name)] = plan.where
            alias_spec = {"type": "ClusterIP", "selector": ctx.pod_selector(plan),
                          "ports": _service_ports(ctx, plan, "ClusterIP")}
            ctx.emit("Service", name, {"spec": alias_spec}, wave=WAVE_CONFIG, label_name=plan.name,
                      annotations={A_SERVICE: plan.svc.name})


def _service_ports(ctx: Context, plan: Plan, svc_type: str) -> list[dict[str, Any]]:
    """A port per container port, at the same number (what other Compose services connect to).
    NodePort: the published port becomes the nodePort when it is in the node-port range.
    LoadBalancer: a published port that differs from the container port is added too."""
    ports: list[dict[str, Any]] = []
    for p in plan.ports:
        entry: dict[str, Any] = {"name": p.name, "port": p.target, "targetPort": p.name, "protocol": p.protocol}
        if p.app_protocol:
            entry["appProtocol"] = p.app_protocol
        if svc_type == "NodePort" and p.published:
            if 30000 <= p.published[0] <= 32767:
                entry["nodePort"] = p.published[0]
            else:
                ctx.note(f"{plan.where}.ports", f"published port {p.published[0]} is outside the node-port "
                                                 "range 30000-32767; Kubernetes picks the nodePort")
        ports.append(entry)
    if svc_type == "LoadBalancer":
        used = {(p.target, p.protocol) for p in plan.ports}
        names = {e["name"] for e in ports}
        for p in plan.ports:
            for published in p.published:
                name = k.port_name(published, p.protocol, f"pub-{published}")
                if (published, p.protocol) in used or name in names:
                    continue
                used.add((published, p.protocol))
                names.add(name)
                ports.append({"name": name, "port": published, "targetPort": p.name, "protocol": p.protocol})
    return ports


def ingress(ctx: Context, plan: Plan, wave: int) -> None:
    ingress = plan.settings.ingress
    if ingress is None:
        return
    where = f"services.{plan.svc.name}.ingress"
    if plan.kind in ("Job", "CronJob") or not plan.ports:
        raise ctx.profile_error(where, f"the service has no ports to route to ({plan.kind})")
    port = plan.ports[0]
    if ingress.port is not None:
        match = [p for p in plan.ports if p.target == ingress.port or ingress.port in p.published]
        if not match:
            raise ctx.profile_error(f"{where}.port", f"{ingress.port} is not a port of the service (ports: "
                                     f"{', '.join(str(p.target) for p in plan.ports)})")
        port = match[0]
    backend = {"service": {"name": plan.name, "port": {"name": port.name}}}
    spec: dict[str, Any] = {}
    class_name = ingress.class_name or ctx.kube.ingress_class
    if class_name:
        spec["ingressClassName"] = class_name
    spec["rules"] = [{"host": host, "http": {"paths": [{"path": ingress.path, "pathType": "Prefix",
                                                        "backend": backend}]}} for host in ingress.hosts]
    if ingress.tls_secret:
        spec["tls"] = [{"hosts": list(ingress.hosts), "secretName": ingress.tls_secret}]
    if plan.svc.networks and all(_internal(ctx, n.name) for n in plan.svc.networks):
        ctx.warn(where, "the service is only on internal networks; its NetworkPolicy blocks the ingress "
                         "controller")
    ctx.emit("Ingress", plan.name, {"spec": spec}, wave=wave, label_name=plan.name)


def _internal(ctx: Context, network: str) -> bool:
    for net in ctx.stack.networks:
        if net.name == network:
            return net.internal
    return False


def network_policies(ctx: Context) -> None:
    """An `internal` Compose network: its members that are on no other, non-internal network may
    talk only to members of their internal networks (plus DNS), and only members may reach them."""
    if not ctx.kube.network_policies:
        return
    for net in ctx.stack.networks:
        if not net.internal:
            continue
        members = sorted(p.name for p in ctx.plans.values() if any(n.name == net.name for n in p.svc.networks))
        member_set = set(members)
        isolated = sorted(p.name for p in ctx.plans.values()
                          if p.name in member_set and all(_internal(ctx, n.name) for n in p.svc.networks))
        if not isolated:
            continue
        peers = {"podSelector": {"matchLabels": {L_INSTANCE: ctx.stack_label}, "matchExpressions": [
            {"key": L_NAME, "operator": "In", "values": members}]}}
        spec = {
            "podSelector": {"matchLabels": {L_INSTANCE: ctx.stack_label}, "matchExpressions": [
                {"key": L_NAME, "operator": "In", "values": isolated}]},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [peers]}],
            "egress": [{"to": [peers]},
                       {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}],
        }
        name = ctx.claim_name("NetworkPolicy", k.with_suffix(k.dns_label(net.name) or "network", "internal"),
                                f"networks.{net.name}")
        ctx.emit("NetworkPolicy", name, {"spec": spec}, wave=WAVE_CONFIG, label_name=ctx.stack_label,
                  annotations={A_SERVICE: f"network:{net.name}"})
