"""Kafka's ZooKeeper layout: znode paths and the JSON each one holds, as Kafka 3.x's ZkData writes it.

All paths are relative to the chroot of `zookeeper.connect`. Encoders produce the bytes Kafka writes;
decoders accept what any Kafka version since 2.x wrote (unknown fields are ignored), so a Strom broker
and Kafka's ZooKeeper tooling read each other's znodes.

    /cluster/id                                  {"version":"1","id":"<base64 uuid>"}
    /controller                (ephemeral)       {"version":1,"brokerid":N,"timestamp":"<ms>"}
    /controller_epoch                            "<int>"
    /brokers/ids/<id>          (ephemeral)       broker registration, JSON version 5
    /brokers/topics/<t>                          {"version":3,"partitions":{"0":[1,2]},"topic_id":...,
                                                  "adding_replicas":{},"removing_replicas":{}}
    /brokers/topics/<t>/partitions/<p>/state     {"controller_epoch":E,"leader":L,"version":1,
                                                  "leader_epoch":N,"isr":[...]}
    /config/topics/<t>, /config/brokers/<id>     {"version":1,"config":{...}}
    /config/groups/<group>                       {"version":1,"config":{...}} a group's configs (GROUP
                                                  resources; the name sanitized as Kafka's Sanitizer does)
    /config/changes/config_change_<seq>          {"version":2,"entity_path":"topics/<t>"}
    /admin/delete_topics/<t>                     (empty) a deletion request the controller carries out
    /admin/reassign_partitions                   {"version":1,"partitions":[{"topic":t,"partition":p,
                                                  "replicas":[...]}]} a reassignment request (the pre-KIP-455
                                                  path); the controller starts it and deletes the znode
    /latest_producer_id_block                    {"version":1,"broker":N,"block_start":"<id>",
                                                  "block_end":"<id>"} the last block of producer ids
                                                  a broker claimed (both ends inclusive)

One node is Strom's own, outside Kafka's layout: /strom/controlled_shutdown/<id> (ephemeral, empty), a
broker's request that the controller move leadership and ISR membership away from it before it exits
(Kafka sends a ControlledShutdown request to the controller instead). Group configs came with KRaft-only
Kafka 4, so /config/groups is Strom's too, kept the way Kafka kept every other /config/<entity-type>: the
znode with a change notification {"version":2,"entity_path":"groups/<group>"} in the same transaction.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from strom.cluster.local import base64_to_uuid, uuid_to_base64
from strom.cluster.metadata import BrokerInfo, Endpoint

CLUSTER_ID = "/cluster/id"
CONTROLLER = "/controller"
CONTROLLER_EPOCH = "/controller_epoch"
BROKER_IDS = "/brokers/ids"
TOPICS = "/brokers/topics"
CONFIG_TOPICS = "/config/topics"
CONFIG_BROKERS = "/config/brokers"
CONFIG_GROUPS = "/config/groups"
CONFIG_CHANGES = "/config/changes"
CONFIG_CHANGE_PREFIX = "config_change_"
DELETE_TOPICS = "/admin/delete_topics"
REASSIGN_PARTITIONS = "/admin/reassign_partitions"
CONTROLLED_SHUTDOWN = "/strom/controlled_shutdown"
LATEST_PRODUCER_ID_BLOCK = "/latest_producer_id_block"
DEFAULT_BROKER_ENTITY = "<default>"

PERSISTENT_PATHS: tuple[str, ...] = (
    "/cluster",
    BROKER_IDS,
    TOPICS,
    CONFIG_TOPICS,
    CONFIG_BROKERS,
    CONFIG_GROUPS,
    CONFIG_CHANGES,
    DELETE_TOPICS,
    CONTROLLED_SHUTDOWN,
)
"""Parents Kafka creates at start-up (KafkaZkClient.createTopLevelPaths) plus Strom's own."""


def broker_path(node_id: int) -> str:
    return f"{BROKER_IDS}/{node_id}"


def topic_path(topic: str) -> str:
    return f"{TOPICS}/{topic}"


def partitions_path(topic: str) -> str:
    return f"{TOPICS}/{topic}/partitions"


def partition_path(topic: str, partition: int) -> str:
    return f"{TOPICS}/{topic}/partitions/{partition}"


def state_path(topic: str, partition: int) -> str:
    return f"{TOPICS}/{topic}/partitions/{partition}/state"


def topic_config_path(topic: str) -> str:
    return f"{CONFIG_TOPICS}/{topic}"


