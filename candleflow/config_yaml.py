"""YAML configuration files (scans, indicator specs) read without anchors and aliases.

Aliases let a file of a few hundred bytes stand for a value of any size (eight levels of ten
aliases: 10**8 strings from 432 bytes), and nothing in candleflow's configuration needs them, so
the loader refuses the first anchor or alias it meets, before anything refers to it.
"""

import yaml

ALIASES_REFUSED = "YAML anchors and aliases are not allowed"


class _AliasRefused(yaml.YAMLError):
    pass


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises at a node with an anchor (``&a``) or at an alias (``*a``)."""

    def compose_node(self, parent, index):
        event = self.peek_event()  # compose_node is only called at a node event: all have .anchor
        if event.anchor is not None:
            raise _AliasRefused(f"line {event.start_mark.line + 1}: {ALIASES_REFUSED}")
        return super().compose_node(parent, index)


def load_config_yaml(stream, where: str):
    """The document of ``stream`` (text or an open file) as ``yaml.safe_load`` reads it; an anchor
    or alias raises ValueError naming ``where`` and the line."""
    try:
        return yaml.load(stream, Loader=_NoAliasLoader)
    except _AliasRefused as exc:
        raise ValueError(f"{where}: {exc}") from None
