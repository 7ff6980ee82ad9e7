"""Transaction version 2 (KIP-890 part 2) and the transaction API versions of Kafka 4.4, on the wire and
through Kafka 4.4's Java client. The same tests run against Apache Kafka 4.4 (`--kafka-reference`), which
is what the expectations are taken from.

- ApiVersions v3+ finalizes `transaction.version` 2, so Kafka 4.4's clients use transaction version 2.
- InitProducerId v5, Produce v12 (a transactional batch adds its partition to the transaction: no
  AddPartitionsToTxn), EndTxn v5 (every end bumps the epoch, the answer names the producer id and epoch to
  continue with; a retry with the old epoch answers NONE; an abort of a finished transaction is written,
  a commit is INVALID_TXN_STATE), and a read_committed reader sees the committed transaction only.
- Produce v11 and v10 from a transaction version 1 client that never added the partition: the partition
  leader verifies with the coordinator (KIP-890 part 1) and answers TRANSACTION_ABORTABLE (v11) or
  INVALID_TXN_STATE (v10).
- AddPartitionsToTxn v5 as partition leaders send it: batched, verify_only (TRANSACTION_ABORTABLE for a
  partition outside the transaction) or adding.
- AddOffsetsToTxn v4, TxnOffsetCommit v4 (verified: the group's partition was added), v5 (adds the
  partition itself) and v6 (topics by id, UNKNOWN_TOPIC_ID for an unknown one).
- WriteTxnMarkers v2 at transaction version 2: a marker at the batches' own epoch is refused
  (INVALID_PRODUCER_EPOCH), the bumped one is written.
- Kafka's TransactionalMessageCopier (Java client 4.4: a consume-transform-produce loop with
  sendOffsetsToTransaction) copies every record exactly once.
"""

from __future__ import annotations

import asyncio
import datetime
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from compat_support import TopicMaker
from confluent_kafka import Consumer, Producer, TopicPartition
from kio.schema.add_offsets_to_txn.v4.request import AddOffsetsToTxnRequest
from kio.schema.add_partitions_to_txn.v5 import request as apt
from kio.schema.api_versions.v4.request import ApiVersionsRequest
from kio.schema.end_txn.v5.request import EndTxnRequest
from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
from kio.schema.init_producer_id.v5.request import InitProducerIdRequest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v10 import request as produce_v10
from kio.schema.produce.v11 import request as produce_v11
from kio.schema.produce.v12 import request as produce_v12
from kio.schema.txn_offset_commit.v4 import request as toc4
from kio.schema.txn_offset_commit.v5 import request as toc5
from kio.schema.write_txn_markers.v2 import request as wtm
from kio.static.primitive import i8, i16, i32, i32Timedelta, i64

from benchmarks.peers import tools
from strom.apis.txn_offset_commit import decode as decode_txn_offset_commit
from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode
from strom.protocol.records import Record, build_batch

pytestmark = pytest.mark.compat

_RETRIABLE = {
    ErrorCode.not_coordinator,
    ErrorCode.coordinator_not_available,
    ErrorCode.coordinator_load_in_progress,
    ErrorCode.concurrent_transactions,
}


class Wire:
    """One connection to the broker under test (a single node: it leads every partition and coordinates
    every transactional id and group)."""

    def __init__(self, broker: str) -> None:
        self.host, port = broker.rsplit(":", 1)
        self.port = int(port)

    def __call__(self, request: Any, version_error: Callable[[Any], int] | None = None) -> Any:
        async def go() -> Any:
            conn = await BrokerConnection.open(self.host, self.port)
            try:
                return await conn.request(request)
            finally:
                await conn.close()

        deadline = time.monotonic() + 30
        while True:
            response = asyncio.run(go())
            if version_error is None or version_error(response) not in _RETRIABLE:
                return response
            if time.monotonic() > deadline:
                return response
            time.sleep(0.2)


def _timeout(ms: int) -> i32Timedelta:
    return i32Timedelta.parse(datetime.timedelta(milliseconds=ms))


