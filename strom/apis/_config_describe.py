"""The config entries DescribeConfigs (and CreateTopics v5+) report: every key's effective value, its
source, synonyms in precedence order, read-only and sensitive flags, type and documentation (KIP-226,
KIP-569). Topic keys fall back through their broker synonyms (`log.retention.ms` -> `.minutes` -> `.hours`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from strom.config import (
    BROKER_CONFIGS,
    TOPIC_CONFIGS,
    BrokerConfig,
    ConfigDef,
    ConfigSource,
    parse_topic_overrides,
)


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One described key; values are Kafka strings (None for null or hidden sensitive values)."""

    name: str
    value: str | None
    source: ConfigSource
    read_only: bool
    sensitive: bool
    synonyms: tuple[tuple[str, str | None, ConfigSource], ...]
    config_type: int
    documentation: str


def _render(definition: ConfigDef | None, value: Any) -> str | None:
    if definition is None:
        return None if value is None else str(value)
    return definition.render(value)


def describe_topic(
    config: BrokerConfig, overrides: Mapping[str, str], keys: Iterable[str] | None = None
) -> list[ConfigEntry]:
    """Every topic key (or just `keys`) of a topic with these override strings."""
    parsed = parse_topic_overrides({k: v for k, v in overrides.items() if k in TOPIC_CONFIGS})
    wanted = set(keys) if keys is not None else None
    entries: list[ConfigEntry] = []
    for name, rv in config.resolve_topic(parsed).items():
        if wanted is not None and name not in wanted:
            continue
        definition = rv.definition
        synonyms = tuple(
            (
                syn_name,
                _render(definition if syn_name == name else BROKER_CONFIGS.get(syn_name), syn_value),
                source,
            )
            for syn_name, syn_value, source in rv.synonyms
        )
        value = (
            overrides[name] if rv.source == ConfigSource.DYNAMIC_TOPIC_CONFIG else definition.render(rv.value)
        )
        entries.append(
            ConfigEntry(
                name=name,
                value=None if definition.sensitive else value,
                source=rv.source,
                read_only=False,
                sensitive=definition.sensitive,
                synonyms=synonyms,
                config_type=int(definition.type),
                documentation=definition.doc,
            )
        )
    return entries


def describe_broker(config: BrokerConfig, keys: Iterable[str] | None = None) -> list[ConfigEntry]:
    """Every broker key (or just `keys`) with its effective value and the layers that set it."""
    wanted = set(keys) if keys is not None else None
    entries: list[ConfigEntry] = []
    for name, definition in BROKER_CONFIGS.items():
        if wanted is not None and name not in wanted:
            continue
        layers = config.layers(name)
        source = layers[0][1] if layers else ConfigSource.DEFAULT_CONFIG
        value = definition.render(config.get(name))
        synonyms = tuple((name, None if definition.sensitive else definition.render(v), s) for v, s in layers)
        entries.append(
            ConfigEntry(
                name=name,
                value=None if definition.sensitive else value,
                source=source,
                read_only=definition.read_only,
                sensitive=definition.sensitive,
                synonyms=synonyms,
                config_type=int(definition.type),
                documentation=definition.doc,
            )
        )
    return entries
