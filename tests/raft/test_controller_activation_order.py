"""The active controller's bootstrap records are the first data records of a new metadata log, ahead of
anything else it writes, its idle NoOpRecords included (Kafka's QuorumController writes NoOps only once
activated). A Kafka node that finds a committed data record with no metadata.version below it stops with
"Unknown metadata version for FeaturesImage"; a Kafka controller of a mixed quorum under a Strom leader
did, when a NoOp came before the bootstrap batch."""

from __future__ import annotations

import pytest

from strom.metadata.batches import read_metadata_batches
from strom.metadata.records import FeatureLevelRecord, NoOpRecord
from strom.metadata.snapshot import CLUSTER_METADATA_DIR
from strom.testing.raft_quorum import ControllerQuorum, wait_for


def _data_records(quorum: ControllerQuorum, node_id: int) -> list[object]:
    data = (quorum.data_dir(node_id) / CLUSTER_METADATA_DIR / "00000000000000000000.log").read_bytes()
    return [record.message for batch in read_metadata_batches(data) if not batch.is_control
            for _offset, record in batch.records]  # fmt: skip


@pytest.mark.parametrize("voters", [1, 3])
def test_no_record_comes_before_the_bootstrap_records(voters: int) -> None:
    # a NoOp due every millisecond: one written between the election and the activation would be first
    with ControllerQuorum(voters, settings={"metadata.max.idle.interval.ms": "1"}) as quorum:
        quorum.start_all()
        leader, _ = wait_for(quorum.leader, 15, "a leader")
        written = wait_for(
            lambda: (r := _data_records(quorum, leader)) and any(isinstance(m, NoOpRecord) for m in r) and r,
            15,
            "the bootstrap records and a NoOpRecord",
        )
    version = next(i for i, m in enumerate(written) if isinstance(m, FeatureLevelRecord))
    assert written[version].name == "metadata.version"
    assert not any(isinstance(m, NoOpRecord) for m in written[:version]), [type(m).__name__ for m in written]
