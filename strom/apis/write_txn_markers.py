"""WriteTxnMarkers (api key 27), versions 1-2: a transaction coordinator's markers for partitions led here.

For each marker and partition: append a COMMIT or ABORT control batch with the producer's id and epoch
and the coordinator epoch (acks=all), which closes the producer's transaction on the partition, records
an abort in the aborted-transaction index and moves the last stable offset (KIP-98). v2 names each
marker's transaction version (KIP-890 part 2): at version 2 the coordinator bumped the producer epoch for
the marker, so a marker whose epoch is not above the producer's is refused (INVALID_PRODUCER_EPOCH), unless
it repeats one already written. kio has no v0 schema (v0 is v1 without flexible encoding), so v0 is not
served.

Errors per partition: NONE, UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER, INVALID_PRODUCER_EPOCH
(an older producer epoch than the partition knows), TRANSACTION_COORDINATOR_FENCED (an older coordinator
epoch), NOT_ENOUGH_REPLICAS, NOT_ENOUGH_REPLICAS_AFTER_APPEND, REQUEST_TIMED_OUT.
"""

from __future__ import annotations

import asyncio
from typing import Any

from strom.apis._build import build, entry_type
from strom.coordinator.txn.markers import write_marker
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 27


async def handle(ctx: Any, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    marker_cls = entry_type(cls, "markers")
    topic_cls = entry_type(marker_cls, "topics")
    part_cls = entry_type(topic_cls, "partitions")
    results = []
    for marker in request.markers:
        topics = []
        for topic in marker.topics:
            codes = await asyncio.gather(
                *(
                    write_marker(
                        ctx.broker,
                        topic.name,
                        int(p),
                        int(marker.producer_id),
                        int(marker.producer_epoch),
                        bool(marker.transaction_result),
                        int(marker.coordinator_epoch),
                        transaction_version=int(getattr(marker, "transaction_version", 0)),
                    )
                    for p in topic.partition_indexes
                )
            )
            topics.append(
                build(
                    topic_cls,
                    name=topic.name,
                    partitions=tuple(
                        build(part_cls, partition_index=p, error_code=code)
                        for p, code in zip(topic.partition_indexes, codes, strict=True)
                    ),
                )
            )
        results.append(build(marker_cls, producer_id=marker.producer_id, topics=tuple(topics)))
    return build(cls, markers=tuple(results))


SPEC = ApiSpec(api_key=API_KEY, min_version=1, max_version=2, handler=handle, name="WriteTxnMarkers")
