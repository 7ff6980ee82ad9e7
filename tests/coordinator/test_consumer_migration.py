"""Online migration between classic and consumer groups (KIP-848, group.consumer.migration.policy) in the
sans-io core: upgrade when a consumer-protocol member joins a classic group, classic members served from
the consumer group's state, downgrade when the last consumer-protocol member leaves; offsets kept."""

from __future__ import annotations

from strom.coordinator.consumer import classic_protocol as cp
from strom.coordinator.consumer import records as rec
from strom.coordinator.group import schemas
from strom.coordinator.group.results import CommitRequest, JoinResult, OffsetToCommit, SyncResult
from strom.protocol.errors import ErrorCode
from tests.coordinator.consumer_harness import ConsumerHarness

E = ErrorCode


def _classic_group(h: ConsumerHarness) -> tuple[list[JoinResult], int]:
    """Two classic members own t-0,1 and t-2,3; returns their join results and the generation."""
    boxes = [h.join(client=f"c{i}") for i in range(2)]
    h.advance(0)
    results: list[JoinResult] = [b.results[-1] for b in boxes]
    gen, leader = results[0].generation_id, results[0].leader_id
    ids = [r.member_id for r in results]
    plan = {
        ids[0]: cp.encode_assignment([("t", [0, 1])], 1),
        ids[1]: cp.encode_assignment([("t", [2, 3])], 1),
    }
    for r in results:
        box = h.sync(r.member_id, gen, plan if r.member_id == leader else {})
        assert box.value.error is E.none
    return results, gen


def _commit(h: ConsumerHarness, member: str, generation: int, offset: int) -> list[ErrorCode]:
    out: list[list[ErrorCode]] = []
    req = CommitRequest("g", generation, member, None, [OffsetToCommit("t", 0, offset, -1, "")])
    h.core.commit_offsets(req, h.now, out.append)
    return out[0]


def _types(records: list[tuple[bytes, bytes | None]]) -> list[tuple[int, bool]]:
    return [(int.from_bytes(k[:2], "big"), v is not None) for k, v in records]


def test_upgrade_keeps_classic_members_and_offsets() -> None:
    h = ConsumerHarness({"t": 4})
    (a, b), gen = _classic_group(h)
    assert _commit(h, a.member_id, gen, 42) == [E.none]
    c = h.hb("c", 0)
    assert c.error is E.none
    assert "g" not in h.core.groups
    g = h.group()
    assert set(g.members) == {a.member_id, b.member_id, "c"}
    assert g.members[a.member_id].uses_classic_protocol and not g.members["c"].uses_classic_protocol
    assert g.members[a.member_id].member_epoch == gen
    # c waits for partitions the classic members still own
    assert c.member_epoch == gen + 1 and h.named(c) == {}
    # Kafka's records: the classic group's tombstone, then the consumer group's records
    types = _types(h.sink.appended[-1][1])
    assert types[0] == (schemas.GROUP_KEY_VERSION, False)
    assert types[1:8] == [
        (rec.MEMBER_METADATA, True), (rec.MEMBER_METADATA, True), (rec.GROUP_METADATA, True),
        (rec.TARGET_ASSIGNMENT_MEMBER, True), (rec.TARGET_ASSIGNMENT_MEMBER, True),
        (rec.TARGET_ASSIGNMENT_METADATA, True), (rec.CURRENT_MEMBER_ASSIGNMENT, True),
    ]
    # the classic members are told to rebalance, rejoin (eagerly, owning nothing) and get their share
    assert h.heartbeat(a.member_id, gen) is E.rebalance_in_progress
    assert h.heartbeat(a.member_id, gen - 1) is E.illegal_generation
    joined = h.join(a.member_id).value
    assert (joined.error, joined.generation_id, joined.leader_id, joined.members) == (E.none, gen + 1, "", [])
    assert joined.protocol_type == "consumer" and joined.protocol_name == "range"
    synced: SyncResult = h.sync(a.member_id, gen + 1).value
    mine = cp.decode_assignment(synced.assignment)
    assert synced.error is E.none and mine and set(mine["t"]) <= {0, 1}
    assert h.heartbeat(a.member_id, gen + 1) is E.none
    rejoined_b = h.join(b.member_id).value
    synced_b: SyncResult = h.sync(b.member_id, rejoined_b.generation_id).value
    c2 = h.hb("c", c.member_epoch, owned={})
    owners = [set(mine["t"]), set(cp.decode_assignment(synced_b.assignment).get("t", ()))]
    owners.append(set((h.named(c2) or {}).get("t", ())))
    # no partition has two owners
    assert sum(map(len, owners)) == len(set().union(*owners))
    # a classic member commits with its generation = member epoch; its old generation is refused
    assert _commit(h, a.member_id, gen + 1, 43) == [E.none]
    assert _commit(h, a.member_id, gen, 44) == [E.illegal_generation]
    assert g.offsets[("t", 0)].offset == 43


