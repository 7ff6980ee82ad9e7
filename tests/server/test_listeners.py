"""Named listeners parsed and validated as Kafka 4.4 does (messages from AbstractKafkaConfig and
KafkaConfig.validateValues)."""

from __future__ import annotations

import pytest

from strom.config import BrokerConfig, ConfigError
from strom.server.listeners import Listener, listener_value, parse_listeners, parse_protocol_map


def test_default_is_one_plaintext_listener() -> None:
    ls = parse_listeners(BrokerConfig({}))
    assert ls.listeners == (Listener("PLAINTEXT", "127.0.0.1", 9092, "PLAINTEXT"),)
    assert ls.advertised == ls.listeners and ls.inter_broker == "PLAINTEXT"


def test_several_named_listeners_with_a_map_and_inter_broker_name() -> None:
    config = BrokerConfig(
        {
            "listeners": "client://:9092,SSL://127.0.0.1:9093,INTERNAL://[::1]:9094",
            "listener.security.protocol.map": "CLIENT:PLAINTEXT, SSL:SSL,INTERNAL:SSL",
            "advertised.listeners": "CLIENT://broker-1:19092,SSL://broker-1:19093,INTERNAL://broker-1:9094",
            "inter.broker.listener.name": "internal",
        }
    )
    ls = parse_listeners(config)
    assert [(lst.name, lst.host, lst.port, lst.security_protocol) for lst in ls.listeners] == [
        ("CLIENT", "", 9092, "PLAINTEXT"),
        ("SSL", "127.0.0.1", 9093, "SSL"),
        ("INTERNAL", "::1", 9094, "SSL"),
    ]
    assert ls.inter_broker == "INTERNAL"
    assert ls.advertised_for("CLIENT") == Listener("CLIENT", "broker-1", 19092, "PLAINTEXT")
    assert str(ls.get("INTERNAL")) == "INTERNAL://[::1]:9094"


def test_security_inter_broker_protocol_names_the_listener() -> None:
    ls = parse_listeners(
        BrokerConfig({"listeners": "PLAINTEXT://:1,SSL://:2", "security.inter.broker.protocol": "SSL"})
    )
    assert ls.inter_broker == "SSL"


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (
            {"listeners": "PLAINTEXT://a:9092,PLAINTEXT://b:9093"},
            "Error creating broker listeners from '[PLAINTEXT://a:9092, PLAINTEXT://b:9093]': "
            "Each listener must have a different name, listeners: [PLAINTEXT://a:9092, PLAINTEXT://b:9093]",
        ),
        (
            {"listeners": "PLAINTEXT://a:9092,SSL://b:9092"},
            "Each listener must have a different port, listeners: [PLAINTEXT://a:9092, SSL://b:9092]",
        ),
        (
            {"listeners": "TRACE://localhost:9091,SSL://localhost:9093"},
            "No security protocol defined for listener TRACE",
        ),
        ({"listeners": "PLAINTEXT:9092"}, "Unable to parse PLAINTEXT:9092 to a broker endpoint"),
        (
            {
                "listeners": "TRACE://localhost:9091,SSL://localhost:9093",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,TRACE:PLAINTEXT,SSL:SSL",
                "advertised.listeners": "PLAINTEXT://localhost:9092",
                "inter.broker.listener.name": "TRACE",
            },
            "inter.broker.listener.name must be a listener name defined in advertised.listeners. "
            "The valid options based on currently configured listeners are PLAINTEXT",
        ),
        (
            {
                "listeners": "TRACE://localhost:9091,SSL://localhost:9093",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,TRACE:PLAINTEXT,SSL:SSL",
                "advertised.listeners": "PLAINTEXT://localhost:9092",
            },
            "advertised.listeners listener names must be equal to or a subset of the ones defined in "
            "listeners. Found PLAINTEXT. The valid options based on the current configuration are TRACE,SSL",
        ),
        (
            {"inter.broker.listener.name": "PLAINTEXT", "security.inter.broker.protocol": "PLAINTEXT"},
            "Only one of inter.broker.listener.name and security.inter.broker.protocol should be set.",
        ),
        (
            {"inter.broker.listener.name": "OTHER"},
            "Listener with name OTHER defined in inter.broker.listener.name not found in "
            "listener.security.protocol.map.",
        ),
        (
            {"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,X:TLS"},
            "Invalid security protocol `TLS` defined in listener.security.protocol.map",
        ),
        (
            {"advertised.listeners": "PLAINTEXT://0.0.0.0:9092"},
            "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0.",
        ),
    ],
)
def test_kafka_validation_messages(props: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_listeners(BrokerConfig(props))
    assert message in str(err.value)


def test_ports_may_repeat_for_port_zero_ipv4_ipv6_and_in_advertised_listeners() -> None:
    parse_listeners(BrokerConfig({"listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0"}))
    parse_listeners(BrokerConfig({"listeners": "PLAINTEXT://127.0.0.1:9092,SSL://[::1]:9092"}))
    parse_listeners(
        BrokerConfig(
            {
                "listeners": "PLAINTEXT://:9092,SSL://:9093",
                "advertised.listeners": "PLAINTEXT://lb:443,SSL://lb:443",
            }
        )
    )


def test_protocol_map_errors_and_default() -> None:
    assert parse_protocol_map(None)["SASL_SSL"] == "SASL_SSL"
    with pytest.raises(ConfigError) as err:
        parse_protocol_map("PLAINTEXT")
    assert "Error parsing configuration property 'listener.security.protocol.map'" in str(err.value)


def test_per_listener_override_wins_and_is_parsed_like_the_key() -> None:
    config = BrokerConfig(
        {
            "ssl.client.auth": "none",
            "listener.name.internal.ssl.client.auth": "required",
            "listener.name.internal.ssl.enabled.protocols": "TLSv1.3",
        }
    )
    assert listener_value(config, "INTERNAL", "ssl.client.auth") == "required"
    assert listener_value(config, "INTERNAL", "ssl.enabled.protocols") == ["TLSv1.3"]
    assert listener_value(config, "EXTERNAL", "ssl.client.auth") == "none"
    assert listener_value(config, "EXTERNAL", "ssl.enabled.protocols") == ["TLSv1.2", "TLSv1.3"]
