"""Hand-written Metadata response encoder, byte for byte against kio's writer for every served version."""

from __future__ import annotations

import datetime
import io
import uuid
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.serial import entity_writer
from kio.static.primitive import i32Timedelta

from strom.apis._build import build, entry_type
from strom.apis.metadata import (
    NO_AUTHORIZED_OPERATIONS,
    SPEC,
    MetadataBroker,
    MetadataPartition,
    MetadataTopic,
    encode_response,
)
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import response_type

VERSIONS = range(SPEC.min_version, SPEC.max_version + 1)


def _kio_bytes(
    version: int,
    brokers: Sequence[MetadataBroker],
    cluster_id: str | None,
    controller_id: int,
    topics: Sequence[MetadataTopic],
    throttle_ms: int,
    cluster_ops: int,
) -> bytes:
    cls = response_type(3, version)
    assert cls is not None
    topic_cls = entry_type(cls, "topics")
    part_cls = entry_type(topic_cls, "partitions")
    broker_cls = entry_type(cls, "brokers")
    obj = build(
        cls,
        throttle_time=i32Timedelta.parse(datetime.timedelta(milliseconds=throttle_ms)),
        brokers=tuple(
            build(broker_cls, node_id=b.node_id, host=b.host, port=b.port, rack=b.rack) for b in brokers
        ),
        cluster_id=cluster_id,
        controller_id=controller_id,
        topics=tuple(
            build(
                topic_cls,
                error_code=ErrorCode(t.error_code),
                name=t.name,
                topic_id=t.topic_id,
                is_internal=t.is_internal,
                partitions=tuple(
                    build(
                        part_cls,
                        error_code=ErrorCode(p.error_code),
                        partition_index=p.partition_index,
                        leader_id=p.leader_id,
                        leader_epoch=p.leader_epoch,
                        replica_nodes=p.replica_nodes,
                        isr_nodes=p.isr_nodes,
                        offline_replicas=p.offline_replicas,
                    )
                    for p in t.partitions
                ),
                topic_authorized_operations=t.topic_authorized_operations,
            )
            for t in topics
        ),
        cluster_authorized_operations=cluster_ops,
        error_code=ErrorCode.none,
    )
    buf = io.BytesIO()
    entity_writer(cls)(buf, obj)
    return buf.getvalue()


def _check(
    version: int,
    brokers: Sequence[MetadataBroker],
    cluster_id: str | None,
    controller_id: int,
    topics: Sequence[MetadataTopic],
    throttle_ms: int = 0,
    cluster_ops: int = NO_AUTHORIZED_OPERATIONS,
) -> bytes:
    ours = encode_response(version, brokers, cluster_id, controller_id, topics, throttle_ms, cluster_ops)
    assert ours == _kio_bytes(version, brokers, cluster_id, controller_id, topics, throttle_ms, cluster_ops)
    return ours


def test_serves_versions_0_to_13() -> None:
    # the encoder covers exactly what the handler advertises; widen both together
    assert (SPEC.min_version, SPEC.max_version) == (0, 13)


@pytest.mark.parametrize("version", VERSIONS)
def test_typical_cluster_matches_kio(version: int) -> None:
    brokers = [
        MetadataBroker(1, "broker-1.example", 9092, "rack-a"),
        MetadataBroker(2, "127.0.0.1", 19092, None),
        MetadataBroker(3, "ünïcode-host", 29092, ""),
    ]
    topics = [
        MetadataTopic(
            ErrorCode.none,
            "orders",
            uuid.UUID("6d1f3a8e-2b7c-4f6e-9a0b-1c2d3e4f5a6b"),
            False,
            (
                MetadataPartition(ErrorCode.none, 0, 1, 5, (1, 2, 3), (1, 2), (3,)),
                MetadataPartition(ErrorCode.leader_not_available, 1, -1, 0, (2, 3, 1), (), (2, 3)),
                MetadataPartition(ErrorCode.none, 2, 3, 0, (), (), ()),
            ),
            NO_AUTHORIZED_OPERATIONS,
        ),
        MetadataTopic(ErrorCode.none, "__consumer_offsets", uuid.uuid4(), True, (), 0x7FF),
        MetadataTopic(ErrorCode.unknown_topic_or_partition, "missing", None, False, ()),
        MetadataTopic(ErrorCode.invalid_topic_exception, "", uuid.UUID(int=0), False, ()),
    ]
    body = _check(version, brokers, "strom-cluster-ÿ", 2, topics, throttle_ms=250, cluster_ops=12)
    assert b"orders" in body


@pytest.mark.parametrize("version", VERSIONS)
def test_nulls_and_empties_match_kio(version: int) -> None:
    # cluster_id None, rack None, no brokers, no topics, controller -1
    _check(version, [], None, -1, [])
    _check(version, [MetadataBroker(0, "", 0, None)], None, -1, [])