def test_downgrade_when_last_consumer_member_leaves() -> None:
    h = ConsumerHarness({"t": 4})
    (a, b), gen = _classic_group(h)
    _commit(h, a.member_id, gen, 7)
    c = h.hb("c", 0)
    left = h.hb("c", -1)
    assert left.error is E.none and left.member_epoch == -1
    assert "g" not in h.core.consumer_groups
    classic = h.core.groups["g"]
    assert classic.state.value == "PreparingRebalance" and set(classic.members) == {a.member_id, b.member_id}
    assert classic.offsets[("t", 0)].offset == 7
    types = _types(h.sink.appended[-1][1])
    assert types[-1] == (schemas.GROUP_KEY_VERSION, True) and all(not live for _, live in types[:-1])
    value = schemas.decode_group_value(h.sink.appended[-1][1][-1][1] or b"")
    assert value.generation == c.member_epoch and value.protocol == "range"
    # the classic members rejoin and the classic protocol takes over again
    boxes = [h.join(a.member_id), h.join(b.member_id)]
    h.advance(0)
    assert all(box.value.error is E.none for box in boxes)
    assert boxes[0].value.generation_id == c.member_epoch + 1


def test_session_timeout_of_last_consumer_member_downgrades() -> None:
    h = ConsumerHarness({"t": 4}, session_timeout_ms=45000)
    (a, _b), gen = _classic_group(h)
    h.hb("c", 0)
    # the classic members keep their own (10 s) session timeouts: they heartbeat, c does not
    for _ in range(4):
        h.advance(9000)
        assert h.heartbeat(a.member_id, gen) is E.rebalance_in_progress
        h.heartbeat(_b.member_id, gen)
    assert "g" in h.core.consumer_groups
    h.advance(9000)
    assert "g" in h.core.groups and "g" not in h.core.consumer_groups


def test_policy_disabled_refuses_upgrade() -> None:
    h = ConsumerHarness({"t": 4}, migration_policy="disabled")
    _classic_group(h)
    c = h.hb("c", 0)
    assert (c.error, c.message) == (E.group_id_not_found, "Group g is not a consumer group.")
    assert "g" in h.core.groups


def test_upgrade_only_policy_does_not_downgrade() -> None:
    h = ConsumerHarness({"t": 4}, migration_policy="upgrade")
    _classic_group(h)
    h.hb("c", 0)
    h.hb("c", -1)
    g = h.group()
    assert len(g.members) == 2 and all(m.uses_classic_protocol for m in g.members.values())


def test_classic_member_joins_consumer_group() -> None:
    h = ConsumerHarness({"t": 4})
    c = h.hb("c", 0)
    assert h.named(c) == {"t": [0, 1, 2, 3]}
    need = h.join(v4=True).value
    assert need.error is E.member_id_required
    joined = h.join(need.member_id).value
    assert joined.error is E.none and joined.generation_id == c.member_epoch + 1
    # nothing free yet: c must revoke first; the classic member is told to rejoin once it is free
    assert cp.decode_assignment(h.sync(need.member_id, joined.generation_id).value.assignment) == {}
    assert h.heartbeat(need.member_id, joined.generation_id) is E.none
    c2 = h.hb("c", c.member_epoch, owned={"t": [0, 1, 2, 3]})
    kept = h.named(c2)["t"]  # type: ignore[index]
    h.hb("c", c.member_epoch, owned={"t": kept})
    assert h.heartbeat(need.member_id, joined.generation_id) is E.rebalance_in_progress
    again = h.join(need.member_id).value
    got = cp.decode_assignment(h.sync(need.member_id, again.generation_id).value.assignment)["t"]
    assert sorted(set(got) | set(kept)) == [0, 1, 2, 3] and not set(got) & set(kept)
    # another protocol type cannot join
    assert h.join(protocol_type="connect").value.error is E.inconsistent_group_protocol
    # LeaveGroup removes the classic member
    err, per_member = h.core.leave("g", [(need.member_id, None)], h.now)
    assert err is E.none and per_member[0][2] is E.none and need.member_id not in h.group().members


def test_classic_member_metadata_round_trips_and_replays() -> None:
    classic = rec.ClassicMemberMetadata(10000, (("range", b"\x00\x01"), ("roundrobin", b"")))
    value = rec.MemberMetadataValue(None, None, "c", "/h", ("t",), "", 30000, None, classic)
    assert rec.decode_member_metadata(rec.encode_member_metadata(value)) == value
    h = ConsumerHarness({"t": 4})
    _classic_group(h)
    h.hb("c", 0)
    appended = [r for _, batch in h.sink.appended for r in batch]
    fresh = ConsumerHarness({"t": 4})
    p = fresh.core.partition_for("g")
    fresh.core.unload(p)
    fresh.core.begin_loading(p)
    for key, val in appended:
        fresh.core.load_record(p, key, val)
    fresh.core.finish_loading(p, fresh.now)
    g = fresh.group()
    assert sum(m.uses_classic_protocol for m in g.members.values()) == 2
    assert "g" not in fresh.core.groups