def _init(wire: Wire, tid: str) -> tuple[int, int]:
    found = wire(
        FindCoordinatorRequest(key_type=i8(1), coordinator_keys=(tid,)),
        lambda r: r.coordinators[0].error_code,
    )
    assert found.coordinators[0].error_code == ErrorCode.none
    response = wire(
        InitProducerIdRequest(
            transactional_id=tid,  # type: ignore[arg-type]
            transaction_timeout=_timeout(60000),
            producer_id=i64(-1),  # type: ignore[arg-type]
            producer_epoch=i16(-1),
        ),
        lambda r: r.error_code,
    )
    assert response.error_code == ErrorCode.none
    return int(response.producer_id), int(response.producer_epoch)


def _produce(
    wire: Wire, module: Any, tid: str, topic: str, pid: int, epoch: int, seq: int, value: bytes
) -> Any:
    batch = build_batch(
        [Record(0, 0, None, value)],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        transactional=True,
    )
    response = wire(
        module.ProduceRequest(
            transactional_id=tid,  # type: ignore[arg-type]
            acks=i16(-1),
            timeout=_timeout(10000),
            topic_data=(
                module.TopicProduceData(
                    name=topic,  # type: ignore[arg-type]
                    partition_data=(module.PartitionProduceData(index=i32(0), records=batch),),
                ),
            ),
        )
    )
    return response.responses[0].partition_responses[0]


def _end(wire: Wire, tid: str, pid: int, epoch: int, commit: bool) -> Any:
    return wire(
        EndTxnRequest(
            transactional_id=tid,  # type: ignore[arg-type]
            producer_id=i64(pid),  # type: ignore[arg-type]
            producer_epoch=i16(epoch),
            committed=commit,
        ),
        # CONCURRENT_TRANSACTIONS while the previous end's markers are still going out: retried
        lambda r: r.error_code,
    )


def _read_committed(broker: str, topic: str, expected: int, timeout: float = 15.0) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"check-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        got: list[bytes] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(got) < expected:
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                got.append(message.value())
        # a little longer: nothing beyond the expected records may show up
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                got.append(message.value())
        return got
    finally:
        consumer.close()


def test_transaction_version_2_is_finalized(broker: str) -> None:
    request = ApiVersionsRequest(client_software_name="strom-test", client_software_version="1")
    response = Wire(broker)(request)
    supported = {f.name: (int(f.min_version), int(f.max_version)) for f in response.supported_features}
    finalized = {f.name: int(f.max_version_level) for f in response.finalized_features}
    assert supported["transaction.version"] == (0, 2)
    assert finalized["transaction.version"] == 2


def test_produce_v12_adds_the_partition_and_end_txn_v5_bumps_the_epoch(broker: str, topic: str) -> None:
    wire, tid = Wire(broker), f"tv2-{uuid.uuid4().hex[:8]}"
    pid, epoch = _init(wire, tid)
    # no AddPartitionsToTxn: the partition leader adds the partition for a Produce v12
    part = _produce(wire, produce_v12, tid, topic, pid, epoch, 0, b"committed")
    assert part.error_code == ErrorCode.none
    end = _end(wire, tid, pid, epoch, True)
    assert (end.error_code, int(end.producer_id), int(end.producer_epoch)) == (ErrorCode.none, pid, epoch + 1)
    # a retry of the end with the epoch before the bump: NONE and the current id and epoch
    retry = _end(wire, tid, pid, epoch, True)
    assert (retry.error_code, int(retry.producer_id), int(retry.producer_epoch)) == (
        ErrorCode.none,
        pid,
        epoch + 1,
    )
    # the old epoch is fenced on the partition: the commit marker carried the new one
    stale = _produce(wire, produce_v12, tid, topic, pid, epoch, 1, b"stale")
    assert stale.error_code in (ErrorCode.invalid_producer_epoch, ErrorCode.producer_fenced)
    # the next transaction runs at the new epoch, its sequences from 0; it is aborted
    epoch += 1
    assert _produce(wire, produce_v12, tid, topic, pid, epoch, 0, b"aborted").error_code == ErrorCode.none
    end = _end(wire, tid, pid, epoch, False)
    assert (end.error_code, int(end.producer_epoch)) == (ErrorCode.none, epoch + 1)
    epoch += 1
    # a commit of a finished transaction at the current epoch is refused; an abort is written
    assert _end(wire, tid, pid, epoch, True).error_code == ErrorCode.invalid_txn_state
    empty_abort = _end(wire, tid, pid, epoch, False)
    assert (empty_abort.error_code, int(empty_abort.producer_epoch)) == (ErrorCode.none, epoch + 1)
    assert _end(wire, tid, pid, epoch + 5, False).error_code == ErrorCode.producer_fenced
    assert _read_committed(broker, topic, 1) == [b"committed"]


