"""Named listeners, configured as Kafka configures them.

- `listeners`: `NAME://host:port,...`. A name is any word; its security protocol comes from
  `listener.security.protocol.map` (`NAME:PROTOCOL,...`, Kafka's default maps PLAINTEXT, SSL,
  SASL_PLAINTEXT and SASL_SSL to themselves). An empty host binds every interface. Names and ports must be
  distinct (port 0, a free port, may repeat).
- `advertised.listeners`: what other brokers and clients are told, per listener name; its names must be
  among `listeners` (ports may repeat). Unset, the bound addresses are advertised (a wildcard host as this
  machine's name, port 0 as the bound port). Kafka refuses `0.0.0.0` in `advertised.listeners`.
- `inter.broker.listener.name` or, mutually exclusive with it, `security.inter.broker.protocol` (whose
  listener is the one named like the protocol): the listener followers and the transaction coordinator's
  markers use; it must be advertised.
- `controller.listener.names` (KRaft): listed here so a broker can tell them apart.
- Per-listener overrides: `listener.name.<lower-cased name>.<key>` wins over `<key>` for that listener
  (`listener.name.internal.ssl.keystore.location`), as Kafka's ListenerName.configPrefix.

Errors are ConfigError with Kafka 4.4's messages (AbstractKafkaConfig, KafkaConfig.validateValues).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from typing import Any

from strom.config import BROKER_CONFIGS, BrokerConfig, ConfigError

__all__ = [
    "DEFAULT_PROTOCOL_MAP",
    "SECURITY_PROTOCOLS",
    "Listener",
    "ListenerSet",
    "listener_value",
    "parse_listeners",
    "parse_protocol_map",
]

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
DEFAULT_PROTOCOL_MAP = "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"
# Kafka's SocketServerConfigs.URI_PARSE_REGEXP
_URI = re.compile(r"^(.*)://\[?([0-9a-zA-Z\-%._:]*)\]?:(-?[0-9]+)")


@dataclass(frozen=True, slots=True)
class Listener:
    """One endpoint: the listener's name (upper case), host ("" = every interface), port, protocol."""

    name: str
    host: str
    port: int
    security_protocol: str

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.name}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ListenerSet:
    """The broker's listeners as bound, as advertised, and which one brokers talk to each other on."""

    listeners: tuple[Listener, ...]
    advertised: tuple[Listener, ...]
    inter_broker: str
    controller_names: tuple[str, ...] = ()
    advertised_explicitly: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(listener.name for listener in self.listeners)

    def get(self, name: str) -> Listener | None:
        return next((lst for lst in self.listeners if lst.name == name), None)

    def advertised_for(self, name: str) -> Listener | None:
        return next((lst for lst in self.advertised if lst.name == name), None)

    @property
    def protocol_map(self) -> dict[str, str]:
        return {lst.name: lst.security_protocol for lst in self.listeners}


def parse_protocol_map(raw: str | None) -> dict[str, str]:
    """`listener.security.protocol.map` -> {NAME: PROTOCOL} (names upper-cased, Kafka's ListenerName
    .normalised), with Kafka's errors."""
    key = "listener.security.protocol.map"
    text = DEFAULT_PROTOCOL_MAP if raw is None else str(raw)
    parsed: dict[str, str] = {}
    if not text:
        return parsed
    for item in re.split(r"\s*,\s*", text):
        colon = item.rfind(":")
        if colon < 0:
            # Kafka's Csv.parseCsvMap fails on substring(0, -1)
            raise ConfigError(
                f"Error parsing configuration property '{key}': begin 0, end -1, length {len(item)}"
            )
        name, protocol = item[:colon].strip(), item[colon + 1 :].strip()
        if protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(f"Invalid security protocol `{protocol}` defined in {key}")
        parsed[name.upper()] = protocol
    return parsed


