"""Storage: PersistentVolumeClaims for named volumes and for bind-mounted data directories, and the pod
volumes and mounts (named volumes, tmpfs, bind-mounted config files as ConfigMaps, Compose secrets and
configs as files).

A bind mount is either configuration or data. Configuration (a file, a read-only directory, a
writable directory of small text files) is copied into a ConfigMap, file modes kept. Data (the data
path of a known image, a directory that does not exist yet, an empty one, one holding a database's
files, binary files or too much for a ConfigMap) is a directory the service writes to: a ConfigMap
would be read-only and lose every write, so it becomes a claim like a named volume, created empty
(its contents here are not copied, and the warning says so).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from stackctl import knownimages
from stackctl import model as m
from stackctl.kubernetes import names as k
from stackctl.kubernetes.inputs import HostPath
from stackctl.kubernetes.labels import A_PRUNE, A_VALUES
from stackctl.kubernetes.render import config, mapping
from stackctl.kubernetes.render.context import WAVE_CONFIG, Context, Plan

DEFAULT_STORAGE = 2**30
CONFIGMAP_MAX = 1_000_000  # the API server refuses ConfigMaps over 1 MiB (whole object)
BIND_PREFIX = "bind:"  # claim keys of bind-mounted data directories (no Compose volume name has a colon)
EXECUTABLE = k.FileMode(0o755)  # a host file with any x bit; others keep Kubernetes' default 0644

# Files that only a database writes: a directory holding one is a data directory, whatever its mount.
_DATABASE_FILES = frozenset({"PG_VERSION", "postmaster.pid", "ibdata1", "aria_log_control", "mysql.ibd",
                             "dump.rdb", "appendonly.aof", "appendonlydir", "WiredTiger", "mongod.lock",
                             "meta.json", "nodes"})
_DATABASE_SUFFIXES = (".db", ".sqlite", ".sqlite3", ".rdb", ".aof", ".ibd", ".frm", ".mdb", ".ldb", ".wal")
# Binary files that configuration and static sites hold (a favicon, a font, a certificate): they do not
# make a directory data.
_ASSET_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".ico", ".webp", ".bmp", ".woff", ".woff2", ".ttf", ".otf",
                   ".eot", ".der", ".crt", ".cer", ".p12", ".pfx", ".jks", ".mo", ".gz", ".zip", ".pdf")


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
    """Standalone PVCs for named volumes (and bind data directories, `bind:<name>`) that are not a
    StatefulSet's own. volume → claim name."""
    out: dict[str, str] = {}
    needed = sorted({v for p in ctx.plans.values() for v, how in p.claims.items() if how != "template"})
    claimants: dict[str, list[str]] = {}
    for p in ctx.sorted_plans:
        for v, how in p.claims.items():
            if how == "claim":
                claimants.setdefault(v, []).append(p.svc.name)
    first_mount = {key: f"{p.where}.volumes[{i}]" for p in reversed(ctx.sorted_plans)
                   for i, (key, _, _) in sorted(p.data_binds.items(), reverse=True)}
    for vol in needed:
        spec = ctx.volumes.get(vol)
        where = first_mount.get(vol, f"volumes.{vol}")  # a bind data directory: its first mount
        if spec is not None and spec.external:
            out[vol] = k.dns_label(spec.resolved_name or vol) or "volume"
            ctx.note(where, f"external: the PersistentVolumeClaim {out[vol]!r} must exist in namespace "
                             f"{ctx.namespace!r}")
            continue
        name = ctx.claim_name("PersistentVolumeClaim", volume_name(ctx, vol) if vol.startswith(BIND_PREFIX)
                              else k.dns_label(vol) or "volume", where)
        out[vol] = name
        if spec is not None:
            volume_driver_warnings(ctx, spec)
        ctx.emit("PersistentVolumeClaim", name, {"spec": claim_spec(ctx, vol)}, wave=WAVE_CONFIG,
                  label_name=name, annotations={A_PRUNE: "false"})
        users = claimants.get(vol, [])
        mode = volume_settings(ctx, vol)[2]
        if len(users) > 1 and mode in ("ReadWriteOnce", "ReadWriteOncePod"):
            fix = (f"set kubernetes.volumes.{vol}.access_mode: ReadWriteMany if the storage class supports it"
                   if not vol.startswith(BIND_PREFIX) else "make it a named volume and set its access_mode: "
                   "ReadWriteMany in kubernetes.volumes if the storage class supports it")
            ctx.warn(where, f"is shared by {', '.join(users)}: a {mode} claim can only be mounted on one node "
                             f"(one pod for ReadWriteOncePod); {fix}")
    return out


