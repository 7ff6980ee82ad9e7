"""Codecs of Kafka's ZooKeeper znodes and the watch-path mapping (no ZooKeeper)."""

from __future__ import annotations

import json
import uuid

from strom.cluster import zk_layout as L
from strom.cluster.metadata import BrokerInfo, Endpoint
from strom.cluster.zookeeper import key_for_path, split_connect


def test_broker_registration_round_trip_and_kafka_fields() -> None:
    broker = BrokerInfo(4, "node-4.example", 9093, rack="r2")
    doc = json.loads(L.encode_broker(broker, 1700000000123))
    assert doc["version"] == 5 and doc["timestamp"] == "1700000000123" and doc["rack"] == "r2"
    assert doc["endpoints"] == ["PLAINTEXT://node-4.example:9093"]
    plain = Endpoint("PLAINTEXT", "node-4.example", 9093, "PLAINTEXT")
    assert L.decode_broker(4, L.encode_broker(broker, 1)) == BrokerInfo(
        4, "node-4.example", 9093, "r2", (plain,)
    )
    kafka_written = (
        b'{"features":{},"listener_security_protocol_map":{"CLIENT":"PLAINTEXT"},'
        b'"endpoints":["CLIENT://10.0.0.5:19092"],"jmx_port":-1,"port":-1,"host":null,'
        b'"version":5,"timestamp":"1"}'
    )
    client = Endpoint("CLIENT", "10.0.0.5", 19092, "PLAINTEXT")
    assert L.decode_broker(9, kafka_written) == BrokerInfo(9, "10.0.0.5", 19092, None, (client,))


def test_broker_registration_with_several_listeners_as_kafka_writes_it() -> None:
    endpoints = (
        Endpoint("INTERNAL", "10.0.0.5", 9091, "PLAINTEXT"),
        Endpoint("SSL", "broker-5.example", 9093, "SSL"),
        Endpoint("V6", "::1", 9094, "SSL"),
    )
    broker = BrokerInfo(5, "10.0.0.5", 9091, None, endpoints)
    doc = json.loads(L.encode_broker(broker, 1))
    assert doc["endpoints"] == ["INTERNAL://10.0.0.5:9091", "SSL://broker-5.example:9093", "V6://[::1]:9094"]
    assert doc["listener_security_protocol_map"] == {"INTERNAL": "PLAINTEXT", "SSL": "SSL", "V6": "SSL"}
    assert (doc["host"], doc["port"]) == ("10.0.0.5", 9091)  # the PLAINTEXT-protocol endpoint
    decoded = L.decode_broker(5, L.encode_broker(broker, 1))
    assert decoded == broker and decoded.endpoint("SSL") == endpoints[1] and decoded.endpoint("X") is None
    only_tls = json.loads(L.encode_broker(BrokerInfo(6, "h", 1, None, endpoints[1:]), 1))
    assert (only_tls["host"], only_tls["port"]) == (None, -1)


def test_topic_state_config_round_trips() -> None:
    topic_id = uuid.UUID(int=12345678901234567890)
    assignment = L.TopicAssignment(topic_id, {0: (1, 2), 1: (2, 3)}, adding={1: (3,)})
    raw = L.encode_topic(assignment)
    doc = json.loads(raw)
    assert doc["partitions"] == {"0": [1, 2], "1": [2, 3]} and doc["adding_replicas"] == {"1": [3]}
    assert L.decode_topic(raw) == assignment
    assert L.decode_topic(b'{"version":1,"partitions":{"0":[5]}}') == L.TopicAssignment(None, {0: (5,)})
    state = L.LeaderAndIsr(2, 9, (2, 3), 4, zk_version=-1)
    assert L.decode_state(L.encode_state(state), 11) == L.LeaderAndIsr(2, 9, (2, 3), 4, 11)
    assert L.decode_config(L.encode_config({"a": "1"})) == {"a": "1"}
    assert L.decode_config(None) == {}
    assert L.decode_controller(L.encode_controller(3, 5)) == 3
    assert L.decode_controller_epoch(L.encode_controller_epoch(12)) == 12


def test_watch_paths_map_to_cache_keys() -> None:
    assert key_for_path("/brokers/topics/a.b/partitions/3/state") == ("state", "a.b", 3)
    assert key_for_path("/brokers/topics/x") == ("topic", "x")
    assert key_for_path("/config/brokers/<default>") == ("broker_config", "<default>")
    assert key_for_path("/controller") == ("controller",)
    assert key_for_path("/brokers/topics/x/partitions") is None


def test_split_connect() -> None:
    assert split_connect("h1:1,h2:2/kafka/prod") == ("h1:1,h2:2", "/kafka/prod")
    assert split_connect("h1:1/") == ("h1:1", "")
    assert split_connect("h1:1") == ("h1:1", "")
