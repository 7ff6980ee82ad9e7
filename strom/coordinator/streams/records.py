"""Kafka's __consumer_offsets records for streams groups (KIP-1071), written as Kafka 4.4 writes them.

Keys are an int16 record type followed by the key fields in the non-flexible encoding; values an int16
version (0 for every type here) followed by the flexible encoding (KIP-482). Types:

    17 StreamsGroupMetadata               (group)          epoch, metadata hash; tag 0 the validated
                                                           topology epoch (-1), tag 1 the last
                                                           assignment configs (num.standby.replicas)
    19 StreamsGroupMemberMetadata         (group, member)  instance, rack, client, rebalance timeout,
                                                           topology epoch, process id, user endpoint,
                                                           client tags
    20 StreamsGroupTargetAssignmentMetadata (group)        assignment epoch; tag 0 its timestamp
    21 StreamsGroupTargetAssignmentMember (group, member)  target active, standby and warm-up tasks
    22 StreamsGroupCurrentMemberAssignment (group, member) member epoch, previous epoch, state, the
                                                           three task kinds and the three pending
                                                           revocation; tag 0 of each active entry the
                                                           epochs at which its partitions were assigned
    23 StreamsGroupTopology               (group)          the topology the first member sent

(18, StreamsGroupPartitionMetadata, is gone in Kafka 4.4: the metadata hash replaced it.) Tasks are
{subtopology id: {partition: assignment epoch}}; entries are written sorted by subtopology id and
partition. A null value is a tombstone; unknown tagged fields are skipped when reading.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from strom.coordinator.consumer.records import _Reader, _strings, _tags
from strom.protocol.errors import CorruptRecordError
from strom.protocol.wire import EMPTY_TAGS, array_len, nullable_string, string

GROUP_METADATA = 17
MEMBER_METADATA = 19
TARGET_ASSIGNMENT_METADATA = 20
TARGET_ASSIGNMENT_MEMBER = 21
CURRENT_MEMBER_ASSIGNMENT = 22
TOPOLOGY = 23
STREAMS_RECORD_TYPES = frozenset(
    {GROUP_METADATA, MEMBER_METADATA, TARGET_ASSIGNMENT_METADATA, TARGET_ASSIGNMENT_MEMBER,
     CURRENT_MEMBER_ASSIGNMENT, TOPOLOGY}
)  # fmt: skip
_GROUP_KEYS = frozenset({GROUP_METADATA, TARGET_ASSIGNMENT_METADATA, TOPOLOGY})

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_U16 = struct.Struct(">H")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")

# subtopology id -> partition -> the epoch at which it was assigned (0 where no epoch is kept)
Tasks = dict[str, dict[int, int]]


@dataclass(frozen=True, slots=True)
class TaskSet:
    """Active, standby and warm-up tasks of one member (Kafka's TasksTuple)."""

    active: Tasks = field(default_factory=dict)
    standby: Tasks = field(default_factory=dict)
    warmup: Tasks = field(default_factory=dict)

    def is_empty(self) -> bool:
        return (
            not any(self.active.values()) and not any(self.standby.values()) and not any(self.warmup.values())
        )

    def kinds(self) -> tuple[Tasks, Tasks, Tasks]:
        return self.active, self.standby, self.warmup


EMPTY_TASKS = TaskSet()


@dataclass(frozen=True, slots=True)
class StreamsKey:
    type: int
    group: str
    member: str = ""


@dataclass(frozen=True, slots=True)
class GroupMetadataValue:
    epoch: int
    metadata_hash: int = 0
    validated_topology_epoch: int = -1
    last_assignment_configs: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True, slots=True)
class MemberMetadataValue:
    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    topology_epoch: int
    process_id: str
    user_endpoint: tuple[str, int] | None
    client_tags: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class CurrentAssignmentValue:
    member_epoch: int
    previous_member_epoch: int
    state: int
    assigned: TaskSet = EMPTY_TASKS
    pending_revocation: TaskSet = EMPTY_TASKS


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    partitions: int = 0
    replication_factor: int = 0
    configs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CopartitionGroup:
    source_topics: tuple[int, ...] = ()
    source_topic_regex: tuple[int, ...] = ()
    repartition_source_topics: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Subtopology:
    subtopology_id: str
    source_topics: tuple[str, ...] = ()
    source_topic_regex: tuple[str, ...] = ()
    state_changelog_topics: tuple[TopicInfo, ...] = ()
    repartition_sink_topics: tuple[str, ...] = ()
    repartition_source_topics: tuple[TopicInfo, ...] = ()
    copartition_groups: tuple[CopartitionGroup, ...] = ()


@dataclass(frozen=True, slots=True)
class TopologyValue:
    epoch: int
    subtopologies: tuple[Subtopology, ...]


# --- keys ----------------------------------------------------------------------------------------------


def _key_str(value: str) -> bytes:
    raw = value.encode()
    return _I16.pack(len(raw)) + raw


def group_key(record_type: int, group: str) -> bytes:
    return _I16.pack(record_type) + _key_str(group)