@pytest.mark.parametrize(
    ("module", "expected"),
    [(produce_v11, ErrorCode.transaction_abortable), (produce_v10, ErrorCode.invalid_txn_state)],
    ids=["v11", "v10"],
)
def test_produce_below_v12_verifies_the_partition(
    broker: str, topic: str, module: Any, expected: int
) -> None:
    wire, tid = Wire(broker), f"tv1-{uuid.uuid4().hex[:8]}"
    pid, epoch = _init(wire, tid)
    part = _produce(wire, module, tid, topic, pid, epoch, 0, b"never added")
    assert part.error_code == expected
    assert _read_committed(broker, topic, 0, timeout=0.5) == []


def test_add_partitions_v5_batched_verify_and_add(broker: str, make_topic: TopicMaker) -> None:
    wire, tid = Wire(broker), f"apt-{uuid.uuid4().hex[:8]}"
    topic = make_topic(partitions=2)
    pid, epoch = _init(wire, tid)

    def request(verify_only: bool, partitions: tuple[int, ...], producer_id: int = pid) -> dict[int, int]:
        response = wire(
            apt.AddPartitionsToTxnRequest(
                transactions=(
                    apt.AddPartitionsToTxnTransaction(
                        transactional_id=tid,  # type: ignore[arg-type]
                        producer_id=i64(producer_id),  # type: ignore[arg-type]
                        producer_epoch=i16(epoch),
                        verify_only=verify_only,
                        topics=(
                            apt.AddPartitionsToTxnTopic(
                                name=topic,  # type: ignore[arg-type]
                                partitions=tuple(i32(p) for p in partitions),
                            ),
                        ),
                    ),
                )
            )
        )
        assert response.error_code == ErrorCode.none
        (result,) = response.results_by_transaction
        assert result.transactional_id == tid
        return {
            int(p.partition_index): int(p.partition_error_code)
            for t in result.topic_results
            for p in t.results_by_partition
        }

    assert request(False, (0,)) == {0: ErrorCode.none}
    assert request(True, (0, 1)) == {0: ErrorCode.none, 1: ErrorCode.transaction_abortable}
    assert request(True, (0,), producer_id=pid + 1000) == {0: ErrorCode.invalid_producer_id_mapping}
    assert _end(wire, tid, pid, epoch, False).error_code == ErrorCode.none


