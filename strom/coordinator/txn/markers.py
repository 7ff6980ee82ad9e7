"""Writing transaction markers to partitions (the broker side of WriteTxnMarkers, KIP-98).

`write_marker` appends one COMMIT/ABORT control batch to a partition this broker leads, waits for the
ISR (markers are written with acks=all, as Kafka does), and tells the group coordinator when the
partition is one of __consumer_offsets, so transactional offset commits become visible or are dropped.
`MarkerSender` is the coordinator's side: it delivers the markers of one transaction to every partition,
locally or with WriteTxnMarkers v2 to the leaders, retrying until each partition answers or is gone. The
markers name the transaction version (KIP-890 part 2): under version 2 the marker's epoch is the one the
coordinator bumped, and a partition refuses a marker whose epoch is not above the producer's (except the
retry of a marker already written).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from strom.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from strom.server.broker import Broker

log = logging.getLogger("strom.txn_markers")

OFFSETS_TOPIC = "__consumer_offsets"
# a marker refused for these reasons can never be written; Kafka's coordinator gives up on them too
_FINAL_ERRORS = {
    ErrorCode.none,
    ErrorCode.unknown_topic_or_partition,
    ErrorCode.invalid_producer_epoch,
    ErrorCode.producer_fenced,
    ErrorCode.transaction_coordinator_fenced,
    ErrorCode.corrupt_message,
}
RETRY_BACKOFF_S = 0.1


async def write_marker(
    broker: Broker,
    topic: str,
    partition: int,
    producer_id: int,
    producer_epoch: int,
    commit: bool,
    coordinator_epoch: int,
    timeout_s: float = 30.0,
    transaction_version: int = 0,
) -> ErrorCode:
    """Append a marker to a partition led here; the error code WriteTxnMarkers answers for it."""
    if broker.metadata.image.partition(topic, partition) is None:
        return ErrorCode.unknown_topic_or_partition
    part = broker.replica_manager.get_partition(topic, partition)
    if part is None or not part.is_leader:
        return ErrorCode.not_leader_or_follower
    try:
        offset = part.append_txn_marker(
            producer_id, producer_epoch, commit, coordinator_epoch, transaction_version=transaction_version
        )
    except KafkaError as exc:
        return exc.code
    if topic == OFFSETS_TOPIC:
        hook = getattr(broker.group_coordinator, "complete_txn_offsets", None)
        if hook is not None:
            hook(partition, producer_id, commit)
    try:
        if not await part.wait_for_acks_all(offset, timeout_s):
            return ErrorCode.request_timed_out
    except KafkaError as exc:
        return exc.code
    return ErrorCode.none


class MarkerSender:
    """Delivers markers for the coordinator; keeps one connection per remote leader."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._connections: dict[int, Any] = {}

    async def close(self) -> None:
        for conn in self._connections.values():
            with contextlib.suppress(Exception):
                await conn.close()
        self._connections.clear()

    async def send(
        self,
        partitions: frozenset[tuple[str, int]],
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
        still_wanted: Any = None,
        transaction_version: int = 0,
    ) -> None:
        """Returns once every partition has the marker (or can never get it); `still_wanted()` False
        stops early (the coordinator lost the transactional id)."""
        remaining = set(partitions)
        while remaining:
            if still_wanted is not None and not still_wanted():
                return
            image = self.broker.metadata.image
            by_leader: dict[int, list[tuple[str, int]]] = {}
            for tp in list(remaining):
                state = image.partition(*tp)
                if state is None:
                    remaining.discard(tp)  # deleted topic: nothing to mark
                    continue
                by_leader.setdefault(state.leader, []).append(tp)
            # every leader at once, as Kafka's marker channel manager sends them: the producer's next
            # transaction waits (CONCURRENT_TRANSACTIONS) until the slowest partition has its marker
            marker = (producer_id, producer_epoch, commit, coordinator_epoch, transaction_version)
            delivered = await asyncio.gather(
                *(self._deliver(leader, tps, *marker) for leader, tps in by_leader.items() if leader >= 0)
            )
            for done in delivered:
                remaining -= done
            if remaining:
                await asyncio.sleep(RETRY_BACKOFF_S)

    async def _deliver(
        self,
        leader: int,
        tps: list[tuple[str, int]],
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
        transaction_version: int,
    ) -> set[tuple[str, int]]:
        """The partitions of one leader that got their marker (or never can)."""
        if leader != self.broker.node_id:
            return await self._send_remote(
                leader, tps, producer_id, producer_epoch, commit, coordinator_epoch, transaction_version
            )
        results = await asyncio.gather(
            *(
                write_marker(
                    self.broker,
                    t,
                    p,
                    producer_id,
                    producer_epoch,
                    commit,
                    coordinator_epoch,
                    transaction_version=transaction_version,
                )
                for t, p in tps
            )
        )
        return {tp for tp, code in zip(tps, results, strict=True) if code in _FINAL_ERRORS}

    async def _send_remote(
        self,
        node_id: int,
        tps: list[tuple[str, int]],
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
        transaction_version: int = 0,
    ) -> set[tuple[str, int]]:
        from kio.schema.write_txn_markers.v2.request import (
            WritableTxnMarker,
            WritableTxnMarkerTopic,
            WriteTxnMarkersRequest,
        )
        from kio.static.primitive import i8, i16, i32, i64

        from strom.client.connection import BrokerConnection

        broker_info = self.broker.metadata.image.brokers.get(node_id)
        # markers go to the partition leader's inter-broker listener
        listener = self.broker.inter_broker_listener
        endpoint = broker_info.endpoint(listener) if broker_info is not None else None
        if endpoint is None:
            return set()
        by_topic: dict[str, list[int]] = {}
        for topic, partition in tps:
            by_topic.setdefault(topic, []).append(partition)
        request = WriteTxnMarkersRequest(
            markers=(
                WritableTxnMarker(
                    producer_id=i64(producer_id),  # type: ignore[arg-type]
                    producer_epoch=i16(producer_epoch),
                    transaction_result=commit,
                    topics=tuple(
                        WritableTxnMarkerTopic(name=t, partition_indexes=tuple(i32(p) for p in ps))  # type: ignore[arg-type]
                        for t, ps in by_topic.items()
                    ),
                    coordinator_epoch=i32(coordinator_epoch),
                    transaction_version=i8(transaction_version),
                ),
            )
        )
        try:
            conn = self._connections.get(node_id)
            if conn is None or conn.closed:
                conn = await BrokerConnection.open(
                    endpoint.host,
                    endpoint.port,
                    client_id=f"txn-coordinator-{self.broker.node_id}",
                    ssl=self.broker.inter_broker_ssl,
                    sasl=self.broker.inter_broker_sasl,
                )
                self._connections[node_id] = conn
            response = await conn.request(request, timeout=30)
        except (OSError, TimeoutError, KafkaError, ConnectionError) as exc:
            log.info("WriteTxnMarkers to broker %d failed: %r", node_id, exc)
            conn = self._connections.pop(node_id, None)
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            return set()
        done: set[tuple[str, int]] = set()
        for marker in response.markers:
            for topic in marker.topics:
                for result in topic.partitions:
                    if result.error_code in _FINAL_ERRORS:
                        done.add((topic.name, int(result.partition_index)))
        return done