def broker_config_path(entity: int | str) -> str:
    return f"{CONFIG_BROKERS}/{entity}"


def sanitize(name: str) -> str:
    """Kafka's Sanitizer.sanitize of an entity name in a znode path (URL-encoded, `*` as %2A)."""
    return quote(name, safe="").replace("~", "%7E").replace("*", "%2A")


def desanitize(node: str) -> str:
    return unquote(node)


def group_config_path(group: str) -> str:
    return f"{CONFIG_GROUPS}/{sanitize(group)}"


def delete_topic_path(topic: str) -> str:
    return f"{DELETE_TOPICS}/{topic}"


def controlled_shutdown_path(node_id: int) -> str:
    return f"{CONTROLLED_SHUTDOWN}/{node_id}"


def _dumps(doc: Any) -> bytes:
    # Kafka's Jackson output is compact; keep ours compact too so tools that diff znodes see no noise
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def _loads(data: bytes | None) -> Any:
    if not data:
        return None
    return json.loads(data.decode("utf-8"))


# --- /cluster/id --------------------------------------------------------------------------------------
def encode_cluster_id(cluster_id: str) -> bytes:
    return _dumps({"version": "1", "id": cluster_id})


def decode_cluster_id(data: bytes) -> str:
    return str(_loads(data)["id"])


# --- /controller, /controller_epoch --------------------------------------------------------------------
def encode_controller(broker_id: int, timestamp_ms: int) -> bytes:
    return _dumps({"version": 1, "brokerid": broker_id, "timestamp": str(timestamp_ms)})


def decode_controller(data: bytes | None) -> int:
    doc = _loads(data)
    if isinstance(doc, dict):
        return int(doc["brokerid"])
    if isinstance(doc, int):  # Kafka 0.8 wrote the bare id
        return doc
    return -1


def encode_controller_epoch(epoch: int) -> bytes:
    return str(epoch).encode("ascii")


def decode_controller_epoch(data: bytes) -> int:
    return int(data.decode("ascii"))


# --- /brokers/ids/<id> -----------------------------------------------------------------------------------
def encode_broker(broker: BrokerInfo, timestamp_ms: int) -> bytes:
    """Kafka's registration v5: every advertised listener in `endpoints` (`NAME://host:port`) with its
    protocol in `listener_security_protocol_map`; `host`/`port` are those of the first PLAINTEXT-protocol
    endpoint, null and -1 when there is none (Kafka's BrokerInfo.toJsonBytes)."""
    endpoints = broker.endpoints or (Endpoint("PLAINTEXT", broker.host, broker.port),)
    plain = next((e for e in endpoints if e.security_protocol == "PLAINTEXT"), None)
    doc: dict[str, Any] = {
        "listener_security_protocol_map": {e.listener: e.security_protocol for e in endpoints},
        "endpoints": [f"{e.listener}://{_bracket(e.host)}:{e.port}" for e in endpoints],
        "jmx_port": -1,
        "features": {},
        "host": plain.host if plain is not None else None,
        "timestamp": str(timestamp_ms),
        "port": plain.port if plain is not None else -1,
        "version": 5,
    }
    if broker.rack is not None:  # Kafka leaves the key out when no rack is configured
        doc["rack"] = broker.rack
    return _dumps(doc)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def decode_broker(node_id: int, data: bytes) -> BrokerInfo:
    """Every endpoint, with its protocol from the map (registrations older than v2 have none: the
    listener's name is its protocol); host/port are the first endpoint's."""
    doc = _loads(data)
    protocols = doc.get("listener_security_protocol_map") or {}
    endpoints = []
    for raw in doc.get("endpoints") or []:
        name, _, address = str(raw).partition("://")
        ep_host, _, ep_port = address.rpartition(":")
        endpoints.append(Endpoint(name, ep_host.strip("[]"), int(ep_port), protocols.get(name, name)))
    if endpoints:
        host, port = endpoints[0].host, endpoints[0].port
    else:
        host, port = str(doc.get("host") or ""), int(doc.get("port", -1))
    return BrokerInfo(node_id, host, port, doc.get("rack"), tuple(endpoints))


# --- /brokers/topics/<t> -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TopicAssignment:
    """The topic znode: topic id (KIP-516) and each partition's replicas, plus reassignment bookkeeping."""

    topic_id: uuid.UUID | None
    partitions: dict[int, tuple[int, ...]]
    adding: dict[int, tuple[int, ...]] = field(default_factory=dict)
    removing: dict[int, tuple[int, ...]] = field(default_factory=dict)