def test_txn_offset_commit_v4_to_v6(broker: str, topic: str) -> None:
    wire = Wire(broker)
    group = f"txn-group-{uuid.uuid4().hex[:8]}"
    tid = f"toc-{uuid.uuid4().hex[:8]}"
    wire(
        FindCoordinatorRequest(key_type=i8(0), coordinator_keys=(group,)),
        lambda r: r.coordinators[0].error_code,
    )
    pid, epoch = _init(wire, tid)

    def commit_v4() -> int:
        response = wire(
            toc4.TxnOffsetCommitRequest(
                transactional_id=tid,  # type: ignore[arg-type]
                group_id=group,  # type: ignore[arg-type]
                producer_id=i64(pid),  # type: ignore[arg-type]
                producer_epoch=i16(epoch),
                generation_id=i32(-1),
                member_id="",
                group_instance_id=None,
                topics=(
                    toc4.TxnOffsetCommitRequestTopic(
                        name=topic,  # type: ignore[arg-type]
                        partitions=(
                            toc4.TxnOffsetCommitRequestPartition(
                                partition_index=i32(0),
                                committed_offset=i64(5),
                                committed_leader_epoch=i32(-1),
                                committed_metadata="",
                            ),
                        ),
                    ),
                ),
            )
        )
        return int(response.topics[0].partitions[0].error_code)

    # v4 only verifies: the group's partition was never added
    assert commit_v4() == ErrorCode.transaction_abortable
    added = wire(
        AddOffsetsToTxnRequest(
            transactional_id=tid,  # type: ignore[arg-type]
            producer_id=i64(pid),  # type: ignore[arg-type]
            producer_epoch=i16(epoch),
            group_id=group,  # type: ignore[arg-type]
        ),
        lambda r: r.error_code,
    )
    assert added.error_code == ErrorCode.none
    assert commit_v4() == ErrorCode.none
    end = _end(wire, tid, pid, epoch, True)
    assert end.error_code == ErrorCode.none
    epoch = int(end.producer_epoch)

    # v5: no AddOffsetsToTxn, the offsets partition joins the transaction
    response = wire(
        toc5.TxnOffsetCommitRequest(
            transactional_id=tid,  # type: ignore[arg-type]
            group_id=group,  # type: ignore[arg-type]
            producer_id=i64(pid),  # type: ignore[arg-type]
            producer_epoch=i16(epoch),
            generation_id=i32(-1),
            member_id="",
            group_instance_id=None,
            topics=(
                toc5.TxnOffsetCommitRequestTopic(
                    name=topic,  # type: ignore[arg-type]
                    partitions=(
                        toc5.TxnOffsetCommitRequestPartition(
                            partition_index=i32(0),
                            committed_offset=i64(9),
                            committed_leader_epoch=i32(-1),
                            committed_metadata="",
                        ),
                    ),
                ),
            ),
        ),
        lambda r: r.topics[0].partitions[0].error_code,
    )
    assert response.topics[0].partitions[0].error_code == ErrorCode.none

    # v6 names topics by id; kio has no v6 schema, so the request goes out as raw bytes
    metadata = wire(
        MetadataRequest(
            topics=(MetadataRequestTopic(topic_id=None, name=topic),),  # type: ignore[arg-type]
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        )
    )
    topic_id = metadata.topics[0].topic_id
    unknown_id = uuid.uuid4()
    body = _txn_offset_commit_v6(tid, group, pid, epoch, [(topic_id, 0, 11), (unknown_id, 0, 1)])
    assert decode_txn_offset_commit(6, memoryview(body)).topics[0].topic_id == topic_id
    # the unknown id comes first, as Kafka lists refused topics before committed ones
    assert _raw_txn_offset_commit_v6(broker, body) == [
        (unknown_id, [(0, int(ErrorCode.unknown_topic_id))]),
        (topic_id, [(0, int(ErrorCode.none))]),
    ]
    assert _end(wire, tid, pid, epoch, True).error_code == ErrorCode.none
    committed = _committed(broker, group, topic)
    assert committed == 11


