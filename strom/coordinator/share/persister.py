"""Kafka's default share-group state persister (KIP-932): how a share-partition's leader and the group
coordinator reach the share coordinator that keeps a share-partition's state.

The share coordinator of a key is the leader of its __share_group_state partition. When that is this
broker the call goes straight to `ShareCoordinator`; otherwise it is sent as InitializeShareGroupState,
ReadShareGroupState, WriteShareGroupState, ReadShareGroupStateSummary or DeleteShareGroupState over the
inter-broker listener, as Kafka's PersisterStateManager does. NOT_COORDINATOR and
COORDINATOR_LOAD_IN_PROGRESS answers are retried (bounded) since leadership may just be moving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strom.coordinator.share.partition import StateBatch
from strom.coordinator.share.state_coordinator import STATE_TOPIC
from strom.coordinator.share.state_records import StateKey
from strom.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from strom.server.broker import Broker

log = logging.getLogger("strom.share_persister")

_RETRIABLE = (
    ErrorCode.not_coordinator,
    ErrorCode.coordinator_load_in_progress,
    ErrorCode.coordinator_not_available,
)


@dataclass(frozen=True, slots=True)
class ReadResult:
    error: ErrorCode
    state_epoch: int = 0
    leader_epoch: int = -1
    start_offset: int = -1
    batches: tuple[StateBatch, ...] = ()


class Persister:
    def __init__(self, broker: Broker, *, attempts: int = 10, backoff_s: float = 0.1) -> None:
        self.broker = broker
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._connections: dict[int, Any] = {}

    # --- routing -------------------------------------------------------------------------------------

    async def _leader(self, key: StateKey) -> int | None:
        coordinator = self.broker.share_coordinator
        try:
            info = await coordinator.ensure_state_topic()
        except KafkaError:
            return None
        state = None if info is None else info.partitions.get(coordinator.core.partition_for(key))
        return None if state is None or state.leader < 0 else int(state.leader)

    async def _call(self, key: StateKey, local: Any, remote: Any) -> Any:
        """Run `local()` on the coordinator here or send `remote()`'s request to it; retry while the
        coordinator moves. Both return (error, ...) tuples."""
        result: Any = (ErrorCode.coordinator_not_available,)
        for attempt in range(self.attempts):
            leader = await self._leader(key)
            if leader is None:
                result = (ErrorCode.coordinator_not_available,)
            elif leader == self.broker.node_id:
                result = await local()
            else:
                result = await self._send(leader, remote())
            if result[0] not in _RETRIABLE:
                return result
            await asyncio.sleep(self.backoff_s * (attempt + 1))
        return result

    async def _send(self, node_id: int, request_and_parse: tuple[Any, Any]) -> Any:
        from strom.client.connection import BrokerConnection

        request, parse = request_and_parse
        info = self.broker.metadata.image.brokers.get(node_id)
        endpoint = None if info is None else info.endpoint(self.broker.inter_broker_listener)
        if endpoint is None:
            return (ErrorCode.coordinator_not_available,)
        try:
            conn = self._connections.get(node_id)
            if conn is None or conn.closed:
                conn = await BrokerConnection.open(
                    endpoint.host,
                    endpoint.port,
                    client_id=f"share-persister-{self.broker.node_id}",
                    ssl=self.broker.inter_broker_ssl,
                    sasl=self.broker.inter_broker_sasl,
                )
                self._connections[node_id] = conn
            response = await conn.request(request, timeout=30)
        except (OSError, TimeoutError, KafkaError, ConnectionError) as exc:
            log.info("share state request to broker %d failed: %r", node_id, exc)
            conn = self._connections.pop(node_id, None)
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            return (ErrorCode.coordinator_not_available,)
        part = response.results[0].partitions[0]
        return parse(part)

    async def close(self) -> None:
        for conn in self._connections.values():
            with contextlib.suppress(Exception):
                await conn.close()
        self._connections.clear()

    # --- the five operations -------------------------------------------------------------------------

    async def initialize(self, key: StateKey, state_epoch: int, start_offset: int) -> ErrorCode:
        from kio.schema.initialize_share_group_state.v0 import request as m
        from kio.static.primitive import i32, i64

        async def local() -> tuple[ErrorCode]:
            return (await self.broker.share_coordinator.initialize_state(key, state_epoch, start_offset),)

        def remote() -> tuple[Any, Any]:
            req = m.InitializeShareGroupStateRequest(
                group_id=key.group_id,
                topics=(
                    m.InitializeStateData(
                        topic_id=key.topic_id,
                        partitions=(
                            m.PartitionData(
                                partition=i32(key.partition),
                                state_epoch=i32(state_epoch),
                                start_offset=i64(start_offset),
                            ),
                        ),
                    ),
                ),
            )
            return req, lambda p: (ErrorCode(p.error_code),)

        result = await self._call(key, local, remote)
        return ErrorCode(result[0])

    async def read(self, key: StateKey, leader_epoch: int) -> ReadResult:
        from kio.schema.read_share_group_state.v0 import request as m
        from kio.static.primitive import i32

        async def local() -> tuple[ErrorCode, ReadResult]:
            error, state = await self.broker.share_coordinator.read_state(key, leader_epoch)
            if state is None:
                return error, ReadResult(error)
            return error, ReadResult(
                error, state.state_epoch, state.leader_epoch, state.start_offset, state.batches
            )

        def remote() -> tuple[Any, Any]:
            req = m.ReadShareGroupStateRequest(
                group_id=key.group_id,
                topics=(
                    m.ReadStateData(
                        topic_id=key.topic_id,
                        partitions=(
                            m.PartitionData(partition=i32(key.partition), leader_epoch=i32(leader_epoch)),
                        ),
                    ),
                ),
            )

            def parse(p: Any) -> tuple[ErrorCode, ReadResult]:
                error = ErrorCode(p.error_code)
                batches = tuple(
                    StateBatch(
                        int(b.first_offset), int(b.last_offset), int(b.delivery_state), int(b.delivery_count)
                    )
                    for b in p.state_batches
                )
                return error, ReadResult(
                    error, int(p.state_epoch), leader_epoch, int(p.start_offset), batches
                )

            return req, parse

        result = await self._call(key, local, remote)
        return result[1] if len(result) > 1 else ReadResult(ErrorCode(result[0]))

    async def write(
        self,
        key: StateKey,
        state_epoch: int,
        leader_epoch: int,
        start_offset: int,
        batches: tuple[StateBatch, ...],
    ) -> ErrorCode:
        from kio.schema.write_share_group_state.v1 import request as m
        from kio.static.primitive import i8, i16, i32, i64

        async def local() -> tuple[ErrorCode]:
            coordinator = self.broker.share_coordinator
            return (await coordinator.write_state(key, state_epoch, leader_epoch, start_offset, batches),)

        def remote() -> tuple[Any, Any]:
            req = m.WriteShareGroupStateRequest(
                group_id=key.group_id,
                topics=(
                    m.WriteStateData(
                        topic_id=key.topic_id,
                        partitions=(
                            m.PartitionData(
                                partition=i32(key.partition),
                                state_epoch=i32(state_epoch),
                                leader_epoch=i32(leader_epoch),
                                start_offset=i64(start_offset),
                                state_batches=tuple(
                                    m.StateBatch(
                                        first_offset=i64(b.first_offset),
                                        last_offset=i64(b.last_offset),
                                        delivery_state=i8(b.delivery_state),
                                        delivery_count=i16(b.delivery_count),
                                    )
                                    for b in batches
                                ),
                            ),
                        ),
                    ),
                ),
            )
            return req, lambda p: (ErrorCode(p.error_code),)

        result = await self._call(key, local, remote)
        return ErrorCode(result[0])

    async def summary(self, key: StateKey) -> ReadResult:
        from kio.schema.read_share_group_state_summary.v1 import request as m
        from kio.static.primitive import i32

        async def local() -> tuple[ErrorCode, ReadResult]:
            error, state = await self.broker.share_coordinator.read_summary(key)
            if state is None:
                return error, ReadResult(error)
            return error, ReadResult(error, state.state_epoch, state.leader_epoch, state.start_offset)

        def remote() -> tuple[Any, Any]:
            req = m.ReadShareGroupStateSummaryRequest(
                group_id=key.group_id,
                topics=(
                    m.ReadStateSummaryData(
                        topic_id=key.topic_id,
                        partitions=(m.PartitionData(partition=i32(key.partition), leader_epoch=i32(-1)),),
                    ),
                ),
            )

            def parse(p: Any) -> tuple[ErrorCode, ReadResult]:
                error = ErrorCode(p.error_code)
                return error, ReadResult(error, int(p.state_epoch), int(p.leader_epoch), int(p.start_offset))

            return req, parse

        result = await self._call(key, local, remote)
        return result[1] if len(result) > 1 else ReadResult(ErrorCode(result[0]))

    async def delete(self, key: StateKey) -> ErrorCode:
        from kio.schema.delete_share_group_state.v0 import request as m
        from kio.static.primitive import i32

        async def local() -> tuple[ErrorCode]:
            return (await self.broker.share_coordinator.delete_state(key),)

        def remote() -> tuple[Any, Any]:
            req = m.DeleteShareGroupStateRequest(
                group_id=key.group_id,
                topics=(
                    m.DeleteStateData(
                        topic_id=key.topic_id, partitions=(m.PartitionData(partition=i32(key.partition)),)
                    ),
                ),
            )
            return req, lambda p: (ErrorCode(p.error_code),)

        result = await self._call(key, local, remote)
        return ErrorCode(result[0])


__all__ = ["STATE_TOPIC", "Persister", "ReadResult"]
