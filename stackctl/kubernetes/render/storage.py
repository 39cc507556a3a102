"""Storage: PersistentVolumeClaims for named volumes, and the pod volumes and mounts (named volumes,
tmpfs, bind mounts as ConfigMaps, Compose secrets and configs as files)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackctl import model as m
from stackctl.kubernetes import names as k
from stackctl.kubernetes.labels import A_PRUNE, A_VALUES
from stackctl.kubernetes.render import config, mapping
from stackctl.kubernetes.render.context import WAVE_CONFIG, Context, Plan

DEFAULT_STORAGE = 2**30
CONFIGMAP_MAX = 1_000_000  # the API server refuses ConfigMaps over 1 MiB (whole object)


def volume_settings(ctx: Context, vol: str) -> tuple[int, str | None, str]:
    spec = ctx.kube.volumes.get(vol)
    size = (spec.size if spec and spec.size else None) or ctx.kube.storage_size or DEFAULT_STORAGE
    storage_class = (spec.storage_class if spec and spec.storage_class else None) or ctx.kube.storage_class
    mode = (spec.access_mode if spec and spec.access_mode else None) or "ReadWriteOnce"
    return size, storage_class, mode


def claim_spec(ctx: Context, vol: str) -> dict[str, Any]:
    size, storage_class, mode = volume_settings(ctx, vol)
    spec: dict[str, Any] = {"accessModes": [mode],
                            "resources": {"requests": {"storage": mapping.memory_quantity(size)}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return spec


def claims(ctx: Context) -> dict[str, str]:
    """Standalone PVCs for named volumes that are not a StatefulSet's own. volume → claim name."""
    out: dict[str, str] = {}
    needed = sorted({v for p in ctx.plans.values() for v, how in p.claims.items() if how != "template"})
    claimants: dict[str, list[str]] = {}
    for p in ctx.sorted_plans:
        for v, how in p.claims.items():
            if how == "claim":
                claimants.setdefault(v, []).append(p.svc.name)
    for vol in needed:
        spec = ctx.volumes.get(vol)
        where = f"volumes.{vol}"
        if spec is not None and spec.external:
            out[vol] = k.dns_label(spec.resolved_name or vol) or "volume"
            ctx.note(where, f"external: the PersistentVolumeClaim {out[vol]!r} must exist in namespace "
                             f"{ctx.namespace!r}")
            continue
        name = ctx.claim_name("PersistentVolumeClaim", k.dns_label(vol) or "volume", where)
        out[vol] = name
        if spec is not None:
            volume_driver_warnings(ctx, spec)
        ctx.emit("PersistentVolumeClaim", name, {"spec": claim_spec(ctx, vol)}, wave=WAVE_CONFIG,
                  label_name=name, annotations={A_PRUNE: "false"})
        users = claimants.get(vol, [])
        mode = volume_settings(ctx, vol)[2]
        if len(users) > 1 and mode in ("ReadWriteOnce", "ReadWriteOncePod"):
            ctx.warn(where, f"is shared by {', '.join(users)}: a {mode} claim can only be mounted on one node "
                             f"(one pod for ReadWriteOncePod); set kubernetes.volumes.{vol}.access_mode: "
                             "ReadWriteMany if the storage class supports it")
    return out


def volume_driver_warnings(ctx: Context, spec: m.Volume) -> None:
    if spec.driver not in (None, "local") or spec.driver_opts:
        ctx.warn(f"volumes.{spec.name}", "driver and driver_opts are not carried over; the claim uses the "
                                          "storage class of the profile (kubernetes.volumes / storage_class)")


def volume_name(ctx: Context, text: str) -> str:
    return k.dns_label(text) or f"v-{k.short_hash(text)}"


