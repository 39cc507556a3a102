"""Reading Compose YAML files directly, for the few places that need the text as written (which
variable a value references, which service uses it) rather than what Compose resolved.

Compose files may carry merge tags (`!reset`, `!override`) that PyYAML's safe loader rejects; this
loader accepts any local tag and builds the plain node underneath it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _loader() -> type:
    import yaml

    class ComposeLoader(yaml.SafeLoader):
        pass

    def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        assert isinstance(node, yaml.ScalarNode)  # the only other kind of node
        return loader.construct_scalar(node)

    ComposeLoader.add_multi_constructor("!", _any_tag)
    return ComposeLoader


def load(text: str) -> Any:
    """The first document (yaml.YAMLError on bad YAML)."""
    import yaml

    return yaml.load(text, Loader=_loader())  # a SafeLoader subclass: safe


def load_all(text: str) -> Iterator[Any]:
    import yaml

    return yaml.load_all(text, Loader=_loader())  # a SafeLoader subclass: safe