# ---------------------------------------------------------------------------------------------
# Bind mounts: data or configuration
# ---------------------------------------------------------------------------------------------
def data_binds(ctx: Context) -> None:
    """Find the bind mounts that are data directories and give each source one claim key
    (`bind:<name>`, unique beside the named volumes): `plan.data_binds[index] = (key, why, has_contents)`.
    Called while planning, so a service with one counts as having a volume of its own (a StatefulSet)."""
    found: dict[tuple[str, int], tuple[str, str, bool]] = {}
    for plan in ctx.plans.values():
        for i, mount in enumerate(plan.svc.volumes):
            reason = _data_reason(ctx, plan, mount)
            if reason is not None and mount.source:
                found[(plan.svc.name, i)] = (mount.source, *reason)
    taken = {volume_name(ctx, v) for v in ctx.volumes}
    keys: dict[str, str] = {}
    for source in sorted({source for source, _, _ in found.values()}):
        info = ctx.host[source]
        base = PurePosixPath(info.display).name or PurePosixPath(source).name
        label = k.dns_label(base) or "data"
        if label in taken:
            label = k.with_suffix(label, k.short_hash(source, length=6))
        taken.add(label)
        keys[source] = BIND_PREFIX + label
    for (service, i), (source, why, contents) in sorted(found.items()):
        ctx.plans[service].data_binds[i] = (keys[source], why, contents)


def _data_reason(ctx: Context, plan: Plan, mount: m.Mount) -> tuple[str, bool] | None:
    """Why a bind mount is a directory the service writes to, and whether it has contents here that
    a claim starts without; None for configuration (and for what is dropped or a hostPath)."""
    info = ctx.host.get(mount.source or "") if mount.type == "bind" else None
    if info is None or info.kind == "file" or info.secret:
        return None
    contents = info.kind in ("host", "too_large") or (info.kind == "dir" and bool(info.files))
    if info.kind == "dir" and mount.read_only and info.files:
        return None  # files to read (certificates under Redis's /data too): configuration
    image = plan.svc.image or ""
    if knownimages.holds_data(image, mount.target):
        if info.kind == "host" and (plan.svc.deploy.mode == "global" or plan.settings.kind == "DaemonSet"):
            return None  # a node agent's own host directory: hostPath
        return f"the data directory of the {k.parse_image(image).name} image", contents
    if info.kind == "host":
        return None
    if info.kind == "missing":
        if mount.read_only or PurePosixPath(info.display).suffix:
            return None  # a file that is not there (`./app.conf`), or nothing to read: dropped
        return "it does not exist yet, and Docker creates it empty", False
    if mount.read_only:
        return None
    if info.kind == "too_large":
        if info.source_tree:
            return None  # code to build into the image: dropped with its reason
        return "it is too large for a ConfigMap and mounted writable", True
    if not info.files:
        return "it is empty and mounted writable", False
    database = next((rel for rel in sorted(info.files) if _database_file(rel)), None)
    if database is not None:
        return f"it holds a database's files, such as {database}", True
    binary = next((rel for rel, data in sorted(info.files.items())
                   if not rel.lower().endswith(_ASSET_SUFFIXES) and not _text(data)), None)
    if binary is not None:
        return f"it holds binary files, such as {binary}", True
    verb = _writes_under(plan.svc, mount.target)
    if verb is not None:
        return f"the service's own command writes there (`{verb}`)", True
    return None


_WRITE_VERBS = frozenset({"mkdir", "chown", "chmod", "chgrp", "touch", "cp", "mv", "rm", "tee", "ln", "install",
                          "rsync", "tar", "unzip"})
_SHELL_SEGMENT = re.compile(r"[^;&|\n()]+")


def _writes_under(svc: m.Service, target: str) -> str | None:
    """The first command of the service's entrypoint/command that writes under `target`
    (`mkdir -p /sources/logs`, `chown -R 50000:0 /sources/{logs,dags}`, `echo x > /sources/f`): such
    a directory is data, whatever it holds here (a ConfigMap is read-only: the command would fail)."""
    root = "/" + target.strip("/")
    under = (root, root + "/")
    for arg in (*(svc.entrypoint or ()), *(svc.command or ())):
        for segment in _SHELL_SEGMENT.findall(arg):
            words = segment.replace(">", " > ").split()
            if not words:
                continue
            verb = words[1] if words[0] in ("sudo", "exec", "gosu", "su-exec") and len(words) > 1 else words[0]
            paths = [w.strip("'\"") for w in words[1:]]
            redirected = any(a == ">" and b.strip("'\"").startswith(under) for a, b in itertools.pairwise(words))
            if redirected or (PurePosixPath(verb).name in _WRITE_VERBS
                              and any(p == root or p.startswith(under[1]) for p in paths)):
                return " ".join(words[:4]) + (" ..." if len(words) > 4 else "")
    return None