def mounts(ctx: Context, plan: Plan, claims: Mapping[str, str], volumes: list[dict[str, Any]],
           mounts: list[dict[str, Any]], config_sums: dict[str, str]) -> None:
    svc = plan.svc
    names: set[str] = set()

    def add_volume(base: str, body: dict[str, Any]) -> str:
        name = volume_name(ctx, base)
        if name in names:
            name = k.with_suffix(name, k.short_hash(base, str(len(names)), length=6))
        names.add(name)
        volumes.append({"name": name, **body})
        return name

    added_claims: dict[str, str] = {}
    for i, mount in enumerate(svc.volumes):
        where = f"{plan.where}.volumes[{i}]"
        entry: dict[str, Any] = {"mountPath": mount.target}
        if mount.type == "volume":
            if mount.source is None:
                name = add_volume(f"anon-{i}", {"emptyDir": {}})
            elif plan.claims.get(mount.source) == "template":
                name = volume_name(ctx, mount.source)
                names.add(name)
            else:
                if mount.source not in added_claims:
                    added_claims[mount.source] = add_volume(
                        mount.source, {"persistentVolumeClaim": {"claimName": claims[mount.source]}})
                name = added_claims[mount.source]
            if mount.subpath:
                entry["subPath"] = mount.subpath
        elif mount.type == "tmpfs":
            empty: dict[str, Any] = {"medium": "Memory"}
            if mount.tmpfs_size:
                empty["sizeLimit"] = mapping.memory_quantity(mount.tmpfs_size)
            name = add_volume(f"tmpfs-{i}", {"emptyDir": empty})
        elif mount.type == "bind":
            bound = _bind(ctx, plan, mount, where, add_volume, config_sums)
            if bound is None:
                continue
            name, extra = bound
            entry.update(extra)
        else:
            ctx.warn(where, f"a {mount.type} mount has no Kubernetes equivalent; dropped")
            continue
        mount_entry = {"name": name, **entry}
        if mount.read_only:
            mount_entry["readOnly"] = True
        mounts.append(mount_entry)


def _bind(ctx: Context, plan: Plan, mount: m.Mount, where: str, add_volume: Any,
          config_sums: dict[str, str]) -> tuple[str, dict[str, Any]] | None:
    source = mount.source or ""
    info = ctx.host.get(source)
    shown = info.display if info else source
    if info is None:
        ctx.warn(where, f"bind mount of {shown}: not found on this machine; dropped")
        return None
    if info.kind == "host":
        if plan.kind == "DaemonSet":
            name = add_volume(f"host-{k.config_key(source).strip('_.') or 'root'}", {"hostPath": {"path": source}})
            return name, {}
        hint = ("; set the TZ environment variable instead" if source in ("/etc/localtime", "/etc/timezone")
                else "")
        ctx.warn(where, f"bind mount of the host path {shown} cannot be carried over: a {plan.kind}'s pods run "
                         f"on any node (only a DaemonSet gets hostPath mounts); dropped{hint}")
        return None
    if info.kind in ("missing", "too_large"):
        ctx.warn(where, f"bind mount of {shown} cannot be carried over: {info.reason}; dropped")
        return None
    data = dict(info.files)
    size = sum(len(v) for v in data.values())
    if size > CONFIGMAP_MAX:
        ctx.warn(where, f"bind mount of {shown} cannot be carried over: {size} bytes is more than a ConfigMap "
                         "holds (1 MiB); build it into the image; dropped")
        return None
    base = source.rstrip("/").rsplit("/", 1)[-1] or "root"
    if info.secret and info.kind == "file":
        return _env_file_secret(ctx, plan, base, data.get("", b""), where, add_volume, config_sums)
    name = ctx.claim_name("ConfigMap", k.with_suffix(plan.name, k.dns_label(base) or "files", 253),
                            f"{where}")
    if info.kind == "file":
        key = k.config_key(base)
        ctx.emit("ConfigMap", name, config.config_data({key: data.get("", b"")}), wave=WAVE_CONFIG,
                  label_name=plan.name)
        config_sums[f"ConfigMap/{name}/{key}"] = k.sha256(data.get("", b""))
        vol = add_volume(f"{base}-file", {"configMap": {"name": name}})
        return vol, {"subPath": key}
    keys: dict[str, bytes] = {}
    items = []
    for rel in sorted(data):
        key = k.config_key(rel.replace("/", "__"))
        keys[key] = data[rel]
        items.append({"key": key, "path": rel})
        config_sums[f"ConfigMap/{name}/{key}"] = k.sha256(data[rel])
    ctx.emit("ConfigMap", name, config.config_data(keys), wave=WAVE_CONFIG, label_name=plan.name)
    body: dict[str, Any] = {"name": name}
    if any("/" in rel or k.config_key(rel) != rel for rel in data):
        body["items"] = items
    vol = add_volume(f"{base}-dir", {"configMap": body})
    return vol, {}