def encode_topic(assignment: TopicAssignment) -> bytes:
    def as_json(layout: dict[int, tuple[int, ...]]) -> dict[str, list[int]]:
        return {str(p): list(r) for p, r in sorted(layout.items())}

    doc: dict[str, Any] = {
        "version": 3,
        "partitions": as_json(assignment.partitions),
        "adding_replicas": as_json(assignment.adding),
        "removing_replicas": as_json(assignment.removing),
    }
    if assignment.topic_id is not None:
        doc["topic_id"] = uuid_to_base64(assignment.topic_id)
    return _dumps(doc)


def decode_topic(data: bytes | None) -> TopicAssignment:
    doc = _loads(data) or {}

    def layout(key: str) -> dict[int, tuple[int, ...]]:
        raw = doc.get(key) or {}
        return {int(p): tuple(int(b) for b in r) for p, r in raw.items()}

    raw_id = doc.get("topic_id")
    return TopicAssignment(
        topic_id=base64_to_uuid(raw_id) if raw_id else None,
        partitions=dict(sorted(layout("partitions").items())),
        adding=layout("adding_replicas"),
        removing=layout("removing_replicas"),
    )


# --- /brokers/topics/<t>/partitions/<p>/state -----------------------------------------------------
@dataclass(frozen=True, slots=True)
class LeaderAndIsr:
    """A partition state znode; `zk_version` is the znode version (Kafka's partition epoch)."""

    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    controller_epoch: int
    zk_version: int = -1


def encode_state(state: LeaderAndIsr) -> bytes:
    return _dumps(
        {
            "controller_epoch": state.controller_epoch,
            "leader": state.leader,
            "version": 1,
            "leader_epoch": state.leader_epoch,
            "isr": list(state.isr),
        }
    )


def decode_state(data: bytes, zk_version: int) -> LeaderAndIsr:
    doc = _loads(data)
    return LeaderAndIsr(
        leader=int(doc["leader"]),
        leader_epoch=int(doc["leader_epoch"]),
        isr=tuple(int(b) for b in doc["isr"]),
        controller_epoch=int(doc["controller_epoch"]),
        zk_version=zk_version,
    )


# --- /admin/reassign_partitions ---------------------------------------------------------------------------
def encode_reassignment(partitions: dict[tuple[str, int], tuple[int, ...]]) -> bytes:
    return _dumps(
        {
            "version": 1,
            "partitions": [
                {"topic": t, "partition": p, "replicas": list(r)} for (t, p), r in sorted(partitions.items())
            ],
        }
    )


def decode_reassignment(data: bytes | None) -> dict[tuple[str, int], tuple[int, ...]]:
    """The requested targets; entries that are not well formed are left out."""
    try:
        doc = _loads(data)
    except ValueError:
        return {}
    out: dict[tuple[str, int], tuple[int, ...]] = {}
    if not isinstance(doc, dict):
        return out
    for entry in doc.get("partitions") or []:
        try:
            out[(str(entry["topic"]), int(entry["partition"]))] = tuple(int(b) for b in entry["replicas"])
        except (KeyError, TypeError, ValueError):
            continue
    return out


# --- /config/... ------------------------------------------------------------------------------------------
def encode_config(configs: dict[str, str]) -> bytes:
    return _dumps({"version": 1, "config": dict(sorted(configs.items()))})


def decode_config(data: bytes | None) -> dict[str, str]:
    doc = _loads(data)
    if not isinstance(doc, dict):
        return {}
    return {str(k): str(v) for k, v in (doc.get("config") or {}).items()}


def encode_config_change(entity_path: str) -> bytes:
    """A change notification; `entity_path` is e.g. "topics/<t>" or "brokers/<id>"."""
    return _dumps({"version": 2, "entity_path": entity_path})


# --- /latest_producer_id_block ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProducerIdBlock:
    """Producer ids `start`..`end` (both inclusive) claimed by `broker` (Kafka's ProducerIdBlockZNode)."""

    broker: int
    start: int
    end: int


def encode_producer_id_block(block: ProducerIdBlock) -> bytes:
    return _dumps(
        {"version": 1, "broker": block.broker, "block_start": str(block.start), "block_end": str(block.end)}
    )


def decode_producer_id_block(data: bytes | None) -> ProducerIdBlock | None:
    """The block in the znode, or None when it is empty (Kafka reads an empty znode as "no block yet")."""
    doc = _loads(data)
    if not isinstance(doc, dict):
        return None
    return ProducerIdBlock(int(doc["broker"]), int(doc["block_start"]), int(doc["block_end"]))