def _database_file(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return any(part in _DATABASE_FILES for part in parts) or rel.lower().endswith(_DATABASE_SUFFIXES)


def _text(data: bytes) -> bool:
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def file_mode(info: HostPath | None, rel: str = "") -> k.FileMode | None:
    """The mode a mounted file gets: 0755 when the host file is executable (a script the container
    runs), else None (Kubernetes' default 0644, as a config file has on the host)."""
    if info is None:
        return None
    return EXECUTABLE if info.modes.get(rel, 0o644) & 0o111 else None


def volume_driver_warnings(ctx: Context, spec: m.Volume) -> None:
    if spec.driver not in (None, "local") or spec.driver_opts:
        ctx.warn(f"volumes.{spec.name}", "driver and driver_opts are not carried over; the claim uses the "
                                          "storage class of the profile (kubernetes.volumes / storage_class)")


def volume_name(ctx: Context, text: str) -> str:
    """A pod volume's name; a bind data directory's claim key (`bind:pgdata`) without its prefix."""
    return k.dns_label(text.removeprefix(BIND_PREFIX)) or f"v-{k.short_hash(text)}"


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

    def claimed(vol: str, where: str) -> str:
        how = plan.claims.get(vol)
        if how == "template":
            name = volume_name(ctx, vol)
            names.add(name)
            return name
        if vol not in added_claims:
            added_claims[vol] = add_volume(vol, {"persistentVolumeClaim": {"claimName": claims[vol]}})
            _many_pods_warning(ctx, plan, vol, claims[vol], where)
        return added_claims[vol]

    for i, mount in enumerate(svc.volumes):
        where = f"{plan.where}.volumes[{i}]"
        entry: dict[str, Any] = {"mountPath": mount.target}
        if mount.type == "volume":
            name = (add_volume(f"anon-{i}", {"emptyDir": {}}) if mount.source is None
                    else claimed(mount.source, where))
            if mount.subpath:
                entry["subPath"] = mount.subpath
        elif mount.type == "tmpfs":
            name = add_volume(f"tmpfs-{i}", {"emptyDir": _memory(mount)})
        elif mount.type == "bind" and i in plan.data_binds:
            key, why, contents = plan.data_binds[i]
            name = claimed(key, where)
            what = (f"the volumeClaimTemplate {name} (a claim per pod)" if plan.claims.get(key) == "template"
                    else f"the PersistentVolumeClaim {claims[key]}")
            text = (f"bind mount of {ctx.host[mount.source or ''].display} is a directory the service writes to "
                    f"({why}): it becomes {what}, created empty")
            # A warning even when it is empty here: where the stack runs with Compose (a laptop, a
            # server) the directory holds the data, and the same project must give the same result.
            here = "its contents on this machine are" if contents else "it is empty or missing here; whatever it " \
                "holds where the stack runs with Compose is"
            ctx.warn(where, f"{text}; {here} NOT copied (copy them in with `kubectl cp`, or restore a backup, "
                            "before the service needs them)")
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
    for mount in svc.tmpfs:  # service-level `tmpfs:`: writable even with read_only (readOnlyRootFilesystem)
        name = add_volume(f"tmpfs-{mount.target}", {"emptyDir": _memory(mount)})
        mounts.append({"name": name, "mountPath": mount.target})


def _memory(mount: m.Mount) -> dict[str, Any]:
    """A tmpfs: an emptyDir in memory (counted against the container's memory limit), with its size."""
    empty: dict[str, Any] = {"medium": "Memory"}
    if mount.tmpfs_size:
        empty["sizeLimit"] = mapping.memory_quantity(mount.tmpfs_size)
    return empty


def _many_pods_warning(ctx: Context, plan: Plan, vol: str, claim: str, where: str) -> None:
    """A ReadWriteOnce claim mounted by more than one pod of a workload: every pod must land on the
    one node that holds it, and they all write the same files."""
    mode = volume_settings(ctx, vol)[2]
    if mode not in ("ReadWriteOnce", "ReadWriteOncePod"):
        return
    replicas = plan.svc.deploy.replicas or 1
    autoscaling = plan.settings.autoscaling
    if plan.kind == "DaemonSet":
        pods = "the pods of this DaemonSet (one per node)"
    elif plan.kind == "Deployment" and (replicas > 1 or autoscaling is not None):
        pods = (f"the {replicas} replicas of this Deployment" if autoscaling is None
                else "the autoscaled replicas of this Deployment")
    else:
        return
    fix = (f"kubernetes.volumes.{vol}.access_mode: ReadWriteMany" if not vol.startswith(BIND_PREFIX)
           else "a named volume with access_mode: ReadWriteMany")
    ctx.warn(where, f"the {mode} claim {claim} is mounted by {pods}: they can only run on the one node that "
                     f"holds it, and all write the same files; use one replica, a StatefulSet (profile kind: "
                     f"StatefulSet, a claim per pod), or {fix}")


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
        return _env_file_secret(ctx, plan, base, info, where, add_volume, config_sums)
    wanted = k.with_suffix(plan.name, k.dns_label(base) or "files", 253)
    if info.kind == "file":
        key = k.config_key(base)
        name = config.config_map(ctx, wanted, config.config_data({key: data.get("", b"")}), where, plan.name)
        config_sums[f"ConfigMap/{name}/{key}"] = k.sha256(data.get("", b""))
        body: dict[str, Any] = {"name": name}
        mode = file_mode(info)
        if mode is not None:
            body["defaultMode"] = mode
        vol = add_volume(f"{base}-file", {"configMap": body})
        return vol, {"subPath": key}
    keys: dict[str, bytes] = {}
    for rel in sorted(data):
        keys[k.config_key(rel.replace("/", "__"))] = data[rel]
    name = config.config_map(ctx, wanted, config.config_data(keys), where, plan.name)
    items: list[dict[str, Any]] = []
    for rel in sorted(data):
        key = k.config_key(rel.replace("/", "__"))
        items.append({"key": key, "path": rel})
        config_sums[f"ConfigMap/{name}/{key}"] = k.sha256(data[rel])
    body = {"name": name}
    modes = {rel: file_mode(info, rel) for rel in data}
    if data and all(mode is not None for mode in modes.values()):
        body["defaultMode"] = EXECUTABLE  # every file a script
    elif any(mode is not None for mode in modes.values()):
        for item in items:  # only the scripts: the rest keep 0644
            if modes[item["path"]] is not None:
                item["mode"] = modes[item["path"]]
        body["items"] = items
    if "items" not in body and any("/" in rel or k.config_key(rel) != rel for rel in data):
        body["items"] = items
    vol = add_volume(f"{base}-dir", {"configMap": body})
    return vol, {}


def _env_file_secret(ctx: Context, plan: Plan, base: str, info: HostPath, where: str, add_volume: Any,
                     config_sums: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """A bind-mounted env file holds secrets: a Secret, never a ConfigMap (values left out, and the
    Secret with them, unless they were asked for)."""
    content = info.files.get("", b"")
    name = ctx.claim_name("Secret", k.with_suffix(plan.name, k.dns_label(base) or "env", 253), where)
    key = k.config_key(base)
    value = content if ctx.secrets.values is not None else b""
    annotations = {} if ctx.secrets.values is not None else {A_VALUES: "omitted"}
    ctx.emit("Secret", name, {"type": "Opaque", "data": {key: config.b64(value)}}, wave=WAVE_CONFIG,
              label_name=plan.name, annotations=annotations)
    config_sums[f"Secret/{name}/{key}"] = k.sha256(content)
    body: dict[str, Any] = {"secretName": name}
    mode = file_mode(info)
    if mode is not None:
        body["defaultMode"] = mode
    vol = add_volume(f"{base}-file", {"secret": body})
    return vol, {"subPath": key}


def _file_default_mode(ctx: Context, what: str, name: str) -> int:
    """Compose's 0444 for a secret or config without `mode:`; 0555 when its `file:` is executable on
    the host (Compose bind-mounts it, so a script stays runnable)."""
    items = ctx.stack.secrets if what == "secret" else ctx.stack.configs
    item = next((i for i in items if i.name == name), None)
    info = ctx.host.get(item.file) if item is not None and item.file else None
    return 0o555 if file_mode(info) is not None else 0o444


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
            mode = k.FileMode(ref.mode if ref.mode is not None else _file_default_mode(ctx, what, ref.source))
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