@pytest.mark.parametrize("version", VERSIONS)
def test_authorized_operations_and_topic_id(version: int) -> None:
    topics = [
        MetadataTopic(ErrorCode.none, "t", uuid.UUID(int=(1 << 128) - 1), False, (), -2147483648),
        MetadataTopic(ErrorCode.none, "u", None, True, (), 2147483647),
    ]
    _check(version, [MetadataBroker(1, "h", 1)], "c", 1, topics, cluster_ops=-2147483648)


def test_topic_without_name_is_null_from_v12() -> None:
    topic_id = uuid.uuid4()
    topics = [MetadataTopic(ErrorCode.unknown_topic_id, None, topic_id, False, ())]
    body = _check(12, [], "c", 1, topics)
    # topics array of one entry (compact length 2), error code 100, null compact string, then the id
    assert b"\x02\x00\x64\x00" + topic_id.bytes in body


@pytest.mark.parametrize("version", range(0, 12))
def test_topic_without_name_is_empty_string_below_v12(version: int) -> None:
    # the name is not nullable before v12; kio refuses None, so compare with an explicit empty name
    ours = encode_response(
        version, [], "c", 1, [MetadataTopic(ErrorCode.unknown_topic_id, None, None, False, ())]
    )
    empty = [MetadataTopic(ErrorCode.unknown_topic_id, "", None, False, ())]
    assert ours == _kio_bytes(version, [], "c", 1, empty, 0, NO_AUTHORIZED_OPERATIONS)


@pytest.mark.parametrize("version", VERSIONS)
def test_long_arrays_match_kio(version: int) -> None:
    # more than 127 entries: compact array lengths take two varint bytes
    replicas = tuple(range(200))
    parts = tuple(MetadataPartition(0, i, i, i, replicas, replicas[:130], replicas[:1]) for i in range(130))
    topics = [MetadataTopic(0, f"t{i}", None, False, parts if i == 0 else ()) for i in range(130)]
    brokers = [MetadataBroker(i, "h" * 300, i, "r" * 128) for i in range(128)]
    _check(version, brokers, "c" * 200, 0, topics)


def test_versions_differ_where_the_schema_does() -> None:
    # a guard that the per-version branches are live: every step that adds a field changes the bytes
    brokers = [MetadataBroker(1, "h", 9092, "r")]
    topics = [
        MetadataTopic(ErrorCode.none, "t", uuid.uuid4(), False, (MetadataPartition(0, 0, 1, 3, (1,), (1,)),))
    ]
    sizes = [len(encode_response(v, brokers, "c", 1, topics)) for v in VERSIONS]
    for v in (1, 2, 3, 5, 7, 8, 9, 10, 11):
        assert sizes[v] != sizes[v - 1], v


int32s = st.integers(-(2**31), 2**31 - 1)
node_ids = st.integers(-1, 2**31 - 1)
names = st.text(max_size=40)
error_codes = st.sampled_from(
    [
        ErrorCode.none,
        ErrorCode.unknown_topic_or_partition,
        ErrorCode.leader_not_available,
        ErrorCode.invalid_topic_exception,
        ErrorCode.unknown_topic_id,
        ErrorCode.topic_authorization_failed,
    ]
)
replica_lists = st.lists(node_ids, max_size=6).map(tuple)

partitions = st.builds(
    MetadataPartition,
    error_code=error_codes,
    partition_index=st.integers(0, 2**31 - 1),
    leader_id=node_ids,
    leader_epoch=int32s,
    replica_nodes=replica_lists,
    isr_nodes=replica_lists,
    offline_replicas=replica_lists,
)
brokers_st = st.builds(
    MetadataBroker,
    node_id=node_ids,
    host=names,
    port=st.integers(0, 65535),
    rack=st.none() | names,
)


def topics_for(version: int) -> st.SearchStrategy[MetadataTopic]:
    return st.builds(
        MetadataTopic,
        error_code=error_codes,
        name=(st.none() | names) if version >= 12 else names,
        topic_id=st.none() | st.uuids(),
        is_internal=st.booleans(),
        partitions=st.lists(partitions, max_size=4).map(tuple),
        topic_authorized_operations=int32s,
    )


@st.composite
def responses(draw: st.DrawFn) -> tuple[int, list, str | None, int, list, int, int]:
    version = draw(st.sampled_from(list(VERSIONS)))
    return (
        version,
        draw(st.lists(brokers_st, max_size=4)),
        draw(st.none() | names),
        draw(node_ids),
        draw(st.lists(topics_for(version), max_size=5)),
        draw(st.integers(0, 2**31 - 1)),
        draw(int32s),
    )


@settings(max_examples=120, deadline=None)
@given(responses())
def test_generated_responses_match_kio(resp: tuple[int, list, str | None, int, list, int, int]) -> None:
    version, brokers, cluster_id, controller_id, topics, throttle_ms, cluster_ops = resp
    _check(version, brokers, cluster_id, controller_id, topics, throttle_ms, cluster_ops)
