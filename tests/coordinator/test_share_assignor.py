"""The share group assignor: balance (ceil(M/P) members per partition, counts within one), stickiness,
and heterogeneous subscriptions."""

from __future__ import annotations

import uuid

import pytest

from strom.coordinator.share.assignor import assign_share_partitions

T1, T2 = uuid.UUID(int=1), uuid.UUID(int=2)


def _count(target: dict[uuid.UUID, frozenset[int]]) -> int:
    return sum(len(p) for p in target.values())


def _holders(assignment: dict[str, dict[uuid.UUID, frozenset[int]]]) -> dict[tuple[uuid.UUID, int], int]:
    holders: dict[tuple[uuid.UUID, int], int] = {}
    for target in assignment.values():
        for topic_id, parts in target.items():
            for p in parts:
                holders[(topic_id, p)] = holders.get((topic_id, p), 0) + 1
    return holders


@pytest.mark.parametrize(
    ("members", "partitions"), [(1, 1), (3, 1), (4, 16), (16, 4), (3, 2), (5, 7), (16, 1)]
)
def test_balanced_and_every_partition_shared_evenly(members: int, partitions: int) -> None:
    subs = {f"m{i}": [T1] for i in range(members)}
    out = assign_share_partitions(subs, {T1: frozenset(range(partitions))}, {})
    sharing = -(-members // partitions)
    assert _holders(out) == {(T1, p): sharing for p in range(partitions)}
    counts = [_count(t) for t in out.values()]
    assert max(counts) - min(counts) <= 1 and min(counts) >= 1


def test_a_joining_member_moves_as_little_as_possible() -> None:
    parts = {T1: frozenset(range(6))}
    before = assign_share_partitions({"a": [T1], "b": [T1]}, parts, {})
    after = assign_share_partitions({"a": [T1], "b": [T1], "c": [T1]}, parts, before)
    assert [_count(after[m]) for m in "abc"] == [2, 2, 2]
    kept = sum(len(after[m].get(T1, frozenset()) & before[m][T1]) for m in "ab")
    assert kept == 4  # only the two partitions the new member needs moved


def test_heterogeneous_subscriptions_only_get_their_topics() -> None:
    out = assign_share_partitions(
        {"a": [T1], "b": [T1, T2]}, {T1: frozenset({0, 1}), T2: frozenset({0, 1})}, {}
    )
    assert set(out["a"]) <= {T1}
    assert _holders(out) == {(T1, 0): 1, (T1, 1): 1, (T2, 0): 1, (T2, 1): 1}
    assert out == {"a": {T1: frozenset({0, 1})}, "b": {T2: frozenset({0, 1})}}


def test_no_assignable_partitions() -> None:
    assert assign_share_partitions({"a": [T1]}, {}, {}) == {"a": {}}