def member_key(record_type: int, group: str, member: str) -> bytes:
    return _I16.pack(record_type) + _key_str(group) + _key_str(member)


def decode_key(key: bytes | memoryview) -> StreamsKey | None:
    """The streams-group key, or None for a record of another group type."""
    r = _Reader(key)
    record_type = r.i16()
    if record_type not in STREAMS_RECORD_TYPES:
        return None
    group = r.str16()
    member = "" if record_type in _GROUP_KEYS else r.str16()
    return StreamsKey(record_type, group, member)


# --- values --------------------------------------------------------------------------------------------


def _key_values(pairs: tuple[tuple[str, str], ...]) -> bytes:
    return array_len(len(pairs), True) + b"".join(
        string(k, True) + string(v, True) + EMPTY_TAGS for k, v in pairs
    )


def _tasks(tasks: Tasks, with_epochs: bool) -> bytes:
    entries = [(s, sorted(p)) for s, p in sorted(tasks.items()) if p]
    out = bytearray(array_len(len(entries), True))
    for subtopology, parts in entries:
        out += string(subtopology, True) + array_len(len(parts), True) + b"".join(_I32.pack(p) for p in parts)
        if with_epochs:
            epochs = array_len(len(parts), True) + b"".join(_I32.pack(tasks[subtopology][p]) for p in parts)
            out += _tags({0: epochs})
        else:
            out += EMPTY_TAGS
    return bytes(out)


def encode_group_metadata(value: GroupMetadataValue) -> bytes:
    tags: dict[int, bytes] = {}
    if value.validated_topology_epoch != -1:
        tags[0] = _I32.pack(value.validated_topology_epoch)
    if value.last_assignment_configs is not None:
        tags[1] = _key_values(value.last_assignment_configs)
    return _I16.pack(0) + _I32.pack(value.epoch) + _I64.pack(value.metadata_hash) + _tags(tags)


def encode_member_metadata(value: MemberMetadataValue) -> bytes:
    if value.user_endpoint is None:
        endpoint = _I8.pack(-1)
    else:
        host, port = value.user_endpoint
        endpoint = _I8.pack(1) + string(host, True) + _U16.pack(port) + EMPTY_TAGS
    return b"".join(
        (
            _I16.pack(0),
            nullable_string(value.instance_id, True),
            nullable_string(value.rack_id, True),
            string(value.client_id, True),
            string(value.client_host, True),
            _I32.pack(value.rebalance_timeout_ms),
            _I32.pack(value.topology_epoch),
            string(value.process_id, True),
            endpoint,
            _key_values(value.client_tags),
            EMPTY_TAGS,
        )
    )


def encode_target_metadata(assignment_epoch: int, timestamp: int) -> bytes:
    tags = {0: _I64.pack(timestamp)} if timestamp != 0 else {}
    return _I16.pack(0) + _I32.pack(assignment_epoch) + _tags(tags)


def encode_target_member(tasks: TaskSet) -> bytes:
    return _I16.pack(0) + b"".join(_tasks(t, False) for t in tasks.kinds()) + EMPTY_TAGS


def encode_current_assignment(value: CurrentAssignmentValue) -> bytes:
    a, p = value.assigned, value.pending_revocation
    return b"".join(
        (
            _I16.pack(0),
            _I32.pack(value.member_epoch),
            _I32.pack(value.previous_member_epoch),
            _I8.pack(value.state),
            # only active tasks carry assignment epochs (they fence zombie offset commits)
            _tasks(a.active, True),
            _tasks(a.standby, False),
            _tasks(a.warmup, False),
            _tasks(p.active, False),
            _tasks(p.standby, False),
            _tasks(p.warmup, False),
            EMPTY_TAGS,
        )
    )


def _topic_info(t: TopicInfo) -> bytes:
    return (
        string(t.name, True)
        + _I32.pack(t.partitions)
        + _I16.pack(t.replication_factor)
        + _key_values(t.configs)
        + EMPTY_TAGS
    )


def _int16s(values: tuple[int, ...]) -> bytes:
    return array_len(len(values), True) + b"".join(_I16.pack(v) for v in values)


def encode_topology(value: TopologyValue) -> bytes:
    out = bytearray(_I16.pack(0) + _I32.pack(value.epoch) + array_len(len(value.subtopologies), True))
    for s in value.subtopologies:
        out += string(s.subtopology_id, True)
        out += _strings(s.source_topics) + _strings(s.source_topic_regex)
        out += array_len(len(s.state_changelog_topics), True) + b"".join(
            map(_topic_info, s.state_changelog_topics)
        )
        out += _strings(s.repartition_sink_topics)
        out += array_len(len(s.repartition_source_topics), True)
        out += b"".join(map(_topic_info, s.repartition_source_topics))
        out += array_len(len(s.copartition_groups), True)
        for g in s.copartition_groups:
            out += _int16s(g.source_topics) + _int16s(g.source_topic_regex)
            out += _int16s(g.repartition_source_topics) + EMPTY_TAGS
        out += EMPTY_TAGS
    return bytes(out + EMPTY_TAGS)


