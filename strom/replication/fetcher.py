"""The follower fetch loop: one `ReplicaFetcher` per leader broker pulls every partition this broker
follows from that leader, as Kafka's ReplicaFetcherThread does.

Each round it first truncates the partitions that just became followers (or saw a new leader epoch) by
leader epoch, never to the high watermark (KIP-101, KIP-279): it sends OffsetForLeaderEpoch with its
latest epoch; the leader answers the largest epoch it knows at or below it and that epoch's end offset;
the follower truncates to the smaller of that end offset and its own end offset for the answered epoch.
Then it sends one Fetch (v12, replica_id = own node id, current_leader_epoch = the epoch it knows) for all
its partitions, appends what comes back with the leader's offsets and epochs (`Log.append(assign_offsets=
False)` through `Partition.append_as_follower`) and sets its high watermark to min(leader's high watermark,
own log end offset). The next fetch offset is the follower's log end offset, which tells the leader how far
it got (that is how the ISR and the high watermark move).

Errors: FENCED_LEADER_EPOCH / NOT_LEADER_OR_FOLLOWER / UNKNOWN_LEADER_EPOCH mean the two brokers have not
seen the same metadata yet: back off and retry (the replica manager moves the partition when the image
changes). OFFSET_OUT_OF_RANGE: truncate by epoch again when ahead, or restart at the leader's log start
offset when behind it. A lost connection is reopened after a back-off.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from kio.schema.fetch.v12 import request as fetch_req
from kio.schema.offset_for_leader_epoch.v4 import request as ofle_req
from kio.schema.types import BrokerId, TopicName
from kio.static.primitive import i8, i32, i32Timedelta, i64

from strom.client.connection import BrokerConnection
from strom.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from strom.replication.partition import Partition
    from strom.security.sasl.client import SaslClientSettings

log = logging.getLogger("strom.fetcher")

__all__ = ["FetcherConfig", "ReplicaFetcher"]

Key = tuple[str, int]
AddressLookup = Callable[[int], "tuple[str, int] | None"]


class FetcherConfig:
    """The replica.fetch.* settings a fetcher runs with."""

    def __init__(
        self,
        node_id: int,
        *,
        max_wait_ms: int = 500,
        min_bytes: int = 1,
        max_bytes: int = 10 * 1024 * 1024,
        partition_max_bytes: int = 1024 * 1024,
        backoff_s: float = 0.2,
        timeout_s: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        sasl: SaslClientSettings | None = None,
    ) -> None:
        self.node_id = node_id
        self.ssl_context = ssl_context  # the inter-broker listener's TLS client context, if it uses TLS
        self.sasl = sasl  # how to authenticate to the leader, if the inter-broker listener uses SASL
        self.max_wait_ms = max_wait_ms
        self.min_bytes = min_bytes
        self.max_bytes = max_bytes
        self.partition_max_bytes = partition_max_bytes
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s


class ReplicaFetcher:
    """Replicates every partition led by `leader_id` that this broker follows."""

    def __init__(self, leader_id: int, address: AddressLookup, config: FetcherConfig) -> None:
        self.leader_id = leader_id
        self._address = address
        self._config = config
        self.partitions: dict[Key, Partition] = {}
        self._needs_truncation: set[Key] = set()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._conn: BrokerConnection | None = None

    # --- membership --------------------------------------------------------------------------------
    def add(self, part: Partition) -> None:
        key = (part.topic, part.partition)
        self.partitions[key] = part
        self._needs_truncation.add(key)
        self._changed.set()

    def remove(self, key: Key) -> None:
        self.partitions.pop(key, None)
        self._needs_truncation.discard(key)
        self._changed.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"replica-fetcher-{self.leader_id}")

    async def stop(self) -> None:
        """End the loop and close the connection. The loop also checks a flag: on Python < 3.12 a
        cancellation that races with a response is lost inside asyncio.wait_for (it returns the result),
        and the loop would then wait for partitions forever while the replica manager waits for it."""
        self._stopping = True
        self._changed.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # asyncio.wait neither raises the task's outcome nor swallows a cancellation of our caller
            await asyncio.wait({task})
            if not task.cancelled() and task.exception() is not None:
                log.debug("fetcher for leader %d ended with %r", self.leader_id, task.exception())
        await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    # --- loop --------------------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping:
            if not self.partitions:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                conn = await self._connection()
                if self._needs_truncation:
                    await self._truncate(conn)
                progressed = await self._fetch_once(conn)
                if not progressed:
                    await asyncio.sleep(self._config.backoff_s)
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionError, TimeoutError, KafkaError) as exc:
                log.debug("fetcher for leader %d: %r", self.leader_id, exc)
                await self._close()
                await asyncio.sleep(self._config.backoff_s)
            except Exception:
                log.exception("fetcher for leader %d failed", self.leader_id)
                await self._close()
                await asyncio.sleep(self._config.backoff_s)

    async def _connection(self) -> BrokerConnection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        await self._close()
        address = self._address(self.leader_id)
        if address is None:
            raise ConnectionError(f"leader {self.leader_id} is not a live broker")
        self._conn = await BrokerConnection.open(
            address[0],
            address[1],
            client_id=f"replica-{self._config.node_id}",
            negotiate=False,
            timeout=self._config.timeout_s,
            ssl=self._config.ssl_context,
            sasl=self._config.sasl,
        )
        return self._conn

    # --- truncation (KIP-101/279) -------------------------------------------------------------------
    async def _truncate(self, conn: BrokerConnection) -> None:
        keys = [k for k in self._needs_truncation if k in self.partitions]
        by_topic: dict[str, list[ofle_req.OffsetForLeaderPartition]] = {}
        asked: dict[Key, int] = {}
        for key in keys:
            part = self.partitions[key]
            latest = part.log.leader_epoch_cache.latest_epoch
            if latest < 0:
                # nothing written under any epoch: nothing can diverge
                self._needs_truncation.discard(key)
                continue
            asked[key] = latest
            by_topic.setdefault(key[0], []).append(
                ofle_req.OffsetForLeaderPartition(
                    partition=i32(key[1]),
                    current_leader_epoch=i32(part.leader_epoch),
                    leader_epoch=i32(latest),
                )
            )
        if not by_topic:
            return
        request = ofle_req.OffsetForLeaderEpochRequest(
            replica_id=BrokerId(self._config.node_id),
            topics=tuple(
                ofle_req.OffsetForLeaderTopic(topic=TopicName(t), partitions=tuple(ps))
                for t, ps in by_topic.items()
            ),
        )
        response = await conn.request(request, timeout=self._config.timeout_s)
        for topic in response.topics:
            for p in topic.partitions:
                key = (str(topic.topic), int(p.partition))
                part = self.partitions.get(key)
                if part is None or key not in asked:
                    continue
                if p.error_code != ErrorCode.none:
                    log.debug("OffsetForLeaderEpoch %s-%d: %s", key[0], key[1], p.error_code)
                    continue
                self._apply_epoch_end(part, int(p.leader_epoch), int(p.end_offset))
                self._needs_truncation.discard(key)

    @staticmethod
    def _apply_epoch_end(part: Partition, leader_epoch: int, leader_end: int) -> None:
        if leader_epoch < 0 or leader_end < 0:
            # the leader has no epoch at or below ours: everything we hold diverges
            part.truncate_to(part.log_start_offset)
            return
        own_epoch, own_end = part.log.end_offset_for_epoch(leader_epoch)
        target = min(leader_end, part.log_end_offset)
        if own_epoch == leader_epoch and own_end >= 0:
            target = min(target, own_end)
        part.truncate_to(target)

    # --- fetching ----------------------------------------------------------------------------------
    async def _fetch_once(self, conn: BrokerConnection) -> bool:
        cfg = self._config
        by_topic: dict[str, list[fetch_req.FetchPartition]] = {}
        for (topic, index), part in self.partitions.items():
            if (topic, index) in self._needs_truncation:
                continue
            by_topic.setdefault(topic, []).append(
                fetch_req.FetchPartition(
                    partition=i32(index),
                    current_leader_epoch=i32(part.leader_epoch),
                    fetch_offset=i64(part.log_end_offset),
                    last_fetched_epoch=i32(-1),
                    log_start_offset=i64(part.log_start_offset),
                    partition_max_bytes=i32(cfg.partition_max_bytes),
                )
            )
        if not by_topic:
            return False
        request = fetch_req.FetchRequest(
            cluster_id=None,
            replica_id=BrokerId(cfg.node_id),
            max_wait=i32Timedelta.parse(datetime.timedelta(milliseconds=cfg.max_wait_ms)),
            min_bytes=i32(cfg.min_bytes),
            max_bytes=i32(cfg.max_bytes),
            isolation_level=i8(0),
            session_id=i32(0),
            session_epoch=i32(-1),
            topics=tuple(
                fetch_req.FetchTopic(topic=TopicName(t), partitions=tuple(ps)) for t, ps in by_topic.items()
            ),
            forgotten_topics_data=(),
            rack_id="",
        )
        response = await conn.request(request, timeout=cfg.timeout_s + cfg.max_wait_ms / 1000)
        if response.error_code != ErrorCode.none:
            raise KafkaError(f"fetch from {self.leader_id} failed", code=response.error_code)
        all_ok = True
        for topic in response.responses:
            for p in topic.partitions:
                key = (str(topic.topic), int(p.partition_index))
                part = self.partitions.get(key)
                if part is None or part.is_leader:
                    continue
                if not self._handle_partition(key, part, p):
                    all_ok = False
        # an error answers at once: back off rather than spin until the metadata catches up
        return all_ok

    def _handle_partition(self, key: Key, part: Partition, p: object) -> bool:
        code = p.error_code  # type: ignore[attr-defined]
        if code == ErrorCode.none:
            records = p.records  # type: ignore[attr-defined]
            if records:
                part.append_as_follower(records)
            part.set_follower_high_watermark(int(p.high_watermark))  # type: ignore[attr-defined]
            return True
        if code == ErrorCode.offset_out_of_range:
            leader_start = int(p.log_start_offset)  # type: ignore[attr-defined]
            if leader_start >= 0 and part.log_end_offset < leader_start:
                part.truncate_fully_and_start_at(leader_start)
            else:
                self._needs_truncation.add(key)
            return True
        log.debug("fetch %s-%d from %d: %s", key[0], key[1], self.leader_id, code)
        return False
