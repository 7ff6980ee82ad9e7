"""A partition leader asking a transaction's coordinator about the partitions it is about to write (KIP-890).

Before the first transactional batch of a producer reaches a partition (no transaction of that producer
open there yet), the leader asks the coordinator of the transactional id:
- part 1 (Produce v11 and below, TxnOffsetCommit v4 and below: clients that add partitions themselves):
  verify only, is the partition in the ongoing transaction?
- part 2 (Produce v12+, TxnOffsetCommit v5+: transaction version 2 clients, which send no
  AddPartitionsToTxn): add the partition to the transaction, written to __transaction_state.
When this broker coordinates the id, the local coordinator answers; otherwise AddPartitionsToTxn v5
(batched form, `verify_only` set for part 1) goes to the leader of the id's __transaction_state
partition over the inter-broker listener, as Kafka's AddPartitionsToTxnManager sends it. The answer is
one error per partition: the coordinator's (NONE, TRANSACTION_ABORTABLE, PRODUCER_FENCED,
INVALID_PRODUCER_ID_MAPPING, CONCURRENT_TRANSACTIONS, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, ...),
COORDINATOR_NOT_AVAILABLE when no coordinator is known, NETWORK_EXCEPTION when it cannot be reached. The
callers translate them for their clients (`produce_error`).

An add (part 2) refused with CONCURRENT_TRANSACTIONS is retried here, every
add.partitions.to.txn.retry.backoff.ms for up to add.partitions.to.txn.retry.backoff.max.ms, as Kafka's
ReplicaManager does since KAFKA-18654: under transaction version 2 the producer's next transaction starts
while the previous one's markers are still being written, and the client would otherwise see a
NOT_ENOUGH_REPLICAS that most clients answer with a metadata refresh before retrying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from strom.coordinator.group.schemas import partition_for
from strom.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from strom.server.broker import Broker

log = logging.getLogger("strom.txn_partition_adder")

TopicPartition = tuple[str, int]
TRANSACTION_TOPIC = "__transaction_state"
REQUEST_TIMEOUT_S = 30.0

# coordinator errors older producers do not retry correctly; Kafka answers them as NOT_ENOUGH_REPLICAS,
# which makes any client retry the produce without a metadata refresh
_RETRY_AS_NOT_ENOUGH_REPLICAS = {
    ErrorCode.concurrent_transactions,
    ErrorCode.network_exception,
    ErrorCode.coordinator_load_in_progress,
    ErrorCode.coordinator_not_available,
    ErrorCode.not_coordinator,
}


def produce_error(error: ErrorCode, abortable_supported: bool) -> tuple[ErrorCode, str | None]:
    """The error (and message) a producer gets for a partition its coordinator did not verify or add, as
    Kafka's ReplicaManager and AddPartitionsToTxnManager translate them. `abortable_supported`: the
    request version knows TRANSACTION_ABORTABLE (Produce v11+, TxnOffsetCommit v4+)."""
    if error == ErrorCode.producer_fenced:
        error = ErrorCode.invalid_producer_epoch
    elif error == ErrorCode.transaction_abortable and not abortable_supported:
        error = ErrorCode.invalid_txn_state
    if error == ErrorCode.invalid_txn_state:
        return error, "Partition was not added to the transaction"
    if error in _RETRY_AS_NOT_ENOUGH_REPLICAS:
        return ErrorCode.not_enough_replicas, (
            "Unable to verify the partition has been added to the transaction. "
            f"Underlying error: {error.name.upper()}"
        )
    return error, None


class PartitionAdder:
    """Verifies or adds partitions through the transactional id's coordinator, local or remote; keeps one
    connection per remote coordinator."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._connections: dict[int, Any] = {}

    async def close(self) -> None:
        for conn in self._connections.values():
            with contextlib.suppress(Exception):
                await conn.close()
        self._connections.clear()

    def _coordinator_node(self, transactional_id: str) -> int | None:
        image = self.broker.metadata.image
        info = image.topic(TRANSACTION_TOPIC)
        if info is None:
            return None
        state = info.partitions.get(partition_for(transactional_id, len(info.partitions)))
        if state is None or state.leader < 0:
            return None
        return int(state.leader)

    async def add_or_verify(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[TopicPartition],
        *,
        add: bool,
    ) -> dict[TopicPartition, ErrorCode]:
        wanted = list(dict.fromkeys(partitions))
        errors = await self._add_or_verify_once(transactional_id, producer_id, producer_epoch, wanted, add)
        if not add:
            return errors
        config = self.broker.config
        backoff_s = int(config.get("add.partitions.to.txn.retry.backoff.ms")) / 1000
        deadline = time.monotonic() + int(config.get("add.partitions.to.txn.retry.backoff.max.ms")) / 1000
        while time.monotonic() + backoff_s <= deadline:
            busy = [tp for tp, error in errors.items() if error == ErrorCode.concurrent_transactions]
            if not busy:
                break
            await asyncio.sleep(backoff_s)
            again = await self._add_or_verify_once(transactional_id, producer_id, producer_epoch, busy, add)
            errors.update(again)
        return errors

    async def _add_or_verify_once(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        wanted: list[TopicPartition],
        add: bool,
    ) -> dict[TopicPartition, ErrorCode]:
        node = self._coordinator_node(transactional_id)
        if node is None:
            return dict.fromkeys(wanted, ErrorCode.coordinator_not_available)
        if node == self.broker.node_id:
            coordinator = self.broker.txn_coordinator
            if add:
                error = await coordinator.add_partitions(
                    transactional_id, producer_id, producer_epoch, wanted, client_transaction_version=2
                )
                return dict.fromkeys(wanted, error)
            return coordinator.core.verify_partitions(transactional_id, producer_id, producer_epoch, wanted)
        return await self._remote(node, transactional_id, producer_id, producer_epoch, wanted, add)

    async def _remote(
        self,
        node: int,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        wanted: list[TopicPartition],
        add: bool,
    ) -> dict[TopicPartition, ErrorCode]:
        from kio.schema.add_partitions_to_txn.v5 import request as v5
        from kio.static.primitive import i16, i32, i64

        from strom.client.connection import BrokerConnection

        broker_info = self.broker.metadata.image.brokers.get(node)
        listener = self.broker.inter_broker_listener
        endpoint = broker_info.endpoint(listener) if broker_info is not None else None
        if endpoint is None:
            return dict.fromkeys(wanted, ErrorCode.coordinator_not_available)
        by_topic: dict[str, list[int]] = {}
        for topic, partition in wanted:
            by_topic.setdefault(topic, []).append(partition)
        request = v5.AddPartitionsToTxnRequest(
            transactions=(
                v5.AddPartitionsToTxnTransaction(
                    transactional_id=transactional_id,  # type: ignore[arg-type]
                    producer_id=i64(producer_id),  # type: ignore[arg-type]
                    producer_epoch=i16(producer_epoch),
                    verify_only=not add,
                    topics=tuple(
                        v5.AddPartitionsToTxnTopic(name=t, partitions=tuple(i32(p) for p in ps))  # type: ignore[arg-type]
                        for t, ps in by_topic.items()
                    ),
                ),
            )
        )
        try:
            conn = self._connections.get(node)
            if conn is None or conn.closed:
                conn = await BrokerConnection.open(
                    endpoint.host,
                    endpoint.port,
                    client_id=f"add-partitions-to-txn-{self.broker.node_id}",
                    ssl=self.broker.inter_broker_ssl,
                    sasl=self.broker.inter_broker_sasl,
                )
                self._connections[node] = conn
            response = await conn.request(request, timeout=REQUEST_TIMEOUT_S)
        except (OSError, TimeoutError, KafkaError, ConnectionError) as exc:
            log.info("AddPartitionsToTxn to broker %d failed: %r", node, exc)
            conn = self._connections.pop(node, None)
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            return dict.fromkeys(wanted, ErrorCode.network_exception)
        if response.error_code != ErrorCode.none:
            top = ErrorCode(response.error_code)
            # the client must not see CLUSTER_AUTHORIZATION_FAILED: the verification just did not happen
            if top == ErrorCode.cluster_authorization_failed:
                top = ErrorCode.invalid_txn_state
            return dict.fromkeys(wanted, top)
        out = dict.fromkeys(wanted, ErrorCode.none)
        for result in response.results_by_transaction:
            for topic in result.topic_results:
                for part in topic.results_by_partition:
                    tp = (topic.name, int(part.partition_index))
                    if tp in out:
                        out[tp] = ErrorCode(part.partition_error_code)
        return out