# --- reading -------------------------------------------------------------------------------------------


def _version0(r: _Reader, what: str) -> None:
    version = r.i16()
    if version != 0:
        raise CorruptRecordError(f"unknown {what} version {version}")


def _read_key_values(r: _Reader) -> tuple[tuple[str, str], ...]:
    out = []
    for _ in range(r.count()):
        k, v = r.str(), r.str()
        r.tags()
        out.append((k, v))
    return tuple(out)


def _read_tasks(r: _Reader, default_epoch: int) -> Tasks:
    out: Tasks = {}
    for _ in range(r.count()):
        subtopology = r.str()
        parts = [r.i32() for _ in range(r.count())]
        tags = r.tags()
        epochs = [default_epoch] * len(parts)
        if 0 in tags and tags[0] != b"\x00":
            t = _Reader(tags[0])
            read = [t.i32() for _ in range(t.count())]
            if len(read) == len(parts):
                epochs = read
        out[subtopology] = dict(zip(parts, epochs, strict=True))
    return out


def decode_group_metadata(value: bytes | memoryview) -> GroupMetadataValue:
    r = _Reader(value)
    _version0(r, "StreamsGroupMetadataValue")
    epoch, metadata_hash = r.i32(), r.i64()
    tags = r.tags()
    validated = _I32.unpack(tags[0])[0] if 0 in tags else -1
    configs = _read_key_values(_Reader(tags[1])) if 1 in tags and tags[1] != b"\x00" else None
    return GroupMetadataValue(epoch, metadata_hash, validated, configs)


def decode_member_metadata(value: bytes | memoryview) -> MemberMetadataValue:
    r = _Reader(value)
    _version0(r, "StreamsGroupMemberMetadataValue")
    instance_id, rack_id = r.nstr(), r.nstr()
    client_id, client_host = r.str(), r.str()
    rebalance_timeout, topology_epoch = r.i32(), r.i32()
    process_id = r.str()
    endpoint = None
    if r.i8() >= 0:
        host = r.str()
        port = int(_U16.unpack(r.take(2))[0])
        r.tags()
        endpoint = (host, port)
    tags = _read_key_values(r)
    return MemberMetadataValue(
        instance_id,
        rack_id,
        client_id,
        client_host,
        rebalance_timeout,
        topology_epoch,
        process_id,
        endpoint,
        tags,
    )


def decode_target_metadata(value: bytes | memoryview) -> tuple[int, int]:
    r = _Reader(value)
    _version0(r, "StreamsGroupTargetAssignmentMetadataValue")
    epoch = r.i32()
    tags = r.tags()
    return epoch, (_I64.unpack(tags[0])[0] if 0 in tags else 0)


def decode_target_member(value: bytes | memoryview) -> TaskSet:
    r = _Reader(value)
    _version0(r, "StreamsGroupTargetAssignmentMemberValue")
    return TaskSet(_read_tasks(r, 0), _read_tasks(r, 0), _read_tasks(r, 0))


def decode_current_assignment(value: bytes | memoryview) -> CurrentAssignmentValue:
    r = _Reader(value)
    _version0(r, "StreamsGroupCurrentMemberAssignmentValue")
    epoch, previous, state = r.i32(), r.i32(), r.i8()
    # records without assignment epochs: the member epoch stands in for them
    assigned = TaskSet(_read_tasks(r, epoch), _read_tasks(r, 0), _read_tasks(r, 0))
    pending = TaskSet(_read_tasks(r, 0), _read_tasks(r, 0), _read_tasks(r, 0))
    return CurrentAssignmentValue(epoch, previous, state, assigned, pending)


def _read_topic_info(r: _Reader) -> TopicInfo:
    name = r.str()
    partitions = r.i32()
    replication = r.i16()
    configs = _read_key_values(r)
    r.tags()
    return TopicInfo(name, partitions, replication, configs)


def decode_topology(value: bytes | memoryview) -> TopologyValue:
    r = _Reader(value)
    _version0(r, "StreamsGroupTopologyValue")
    epoch = r.i32()
    subtopologies = []
    for _ in range(r.count()):
        sid = r.str()
        sources = tuple(r.str() for _ in range(r.count()))
        regexes = tuple(r.str() for _ in range(r.count()))
        changelogs = tuple(_read_topic_info(r) for _ in range(r.count()))
        sinks = tuple(r.str() for _ in range(r.count()))
        repartition = tuple(_read_topic_info(r) for _ in range(r.count()))
        groups = []
        for _ in range(r.count()):
            a = tuple(r.i16() for _ in range(r.count()))
            b = tuple(r.i16() for _ in range(r.count()))
            c = tuple(r.i16() for _ in range(r.count()))
            r.tags()
            groups.append(CopartitionGroup(a, b, c))
        r.tags()
        subtopologies.append(
            Subtopology(sid, sources, regexes, changelogs, sinks, repartition, tuple(groups))
        )
    return TopologyValue(epoch, tuple(subtopologies))
