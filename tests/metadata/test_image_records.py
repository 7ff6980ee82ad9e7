"""A replayed MetadataState written back as records (the content of a snapshot) rebuilds the same state, and
every record it writes survives Kafka's framing and the snapshot file format."""

from __future__ import annotations

import uuid
from pathlib import Path

from strom.metadata import records as r
from strom.metadata.image import MetadataState
from strom.metadata.image_records import image_records
from strom.metadata.serde import ApiMessageAndVersion, decode_metadata_record, encode_metadata_record
from strom.metadata.snapshot import read_snapshot, write_snapshot

TOPIC = uuid.UUID(int=7)
ACL = uuid.UUID(int=9)


def history() -> list[ApiMessageAndVersion]:
    endpoint = r.RegisterBrokerRecord.BrokerEndpoint(
        name="PLAINTEXT", host="h1", port=9092, security_protocol=2
    )
    items: list[tuple[object, int]] = [
        (r.FeatureLevelRecord(name="transaction.version", feature_level=2), 0),
        (r.FeatureLevelRecord(name="metadata.version", feature_level=27), 0),
        (
            r.RegisterBrokerRecord(
                broker_id=1,
                incarnation_id=uuid.UUID(int=3),
                broker_epoch=11,
                end_points=(endpoint,),
                features=(
                    r.RegisterBrokerRecord.BrokerFeature(
                        name="metadata.version", min_supported_version=7, max_supported_version=27
                    ),
                ),
                rack="r1",
                fenced=True,
                log_dirs=(uuid.UUID(int=5),),
            ),
            3,
        ),
        (r.BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=11, fenced=-1), 0),
        (
            r.RegisterControllerRecord(
                controller_id=3,
                incarnation_id=uuid.UUID(int=4),
                end_points=(
                    r.RegisterControllerRecord.ControllerEndpoint(name="CONTROLLER", host="c", port=9093),
                ),
            ),
            0,
        ),
        (r.TopicRecord(name="orders", topic_id=TOPIC), 0),
        *[
            (
                r.PartitionRecord(
                    partition_id=p,
                    topic_id=TOPIC,
                    replicas=(1, 2),
                    isr=(1, 2),
                    leader=1,
                    leader_epoch=0,
                    partition_epoch=0,
                    directories=(),
                ),
                1,
            )
            for p in range(3)
        ],
        (r.PartitionChangeRecord(partition_id=1, topic_id=TOPIC, isr=(2,), leader=2), 0),
        (r.ConfigRecord(resource_type=2, resource_name="orders", name="retention.ms", value="1000"), 0),
        (r.ConfigRecord(resource_type=4, resource_name="", name="log.retention.ms", value="5"), 0),
        (
            r.ClientQuotaRecord(
                entity=(r.ClientQuotaRecord.EntityData(entity_type="user", entity_name=None),),
                key="producer_byte_rate",
                value=1024.0,
            ),
            0,
        ),
        (r.ProducerIdsRecord(broker_id=1, broker_epoch=11, next_producer_id=2000), 0),
        (
            r.AccessControlEntryRecord(
                id=ACL,
                resource_type=2,
                resource_name="orders",
                pattern_type=3,
                principal="User:alice",
                host="*",
                operation=3,
                permission_type=3,
            ),
            0,
        ),
        (
            r.UserScramCredentialRecord(
                name="alice", mechanism=1, salt=b"s", stored_key=b"k", server_key=b"v", iterations=4096
            ),
            0,
        ),
        (
            r.DelegationTokenRecord(
                owner="User:alice",
                requester="User:bob",
                renewers=("User:carol",),
                issue_timestamp=1,
                max_timestamp=3,
                expiration_timestamp=2,
                token_id="t1",
            ),
            0,
        ),
    ]
    return [ApiMessageAndVersion(m, v) for m, v in items]  # type: ignore[arg-type]


def replayed() -> MetadataState:
    state = MetadataState()
    for offset, record in enumerate(history()):
        state.replay(record, offset)
    return state


def same(a: MetadataState, b: MetadataState) -> None:
    assert {k: (t.name, t.partitions) for k, t in a.topics.items()} == {
        k: (t.name, t.partitions) for k, t in b.topics.items()
    }
    strip = lambda s: {
        i: (reg.epoch, reg.fenced, reg.endpoints, reg.features, reg.rack, reg.log_dirs)
        for i, reg in s.brokers.items()
    }
    assert strip(a) == strip(b)
    assert a.controllers == b.controllers
    for name in (
        "topic_ids",
        "configs",
        "features",
        "next_producer_id",
        "acls",
        "scram",
        "client_quotas",
        "tokens",
    ):
        assert getattr(a, name) == getattr(b, name), name


def test_the_records_rebuild_the_state(tmp_path: Path) -> None:
    state = replayed()
    assert state.topics[TOPIC].partitions[1].leader_epoch == 1  # the change moved the leader
    records = image_records(state)
    assert type(records[0].message) is r.FeatureLevelRecord and records[0].message.name == "metadata.version"
    rebuilt = MetadataState()
    rebuilt.load_snapshot(records, 100)
    same(state, rebuilt)
    assert rebuilt.last_offset == 99

    # each record at its version through Kafka's framing, and through a snapshot file
    for record in records:
        assert decode_metadata_record(encode_metadata_record(record.message, record.version)) == record
    path = tmp_path / "00000000000000000100-0000000002.checkpoint"
    write_snapshot(path, records, kraft_version=0, voters=None, timestamp_ms=5, epoch=2)
    from_file = MetadataState()
    from_file.load_snapshot(read_snapshot(path).records, 100)
    same(state, from_file)


def test_an_empty_state_writes_nothing() -> None:
    assert image_records(MetadataState()) == []