def _env_file_secret(ctx: Context, plan: Plan, base: str, content: bytes, where: str, add_volume: Any,
                     config_sums: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """A bind-mounted env file holds secrets: a Secret, never a ConfigMap (values left out, and the
    Secret with them, unless they were asked for)."""
    name = ctx.claim_name("Secret", k.with_suffix(plan.name, k.dns_label(base) or "env", 253), where)
    key = k.config_key(base)
    value = content if ctx.secrets.values is not None else b""
    annotations = {} if ctx.secrets.values is not None else {A_VALUES: "omitted"}
    ctx.emit("Secret", name, {"type": "Opaque", "data": {key: config.b64(value)}}, wave=WAVE_CONFIG,
              label_name=plan.name, annotations=annotations)
    config_sums[f"Secret/{name}/{key}"] = k.sha256(content)
    vol = add_volume(f"{base}-file", {"secret": {"secretName": name}})
    return vol, {"subPath": key}


def file_mounts(ctx: Context, plan: Plan, files: Mapping[tuple[str, str], tuple[str, str, str]],
                volumes: list[dict[str, Any]], mounts: list[dict[str, Any]], config_sums: dict[str, str],
                secret_sums: dict[str, str]) -> None:
    """Compose `secrets:` at /run/secrets/<name> (one projected volume) and `configs:` at /<name>."""
    svc = plan.svc
    projected: list[dict[str, Any]] = []
    used_names = {v["name"] for v in volumes}
    for what, refs in (("secret", svc.secrets), ("config", svc.configs)):
        for i, ref in enumerate(refs):
            where = f"{plan.where}.{what}s[{i}]"
            found = files.get((what, ref.source))
            if found is None:
                ctx.warn(where, f"{what} {ref.source!r} is not defined at the top level; dropped")
                continue
            obj_kind, obj_name, key = found
            fingerprint = ctx.file_fingerprints[(what, ref.source)]
            (secret_sums if what == "secret" else config_sums)[f"{obj_kind}/{obj_name}/{key}"] = fingerprint
            if ref.uid or ref.gid:
                ctx.warn(where, "uid/gid are not carried over (Kubernetes sets file ownership per pod with "
                                 "fsGroup)")
            mode = k.FileMode(ref.mode if ref.mode is not None else 0o444)
            target = ref.target or (ref.source if what == "secret" else f"/{ref.source}")
            if what == "secret" and not target.startswith("/"):
                target = f"/run/secrets/{target}"
            ref_key = "secret" if obj_kind == "Secret" else "configMap"
            if what == "secret" and target.startswith("/run/secrets/"):
                projected.append({ref_key: {"name": obj_name, "items": [
                    {"key": key, "path": target.removeprefix("/run/secrets/"), "mode": mode}]}})
                continue
            vol = volume_name(ctx, f"{what}-{ref.source}")
            if vol in used_names:
                vol = k.with_suffix(vol, k.short_hash(where, length=6))
            used_names.add(vol)
            name_key = "secretName" if obj_kind == "Secret" else "name"
            volumes.append({"name": vol, ref_key: {name_key: obj_name, "items": [
                {"key": key, "path": key, "mode": mode}]}})
            mounts.append({"name": vol, "mountPath": target, "subPath": key, "readOnly": True})
    if projected:
        vol = "run-secrets" if "run-secrets" not in used_names else k.with_suffix("run-secrets", "x")
        volumes.append({"name": vol, "projected": {"sources": projected}})
        mounts.append({"name": vol, "mountPath": "/run/secrets", "readOnly": True})
