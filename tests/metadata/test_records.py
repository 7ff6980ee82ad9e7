"""The generated metadata and control record codecs: round trips of every version of every record, Kafka's
framing (MetadataRecordSerde), tagged fields, and the named errors that stop a node instead of letting it
apply half a record."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from strom.metadata.codec import decode, encode
from strom.metadata.errors import (
    MetadataParseError,
    UnknownRecordTypeError,
    UnknownRecordVersionError,
)
from strom.metadata.records import (
    CONTROL_RECORDS,
    METADATA_RECORDS,
    FeatureLevelRecord,
    KRaftVersionRecord,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
    VotersRecord,
)
from strom.metadata.schema import Message
from strom.metadata.serde import (
    decode_control_record,
    decode_metadata_record,
    encode_control_record,
    encode_metadata_record,
)

from .samples import every_record_version, sample

CASES = every_record_version()


def test_every_kafka_record_is_generated() -> None:
    names = {cls.__name__ for cls in METADATA_RECORDS.values()}
    for expected in ("TopicRecord", "PartitionRecord", "PartitionChangeRecord", "RegisterBrokerRecord",
                     "BrokerRegistrationChangeRecord", "FenceBrokerRecord", "UnfenceBrokerRecord",
                     "UnregisterBrokerRecord", "ConfigRecord", "RemoveTopicRecord", "ProducerIdsRecord",
                     "FeatureLevelRecord", "ClientQuotaRecord", "UserScramCredentialRecord",
                     "AccessControlEntryRecord", "RemoveAccessControlEntryRecord", "RegisterControllerRecord",
                     "NoOpRecord", "BeginTransactionRecord", "EndTransactionRecord", "AbortTransactionRecord",
                     "DelegationTokenRecord", "ClearElrRecord", "UnregisterControllerRecord"):
        assert expected in names
    assert {cls.__name__ for cls in CONTROL_RECORDS.values()} == {
        "LeaderChangeMessage", "SnapshotHeaderRecord", "SnapshotFooterRecord", "KRaftVersionRecord",
        "VotersRecord"}
    assert TopicRecord.API_KEY == 2 and PartitionRecord.API_KEY == 3 and FeatureLevelRecord.API_KEY == 12


@pytest.mark.parametrize(("cls", "version"), CASES, ids=[f"{c.__name__}-v{v}" for c, v in CASES])
def test_round_trip_every_version(cls: type[Message], version: int) -> None:
    message = sample(cls, version)
    body = bytes(encode(message, version))
    decoded, end = decode(cls, version, body)
    assert end == len(body)
    assert decoded == message
    assert bytes(encode(decoded, version)) == body
    if hasattr(cls, "API_KEY"):
        framed = encode_metadata_record(message, version)
        assert framed[:1] == b"\x01"  # frame version 1
        back = decode_metadata_record(framed)
        assert (back.message, back.version) == (message, version)
    else:
        key, value = encode_control_record(message, version)
        assert key == bytes([0, 0, 0, cls.CONTROL_TYPE])  # type: ignore[attr-defined]
        if version == cls.CURRENT_VERSION:  # type: ignore[attr-defined]
            assert decode_control_record(key, value).message == message


def test_frame_layout_matches_kafka() -> None:
    # Bytes of Kafka 4.4's own bootstrap snapshot: FeatureLevelRecord(metadata.version, 33) at version 0.
    framed = encode_metadata_record(FeatureLevelRecord(name="metadata.version", feature_level=33), 0)
    assert framed == bytes.fromhex("01 0c 00 11") + b"metadata.version" + bytes.fromhex("00 21 00")


def test_tagged_fields_are_written_only_when_not_default() -> None:
    plain = PartitionRecord(partition_id=0, topic_id=uuid.uuid4(), replicas=(1,), isr=(1,), leader=1,
                            leader_epoch=0, partition_epoch=0)
    assert bytes(encode(plain, 0)).endswith(b"\x00")  # no tagged fields
    elr = dataclasses.replace(plain, eligible_leader_replicas=(2, 3), leader_recovery_state=1)
    body = bytes(encode(elr, 2))
    assert decode(PartitionRecord, 2, body)[0] == elr
    # Version 0 has no ELR: it is neither written nor read back; leader_recovery_state (tag 0) is.
    v0, _ = decode(PartitionRecord, 0, bytes(encode(elr, 0)))
    assert v0.eligible_leader_replicas is None and v0.leader_recovery_state == 1


def test_unknown_tagged_field_is_skipped() -> None:
    record = TopicRecord(name="t", topic_id=uuid.uuid4())
    body = bytearray(encode(record, 0))
    assert body[-1] == 0
    body[-1:] = bytes([1, 40, 3]) + b"abc"  # one tag, tag 40, three bytes
    assert decode(TopicRecord, 0, bytes(body))[0] == record


def test_unknown_record_version_is_a_named_error() -> None:
    framed = bytearray(encode_metadata_record(PartitionChangeRecord(partition_id=1), 2))
    framed[2] = 9  # version 9 of PartitionChangeRecord does not exist (Kafka 4.4 knows 0-2)
    with pytest.raises(UnknownRecordVersionError) as info:
        decode_metadata_record(bytes(framed))
    assert (info.value.name, info.value.version, info.value.highest) == ("PartitionChangeRecord", 9, 2)
    assert "PartitionChangeRecord version 9 is not supported" in str(info.value)


def test_unknown_api_key_frame_version_and_garbage() -> None:
    with pytest.raises(UnknownRecordTypeError):
        decode_metadata_record(bytes([1, 99, 0]))
    good = encode_metadata_record(TopicRecord(name="t", topic_id=uuid.uuid4()), 0)
    with pytest.raises(MetadataParseError, match="frame version 0"):
        decode_metadata_record(b"\x00" + good[1:])
    with pytest.raises(MetadataParseError, match="unknown metadata record frame version 2"):
        decode_metadata_record(b"\x02" + good[1:])
    with pytest.raises(MetadataParseError, match="garbage"):
        decode_metadata_record(good + b"\x00")


@pytest.mark.parametrize(("cls", "version"), CASES, ids=[f"{c.__name__}-v{v}" for c, v in CASES])
def test_every_truncation_raises(cls: type[Message], version: int) -> None:
    body = bytes(encode(sample(cls, version), version))
    for cut in range(len(body)):
        with pytest.raises(MetadataParseError):
            _message, end = decode(cls, version, body[:cut])
            # a prefix that happens to parse must not be mistaken for the whole record
            if end != cut:
                raise MetadataParseError("not all consumed")


def test_nested_structs_and_json_names() -> None:
    voters = VotersRecord(version=0, voters=(VotersRecord.Voter(
        voter_id=1, voter_directory_id=uuid.UUID(int=5),
        endpoints=(VotersRecord.Voter.Endpoint(name="CONTROLLER", host="localhost", port=9093),),
        kraft_version_feature=VotersRecord.Voter.KRaftVersionFeature(min_supported_version=0,
                                                                     max_supported_version=1)),))
    assert voters.to_json(0) == {"version": 0, "voters": [{
        "voterId": 1, "voterDirectoryId": "AAAAAAAAAAAAAAAAAAAABQ",
        "endpoints": [{"name": "CONTROLLER", "host": "localhost", "port": 9093}],
        "kRaftVersionFeature": {"minSupportedVersion": 0, "maxSupportedVersion": 1}}]}
    assert KRaftVersionRecord(version=0, kraft_version=1).to_json(0) == {"version": 0, "kRaftVersion": 1}
    broker = RegisterBrokerRecord(broker_id=3)
    assert "logDirs" not in broker.to_json(0) and "logDirs" in broker.to_json(3)
