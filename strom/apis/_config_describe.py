"""The config entries DescribeConfigs (and CreateTopics v5+) report: every key's effective value, its
source, synonyms in precedence order, read-only and sensitive flags, type and documentation (KIP-226,
KIP-569). Topic keys fall back through their broker synonyms (`log.retention.ms` -> `.minutes` -> `.hours`).

Broker keys Strom does not know (set in server.properties or dynamically) are described as Kafka 4.4
describes keys outside its ConfigDef: type UNKNOWN, read-only, sensitive, so with a null value. The
cluster-wide default resource (BROKER "") lists only the dynamic defaults, each with that one layer.
A GROUP resource (KIP-848, KIP-932, KIP-1071) lists every group config: a key the group sets with source
GROUP_CONFIG, any other with the value of the broker key it falls back to (or Kafka's default), the broker
key's layers as synonyms, as Kafka 4.4 describes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from strom.config import (
    BROKER_CONFIGS,
    BrokerConfig,
    ConfigDef,
    ConfigSource,
    ConfigType,
    parse_stored_overrides,
)
from strom.group_config import GROUP_CONFIGS, broker_layers


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
    parsed, _skipped = parse_stored_overrides(overrides)
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


def _broker_entry(name: str, value: Any, layers: list[tuple[Any, ConfigSource]]) -> ConfigEntry:
    definition = BROKER_CONFIGS.get(name)
    source = layers[0][1] if layers else ConfigSource.DEFAULT_CONFIG
    if definition is None:
        # a key outside the ConfigDef: Kafka cannot tell whether it is secret, so hides its value
        synonyms = tuple((name, None, s) for _v, s in layers)
        return ConfigEntry(name, None, source, True, True, synonyms, int(ConfigType.UNKNOWN), "")
    hidden = definition.sensitive
    synonyms = tuple((name, None if hidden else definition.render(v), s) for v, s in layers)
    return ConfigEntry(
        name=name,
        value=None if hidden else definition.render(value),
        source=source,
        read_only=definition.read_only,
        sensitive=hidden,
        synonyms=synonyms,
        config_type=int(definition.type),
        documentation=definition.doc,
    )


def describe_broker(
    config: BrokerConfig, keys: Iterable[str] | None = None, *, cluster_default: bool = False
) -> list[ConfigEntry]:
    """Every broker key (or just `keys`) with its effective value and the layers that set it, unknown
    keys included; with `cluster_default`, only the cluster-wide dynamic defaults."""
    wanted = set(keys) if keys is not None else None
    if cluster_default:
        defaults = config.dynamic_default_overrides
        return [
            _broker_entry(name, value, [(value, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG)])
            for name, value in defaults.items()
            if wanted is None or name in wanted
        ]
    names = [*BROKER_CONFIGS, *config.unknown_keys()]
    return [
        _broker_entry(name, config.get(name), config.layers(name))
        for name in names
        if wanted is None or name in wanted
    ]


def describe_group(
    config: BrokerConfig, overrides: Mapping[str, str], keys: Iterable[str] | None = None
) -> list[ConfigEntry]:
    """Every group config (or just `keys`) of a group with these override strings: a key the group sets
    has source GROUP_CONFIG, any other the source and value of the top layer of the broker key it falls
    back to (Kafka's default for a key with none); synonyms list the group's own value, then that broker
    key's layers. Kafka's internal keys are listed only when the group sets them."""
    wanted = set(keys) if keys is not None else None
    entries: list[ConfigEntry] = []
    for name, key in GROUP_CONFIGS.items():
        if (wanted is not None and name not in wanted) or (key.internal and name not in overrides):
            continue
        definition = key.definition
        if key.broker_key is None:
            fallback = [(name, definition.render(definition.default), ConfigSource.DEFAULT_CONFIG)]
        else:
            broker_def = BROKER_CONFIGS.get(key.broker_key) or definition
            fallback = [
                (key.broker_key, broker_def.render(value), source)
                for value, source in broker_layers(config, key.broker_key)
            ]
        if name in overrides:
            value, source = overrides[name], ConfigSource.GROUP_CONFIG
            synonyms = ((name, value, source), *fallback)
        else:
            _n, value, source = fallback[0]
            synonyms = tuple(fallback)
        entries.append(
            ConfigEntry(
                name=name,
                value=value,
                source=source,
                read_only=False,
                sensitive=False,
                synonyms=synonyms,
                config_type=int(definition.type),
                documentation=definition.doc,
            )
        )
    return entries
