"""AlterPartitionReassignments and ListPartitionReassignments on the single-node backend: the broker
itself is the only valid target (accepted, nothing changes), anything else is INVALID_REPLICA_ASSIGNMENT,
cancelling is NO_REASSIGNMENT_IN_PROGRESS, unknown partitions are UNKNOWN_TOPIC_OR_PARTITION, and the
list is always empty."""

from __future__ import annotations

from strom.client.cluster import ClusterClient
from strom.protocol.errors import ErrorCode
from strom.testing.embedded import EmbeddedBroker


async def test_single_node_reassignment_answers() -> None:
    async with (
        EmbeddedBroker({"num.partitions": "2"}) as broker,
        ClusterClient(broker.bootstrap_servers) as client,
    ):
        await client.create_topic("solo", 2, 1)
        results = await client.alter_partition_reassignments(
            {("solo", 0): [1], ("solo", 1): [1, 2], ("solo", 7): [1], ("gone", 0): None}
        )
        assert results[("solo", 0)] == (ErrorCode.none.value, None)
        assert results[("solo", 1)][0] == ErrorCode.invalid_replica_assignment.value
        assert "2" in (results[("solo", 1)][1] or "")
        assert results[("solo", 7)][0] == ErrorCode.unknown_topic_or_partition.value
        assert results[("gone", 0)][0] == ErrorCode.unknown_topic_or_partition.value
        cancelled = await client.alter_partition_reassignments({("solo", 0): None})
        assert cancelled[("solo", 0)][0] == ErrorCode.no_reassignment_in_progress.value
        assert await client.list_partition_reassignments() == {}
        assert await client.list_partition_reassignments([("solo", 0)]) == {}
        meta = await client.metadata(["solo"])
        assert [p.replicas for _, p in sorted(meta.topics["solo"].partitions.items())] == [(1,), (1,)]
