"""Kubernetes names, keys and hashes: the small pure helpers that the renderer and the runtime
modules (promote, blue-green, run jobs, images) share.

Each maps a Compose name to a valid Kubernetes one or fingerprints data deterministically, so the
renderer and promote agree on every name without importing each other (tests/unit/test_render_mapping.py).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Kubernetes name grammars (apimachinery/pkg/util/validation).
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: rendering a large stack allocates tens of thousands of
    small dicts and no cycles, and each full collection rescans them all, which made render time
    grow faster than the stack. Reference counting still frees everything as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class FileMode(int):
    """A file permission: written as octal YAML (`0444`), which Kubernetes reads as YAML 1.1 octal."""

    def __repr__(self) -> str:
        return f"0{self:o}"


def short_hash(*parts: str, length: int = 8) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()
    return digest[:length]


def dns_label(text: str) -> str | None:
    """A DNS-1123 label made from a Compose name (`my_db` → `my-db`), or None if none can be."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if not name:
        return None
    if len(name) > 63:
        name = f"{name[:54].rstrip('-')}-{short_hash(text)}"
    return name if DNS1123_LABEL.match(name) else None


def service_name(text: str) -> str | None:
    """A Service name (DNS-1035: must start with a letter), or None."""
    name = dns_label(text)
    if name is None or not DNS1035_LABEL.match(name):
        return None
    return name


def with_suffix(base: str, suffix: str, limit: int = 63) -> str:
    """`base-suffix`, shortened with a hash when it would exceed `limit` characters."""
    name = f"{base}-{suffix}"
    if len(name) <= limit:
        return name
    keep = limit - len(suffix) - 10
    return f"{base[:keep].rstrip('-')}-{short_hash(base)}-{suffix}"


def config_key(text: str) -> str:
    """A ConfigMap/Secret data key from a file name (`my file.conf` → `my_file.conf`)."""
    key = re.sub(r"[^-._a-zA-Z0-9]", "_", text) or "_"
    return key if key not in (".", "..") else f"_{key}"


def port_name(port: int, protocol: str, given: str | None = None) -> str:
    """A container/Service port name: ≤ 15 characters, lowercase, with at least one letter."""
    if given:
        name = re.sub(r"[^a-z0-9-]+", "-", given.lower()).strip("-")
        name = re.sub(r"-{2,}", "-", name)
        if name and len(name) <= 15 and IANA_SVC_NAME.match(name) and re.search("[a-z]", name):
            return name
    return f"{protocol.lower()}-{port}"


def label_value(text: str) -> str:
    """A valid label value (≤ 63 characters) from arbitrary text."""
    value = re.sub(r"[^-A-Za-z0-9_.]", "-", text)[:63].strip("-_.")
    return value if LABEL_VALUE.match(value) else short_hash(text)


def annotation_key_ok(key: str) -> bool:
    """Whether `key` is a valid annotation/label key (`[prefix/]name`)."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(QUALIFIED_NAME.match(name))


@dataclass(frozen=True)
class ImageRef:
    """An image reference split into its parts."""

    registry: str | None
    repository: str  # path without the registry: `library/postgres`, `acme/api`
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """The last path component: `postgres`, `api`."""
        return self.repository.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}" if self.registry else self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image(ref: str) -> ImageRef:
    """Split a Docker image reference the way the Docker CLI does."""
    rest, _, digest = ref.partition("@")
    registry = None
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, rest = first, remainder
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1:]
    return ImageRef(registry=registry, repository=rest, tag=tag, digest=digest or None)


def built_image(stack: str, service: str, image: str | None, registry: str | None, tag: str | None) -> str:
    """Where the cluster pulls a service that Compose builds (`build:`).

    `<registry>/<name>:<tag>`: name is the last path component of `image:` when the service names
    one, else `<stack>-<service>`; tag is the profile's `image_tag`, else the tag of `image:`, else
    `latest`. Without a registry the image is used as named (the cluster must already have it).
    """
    ref = parse_image(image) if image else None
    name = ref.name if ref else f"{stack}-{service}"
    chosen_tag = tag or (ref.tag if ref else None) or "latest"
    if registry:
        return f"{registry.rstrip('/')}/{name}:{chosen_tag}"
    if ref:
        return str(ImageRef(ref.registry, ref.repository, tag or ref.tag or "latest", ref.digest if not tag else None))
    return f"{name}:{chosen_tag}"


def canonical(data: Any) -> str:
    import json

    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()
