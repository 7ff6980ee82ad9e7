"""DescribeProducers v0 over the wire: idempotent producers of a partition, unknown partitions."""

from __future__ import annotations

from kio.schema.describe_producers.v0.request import DescribeProducersRequest, TopicRequest
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
from kio.schema.metadata.v1.request import MetadataRequest, MetadataRequestTopic
from kio.static.primitive import i32
from wire_helpers import connect, ms, produce_request

from strom.protocol.errors import ErrorCode
from strom.protocol.records import Record, build_batch
from strom.testing.embedded import EmbeddedBroker


async def test_describe_producers_lists_idempotent_producers(broker: EmbeddedBroker) -> None:
    conn = await connect(broker)
    try:
        await conn.request(MetadataRequest(topics=(MetadataRequestTopic(name="dp"),)))
        pids = []
        for n in (3, 5):
            init = await conn.request(InitProducerIdRequest(transactional_id=None,
                                                            transaction_timeout=ms(60000)))
            pid, epoch = int(init.producer_id), int(init.producer_epoch)
            records = [Record(i, i, b"k", b"v") for i in range(n)]
            batch = build_batch(records, producer_id=pid, producer_epoch=epoch, base_sequence=0,
                                base_timestamp=1_700_000_000_000 + n)
            resp = await conn.request(produce_request("dp", {0: batch}))
            assert resp.responses[0].partition_responses[0].error_code == ErrorCode.none
            # last_timestamp is the batch's max timestamp: base + the last record's delta
            pids.append((pid, epoch, n - 1, 1_700_000_000_000 + n + n - 1))
        # a batch without a producer id adds no producer
        await conn.request(produce_request("dp", {0: build_batch([Record(0, 0, None, b"x")])}))

        resp = await conn.request(DescribeProducersRequest(topics=(
            TopicRequest(name="dp", partition_indexes=(i32(0), i32(9))),
            TopicRequest(name="missing", partition_indexes=(i32(0),)),
        )))
        known, bad_partition = resp.topics[0].partitions
        assert known.error_code == ErrorCode.none
        got = sorted((int(p.producer_id), int(p.producer_epoch), int(p.last_sequence), int(p.last_timestamp))
                     for p in known.active_producers)
        assert got == sorted(pids)
        assert all(int(p.current_txn_start_offset) == -1 for p in known.active_producers)
        assert bad_partition.error_code == ErrorCode.unknown_topic_or_partition
        assert resp.topics[1].partitions[0].error_code == ErrorCode.unknown_topic_or_partition
    finally:
        await conn.close()
