"""__consumer_offsets record formats, Kafka's group -> partition rule, and rebuilding state by replay."""

from __future__ import annotations

from strom.coordinator.group import schemas
from strom.coordinator.group.results import CommitRequest, OffsetToCommit
from strom.protocol.errors import ErrorCode
from tests.coordinator.harness import Harness


def test_java_hash_and_partition_rule() -> None:
    # Values of java.lang.String#hashCode.
    assert schemas.java_string_hash("hello") == 99162322
    assert schemas.java_string_hash("polygenelubricants") == -(2**31)
    assert schemas.java_string_hash("") == 0
    assert schemas.partition_for("polygenelubricants", 50) == 0  # Utils.abs(MIN_VALUE) is 0
    assert schemas.partition_for("hello", 50) == 99162322 % 50


def test_offset_records_match_kafka_layout() -> None:
    key = schemas.encode_offset_key("g", "t", 3)
    assert key == b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x03"
    value = schemas.encode_offset_value(schemas.OffsetValue(42, 7, "m", 1000))
    assert value == (
        b"\x00\x03"
        + (42).to_bytes(8, "big")
        + (7).to_bytes(4, "big")
        + b"\x00\x01m"
        + (1000).to_bytes(8, "big")
    )
    assert schemas.decode_key(key) == schemas.OffsetKey("g", "t", 3)
    assert schemas.decode_offset_value(value) == schemas.OffsetValue(42, 7, "m", 1000)


def test_group_value_round_trip() -> None:
    member = schemas.MemberValue("m-1", "inst", "client", "/127.0.0.1", 30000, 10000, b"sub", b"asg")
    value = schemas.GroupValue("consumer", 5, "range", "m-1", 123, [member])
    assert schemas.decode_group_value(schemas.encode_group_value(value)) == value
    assert schemas.decode_key(schemas.encode_group_key("g")) == schemas.GroupKey("g")


def test_subscribed_topics_parse_consumer_protocol() -> None:
    sub = b"\x00\x01\x00\x00\x00\x02\x00\x01a\x00\x02bb\xff\xff\xff\xff"
    assert schemas.subscribed_topics(sub) == {"a", "bb"}
    assert schemas.subscribed_topics(b"\x00") is None


def test_replay_restores_groups_and_offsets() -> None:
    h = Harness()
    (r,) = h.form_group(1)
    done: list[list[ErrorCode]] = []
    req = CommitRequest("g", r.generation_id, r.member_id, None, [OffsetToCommit("t", 0, 11, 2, "x")])
    h.core.commit_offsets(req, h.now, done.append)
    simple = CommitRequest("solo", -1, "", None, [OffsetToCommit("t", 1, 5)])
    h.core.commit_offsets(simple, h.now, done.append)
    assert done == [[ErrorCode.none], [ErrorCode.none]]
    records = [rec for _p, batch in h.sink.appended for rec in batch]

    fresh = Harness()
    for p in range(fresh.config.num_partitions):
        fresh.core.unload(p)
        fresh.core.begin_loading(p)
    assert fresh.core.fetch_offsets("g", None)[0] is ErrorCode.coordinator_load_in_progress
    for key, value in records:
        fresh.core.load_record(fresh.core.partition_for(schemas.decode_key(key).group), key, value)
    for p in range(fresh.config.num_partitions):
        fresh.core.finish_loading(p, fresh.now)
    err, fetched = fresh.core.fetch_offsets("g", [("t", 0), ("t", 9)])
    assert err is ErrorCode.none
    assert [(f.offset, f.leader_epoch, f.metadata) for f in fetched] == [(11, 2, "x"), (-1, -1, "")]
    group = fresh.core.groups["g"]
    assert group.state.value == "Stable" and group.generation_id == r.generation_id
    assert list(group.members) == [r.member_id]
    assert fresh.core.fetch_offsets("solo", [("t", 1)])[1][0].offset == 5
    # The restored member keeps its place: a heartbeat of its generation is accepted.
    assert fresh.heartbeat(r.member_id, r.generation_id) is ErrorCode.none


def test_commit_errors_and_expiry() -> None:
    h = Harness(offsets_retention_ms=60000, offsets_retention_check_interval_ms=1000)
    (r,) = h.form_group(1)
    out: list[list[ErrorCode]] = []

    def commit(gen: int, member: str, metadata: str = "") -> ErrorCode:
        out.clear()
        req = CommitRequest("g", gen, member, None, [OffsetToCommit("t", 0, 1, -1, metadata)])
        h.core.commit_offsets(req, h.now, out.append)
        return out[0][0]

    assert commit(r.generation_id + 1, r.member_id) is ErrorCode.illegal_generation
    assert commit(r.generation_id, "ghost") is ErrorCode.unknown_member_id
    assert commit(r.generation_id, r.member_id, "x" * 5000) is ErrorCode.offset_metadata_too_large
    assert commit(r.generation_id, r.member_id) is ErrorCode.none
    out.clear()
    h.core.commit_offsets(
        CommitRequest("nogroup", 3, "m", None, [OffsetToCommit("t", 0, 1)]), h.now, out.append
    )
    assert out[0] == [ErrorCode.illegal_generation]
    # Offsets of a Stable group on a subscribed topic ("t") never expire.
    for _ in range(30):
        h.advance(4000)
        assert h.heartbeat(r.member_id, r.generation_id) is ErrorCode.none
    assert h.core.fetch_offsets("g", [("t", 0)])[1][0].offset == 1
    h.core.leave("g", [(r.member_id, None)], h.now)
    assert h.state() == "Empty"
    h.advance(59000)
    assert h.core.fetch_offsets("g", [("t", 0)])[1][0].offset == 1
    h.advance(2000)  # retention counted from when the group became empty
    assert h.core.fetch_offsets("g", [("t", 0)])[1][0].offset == -1
    assert "g" not in h.core.groups
    tombstones = [rec for _p, batch in h.sink.appended for rec in batch if rec[1] is None]
    assert len(tombstones) == 2  # the offset and the group


def test_offset_delete_rules() -> None:
    h = Harness()
    (r,) = h.form_group(1)
    out: list[list[ErrorCode]] = []
    for topic in ("t", "other"):
        req = CommitRequest("g", r.generation_id, r.member_id, None, [OffsetToCommit(topic, 0, 4)])
        h.core.commit_offsets(req, h.now, out.append)
    answers: list[tuple[ErrorCode, list[ErrorCode]]] = []
    h.core.delete_offsets("g", [("t", 0), ("other", 0)], h.now, lambda t, e: answers.append((t, e)))
    assert answers == [(ErrorCode.none, [ErrorCode.group_subscribed_to_topic, ErrorCode.none])]
    assert h.core.fetch_offsets("g", [("other", 0)])[1][0].offset == -1
    assert h.core.fetch_offsets("g", [("t", 0)])[1][0].offset == 4
    answers.clear()
    h.core.delete_offsets("missing", [("t", 0)], h.now, lambda t, e: answers.append((t, e)))
    assert answers == [(ErrorCode.group_id_not_found, [])]