def _committed(broker: str, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": broker, "group.id": group, "isolation.level": "read_committed"})
    try:
        deadline = time.monotonic() + 15
        while True:
            (tp,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
            if tp.offset == 11 or time.monotonic() > deadline:
                return int(tp.offset)
            time.sleep(0.2)
    finally:
        consumer.close()


def _txn_offset_commit_v6(
    tid: str, group: str, pid: int, epoch: int, offsets: list[tuple[uuid.UUID, int, int]]
) -> bytes:
    from strom.protocol.wire import EMPTY_TAGS, I16, I32, I64, array_len, nullable_string, string

    out = bytearray(string(tid, True) + string(group, True) + I64.pack(pid) + I16.pack(epoch))
    out += I32.pack(-1) + string("", True) + nullable_string(None, True)
    out += array_len(len(offsets), True)
    for topic_id, partition, offset in offsets:
        out += topic_id.bytes + array_len(1, True)
        out += I32.pack(partition) + I64.pack(offset) + I32.pack(-1) + nullable_string("", True) + EMPTY_TAGS
        out += EMPTY_TAGS
    out += EMPTY_TAGS
    return bytes(out)


def _raw_txn_offset_commit_v6(broker: str, body: bytes) -> list[tuple[uuid.UUID, list[tuple[int, int]]]]:
    """Send TxnOffsetCommit v6 (request header v2) and read its response by hand."""
    import socket
    import struct

    from strom.protocol.wire import read_uvarint

    host, port = broker.rsplit(":", 1)
    header = struct.pack(">hhi", 28, 6, 7) + struct.pack(">h", 4) + b"test" + b"\x00"
    frame = header + body
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", _recv(sock, 4))[0]
        data = _recv(sock, size)
    assert struct.unpack(">i", data[:4])[0] == 7
    pos = 4 + 1 + 4  # correlation id, header tags, throttle time
    count, pos = read_uvarint(data, pos)
    out = []
    for _ in range(count - 1):
        topic_id = uuid.UUID(bytes=data[pos : pos + 16])
        pos += 16
        n, pos = read_uvarint(data, pos)
        parts = []
        for _ in range(n - 1):
            index, error = struct.unpack_from(">ih", data, pos)
            pos += 6 + 1
            parts.append((index, error))
        pos += 1
        out.append((topic_id, parts))
    return out


def _recv(sock: Any, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, "connection closed"
        buf += chunk
    return buf


def test_write_txn_markers_v2_needs_the_bumped_epoch(broker: str, topic: str) -> None:
    wire, tid = Wire(broker), f"wtm-{uuid.uuid4().hex[:8]}"
    pid, epoch = _init(wire, tid)
    assert _produce(wire, produce_v12, tid, topic, pid, epoch, 0, b"x").error_code == ErrorCode.none

    def marker(marker_epoch: int) -> int:
        response = wire(
            wtm.WriteTxnMarkersRequest(
                markers=(
                    wtm.WritableTxnMarker(
                        producer_id=i64(pid),  # type: ignore[arg-type]
                        producer_epoch=i16(marker_epoch),
                        transaction_result=False,
                        topics=(
                            wtm.WritableTxnMarkerTopic(
                                name=topic,  # type: ignore[arg-type]
                                partition_indexes=(i32(0),),
                            ),
                        ),
                        coordinator_epoch=i32(0),
                        transaction_version=i8(2),
                    ),
                )
            )
        )
        return int(response.markers[0].topics[0].partitions[0].error_code)

    assert marker(epoch) == ErrorCode.invalid_producer_epoch
    # the coordinator's own abort (the transaction stays open there) bumps past this epoch
    end = _end(wire, tid, pid, epoch, False)
    assert end.error_code == ErrorCode.none
    assert _read_committed(broker, topic, 0, timeout=0.5) == []


def test_java_transactional_copier_copies_exactly_once(
    fetched_tools: None, broker: str, make_topic: TopicMaker
) -> None:
    """Kafka's TransactionalMessageCopier: Java client 4.4 with transaction version 2 (InitProducerId v5,
    Produce v12, TxnOffsetCommit v5, EndTxn v5, OffsetFetch/OffsetCommit of its group)."""
    source, sink = make_topic(partitions=1), make_topic(partitions=1)
    producer = Producer({"bootstrap.servers": broker})
    for i in range(30):
        producer.produce(source, value=f"m{i}".encode())
    assert producer.flush(15) == 0
    cmd = tools.java_command(
        "org.apache.kafka.tools.TransactionalMessageCopier",
        "--broker-list", broker,
        "--input-topic", source,
        "--input-partition", "0",
        "--output-topic", sink,
        "--transactional-id", f"copier-{uuid.uuid4().hex[:8]}",
        "--consumer-group", f"copier-{uuid.uuid4().hex[:8]}",
        "--transaction-size", "10",
        "--max-messages", "30",
        "--use-group-metadata",
    )  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '"remaining":0' in proc.stdout
    assert sorted(_read_committed(broker, sink, 30)) == sorted(f"m{i}".encode() for i in range(30))