def _java_list(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _endpoints(raw: str, protocols: dict[str, str], *, distinct_ports: bool) -> list[Listener]:
    items = [part.strip() for part in raw.split(",") if part.strip()]
    try:
        endpoints = []
        for entry in items:
            m = _URI.fullmatch(entry)
            if m is None:
                raise ConfigError(f"Unable to parse {entry} to a broker endpoint")
            name = m.group(1).upper()
            protocol = protocols.get(name)
            if protocol is None:
                raise ConfigError(f"No security protocol defined for listener {name}")
            endpoints.append(Listener(name, m.group(2), int(m.group(3)), protocol))
        if len({e.name for e in endpoints}) != len(endpoints):
            raise ConfigError(f"Each listener must have a different name, listeners: {_java_list(items)}")
        if distinct_ports:
            _check_ports(endpoints, items)
    except ConfigError as exc:
        raise ConfigError(f"Error creating broker listeners from '{_java_list(items)}': {exc}") from None
    return endpoints


def _is_ip(host: str) -> int:
    """4 or 6 for an IP literal, else 0."""
    for family, version in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
        try:
            socket.inet_pton(family, host)
            return version
        except OSError:
            continue
    return 0


def _check_ports(endpoints: list[Listener], items: list[str]) -> None:
    """Kafka's rule: ports differ, except one IPv4 and one IPv6 listener may share one (port 0 may
    repeat: a free port each)."""
    by_port: dict[int, list[Listener]] = {}
    for e in endpoints:
        if e.port != 0:
            by_port.setdefault(e.port, []).append(e)
    for port, group in by_port.items():
        if len(group) < 2:
            continue
        with_ip = [e for e in group if _is_ip(e.host)]
        without_ip = [e for e in group if not _is_ip(e.host)]
        if len(without_ip) > 1:
            raise ConfigError(f"Each listener must have a different port, listeners: {_java_list(items)}")
        if not with_ip:
            continue
        if len(with_ip) == 2:
            if {_is_ip(with_ip[0].host), _is_ip(with_ip[1].host)} != {4, 6} or without_ip:
                raise ConfigError(
                    "If you have two listeners on the same port then one needs to be IPv4 and the other "
                    f"IPv6, listeners: {_java_list(items)}, port: {port}"
                )
            continue
        raise ConfigError(
            "Each listener must have a different port unless exactly one listener has an IPv4 address and "
            f"the other IPv6 address, listeners: {_java_list(items)}, port: {port}"
        )


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(item).strip().upper() for item in items if str(item).strip())


def parse_listeners(config: BrokerConfig) -> ListenerSet:
    """The validated listeners of a broker config; ConfigError with Kafka's message otherwise."""
    explicit_map = config.is_set("listener.security.protocol.map")
    protocols = parse_protocol_map(config.get("listener.security.protocol.map") if explicit_map else None)
    controller_names = _names(config.get("controller.listener.names"))
    if not explicit_map:
        # Kafka (KRaft) maps controller listeners to PLAINTEXT when no map is given
        for name in controller_names:
            protocols.setdefault(name, "PLAINTEXT")
    listeners = _endpoints(str(config.get("listeners") or ""), protocols, distinct_ports=True)
    raw_advertised = config.get("advertised.listeners")
    if raw_advertised:
        advertised = _endpoints(str(raw_advertised), protocols, distinct_ports=False)
    else:
        advertised = [lst for lst in listeners if lst.name not in controller_names]
    advertised_names = [lst.name for lst in advertised]
    inter_broker = _inter_broker_listener(config, protocols)
    if not advertised:
        raise ConfigError("There must be at least one broker advertised listener.")
    if inter_broker not in advertised_names:
        raise ConfigError(
            "inter.broker.listener.name must be a listener name defined in advertised.listeners. "
            f"The valid options based on currently configured listeners are {','.join(advertised_names)}"
        )
    listener_names = [lst.name for lst in listeners]
    if not set(advertised_names) <= set(listener_names):
        raise ConfigError(
            "advertised.listeners listener names must be equal to or a subset of the ones defined in "
            f"listeners. Found {','.join(advertised_names)}. The valid options based on the current "
            f"configuration are {','.join(listener_names)}"
        )
    if raw_advertised and any(lst.host == "0.0.0.0" for lst in advertised):
        raise ConfigError(
            "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a routable IP address."
        )
    return ListenerSet(
        tuple(listeners), tuple(advertised), inter_broker, controller_names, bool(raw_advertised)
    )


def _inter_broker_listener(config: BrokerConfig, protocols: dict[str, str]) -> str:
    name = config.get("inter.broker.listener.name")
    if name:
        if config.is_set("security.inter.broker.protocol"):
            raise ConfigError(
                "Only one of inter.broker.listener.name and security.inter.broker.protocol should be set."
            )
        name = str(name).strip().upper()
        if name not in protocols:
            raise ConfigError(
                f"Listener with name {name} defined in inter.broker.listener.name not found in "
                "listener.security.protocol.map."
            )
        return name
    protocol = str(config.get("security.inter.broker.protocol"))
    if protocol not in SECURITY_PROTOCOLS:
        raise ConfigError(f"Invalid security protocol `{protocol}` defined in security.inter.broker.protocol")
    return protocol


def listener_value(config: BrokerConfig, listener: str, key: str) -> Any:
    """`key` for one listener: `listener.name.<lower name>.<key>` when set (parsed as `key` is), else
    `key` itself."""
    override = f"listener.name.{listener.lower()}.{key}"
    try:
        raw = config.get(override)
    except KeyError:
        return config.get(key)
    definition = BROKER_CONFIGS.get(key)
    return definition.parse(raw) if definition is not None and isinstance(raw, str) else raw
