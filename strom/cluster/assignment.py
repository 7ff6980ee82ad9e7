"""Kafka's rack-unaware replica assignment (`AdminUtils.assignReplicasToBrokersRackUnaware`).

Goals, as in Kafka: spread replicas evenly over brokers, and for each partition put its replicas on
different brokers. The first replica of each partition is placed round-robin starting at a random
broker; the followers are shifted from the first replica by an amount that also starts random and grows
by one every time the round-robin wraps, so that leaders' followers do not all land on the same broker.

Example with 5 brokers, 10 partitions, replication factor 3 (start index 0, shift 0):
    broker-0  broker-1  broker-2  broker-3  broker-4
    p0        p1        p2        p3        p4       (1st replica)
    p5        p6        p7        p8        p9       (1st replica)
    p4        p0        p1        p2        p3       (2nd replica)
    p8        p9        p5        p6        p7       (2nd replica)
    p3        p4        p0        p1        p2       (3rd replica)
    p7        p8        p9        p5        p6       (3rd replica)
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from strom.cluster.errors import InvalidPartitionsError, InvalidReplicationFactorError


def _replica_index(
    first_replica_index: int, second_replica_shift: int, replica_index: int, n_brokers: int
) -> int:
    shift = 1 + (second_replica_shift + replica_index) % (n_brokers - 1)
    return (first_replica_index + shift) % n_brokers


def assign_replicas(
    broker_ids: Sequence[int],
    num_partitions: int,
    replication_factor: int,
    *,
    rng: random.Random,
    fixed_start_index: int = -1,
    start_partition_id: int = -1,
) -> dict[int, list[int]]:
    """Assign `num_partitions` partitions (numbered from `start_partition_id`, or 0) to `broker_ids`.

    `fixed_start_index` >= 0 replaces both random choices (used when adding partitions, to continue the
    layout of partition 0). Raises INVALID_PARTITIONS / INVALID_REPLICATION_FACTOR like Kafka."""
    if num_partitions <= 0:
        raise InvalidPartitionsError("Number of partitions must be larger than 0.")
    if replication_factor <= 0:
        raise InvalidReplicationFactorError("Replication factor must be larger than 0.")
    brokers = sorted(broker_ids)
    if replication_factor > len(brokers):
        raise InvalidReplicationFactorError(
            f"Replication factor: {replication_factor} larger than available brokers: {len(brokers)}."
        )
    n = len(brokers)
    start_index = fixed_start_index if fixed_start_index >= 0 else rng.randrange(n)
    next_replica_shift = fixed_start_index if fixed_start_index >= 0 else rng.randrange(n)
    current = max(0, start_partition_id)
    result: dict[int, list[int]] = {}
    for _ in range(num_partitions):
        if current > 0 and current % n == 0:
            next_replica_shift += 1
        first = (current + start_index) % n
        replicas = [brokers[first]]
        for j in range(replication_factor - 1):
            replicas.append(brokers[_replica_index(first, next_replica_shift, j, n)])
        result[current] = replicas
        current += 1
    return result


def start_index_for_new_partitions(broker_ids: Sequence[int], partition0_leader: int) -> int:
    """Kafka's start index when adding partitions: the first broker with id >= partition 0's leader."""
    brokers = sorted(broker_ids)
    for index, broker in enumerate(brokers):
        if broker >= partition0_leader:
            return index
    return 0
