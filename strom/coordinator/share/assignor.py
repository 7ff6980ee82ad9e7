"""The share group assignor (KIP-932): Kafka 4.4's `simple` assignor's rules, balance first, then stickiness.

Unlike a consumer group, a share group may give one partition to several members. With M members and P
assignable partitions (the initialized partitions of the topics the members subscribe to), each partition
is shared by ceil(M / P) members, so with more partitions than members each partition has one member,
and with more members than partitions every member gets one and some partitions are shared by more:
- the assignments (ceil(M / P) x P of them) are spread over the members, whose counts differ by at most one
  (member i of the sorted member ids gets ceil(T (i + 1) / M) - ceil(T i / M) of the T assignments, the
  distribution Kafka's homogeneous builder uses);
- a member keeps what it had (its previous target) while the partition is still assignable to it, is not
  shared by more members than it should be, and the member is not over its count;
- the partitions still short of members go to the eligible members with the fewest assignments, under
  their count first, the partitions with the fewest eligible members first; a member subscribed to fewer
  topics than others can only take their partitions, so with such heterogeneous subscriptions the counts
  may differ by more than one (as in Kafka).
Which member gets which partition can differ from Kafka's (its tie-breaks follow hash-set order).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

__all__ = ["assign_share_partitions"]

Partitions = dict[uuid.UUID, frozenset[int]]
TopicPartition = tuple[uuid.UUID, int]


def _counts(total: int, members: int) -> list[int]:
    """How many of `total` assignments each of `members` members gets (differing by at most one)."""
    return [-(-total * (i + 1) // members) - -(-total * i // members) for i in range(members)]


def assign_share_partitions(
    subscriptions: Mapping[str, Sequence[uuid.UUID]],
    assignable: Mapping[uuid.UUID, frozenset[int]],
    previous: Mapping[str, Partitions],
) -> dict[str, Partitions]:
    """Each member's target: `subscriptions` are the members' subscribed topic ids, `assignable` the
    initialized partitions per topic id, `previous` the last target assignment."""
    members = sorted(subscriptions)
    if not members:
        return {}
    eligible: dict[TopicPartition, list[str]] = {}
    for member in members:
        for topic_id in subscriptions[member]:
            for p in sorted(assignable.get(topic_id, ())):
                eligible.setdefault((topic_id, p), []).append(member)
    partitions = sorted(eligible, key=lambda tp: (str(tp[0]), tp[1]))
    result: dict[str, set[TopicPartition]] = {m: set() for m in members}
    if not partitions:
        return {m: {} for m in members}
    sharing = -(-len(members) // len(partitions))
    quota = dict(zip(members, _counts(sharing * len(partitions), len(members)), strict=True))
    holders: dict[TopicPartition, set[str]] = {tp: set() for tp in partitions}

    # stickiness: keep previous assignments that still fit
    for member in members:
        kept = sorted(
            (t, p) for t, parts in previous.get(member, {}).items() for p in parts if (t, p) in eligible
        )
        for tp in kept:
            if member in eligible[tp] and len(holders[tp]) < sharing and len(result[member]) < quota[member]:
                holders[tp].add(member)
                result[member].add(tp)

    # balance: hand the partitions short of members to the least-loaded eligible members, the partitions
    # fewest members may take first (so heterogeneous subscriptions stay as balanced as they can)
    for tp in sorted(partitions, key=lambda tp: len(eligible[tp])):
        while len(holders[tp]) < min(sharing, len(eligible[tp])):
            candidates = [m for m in eligible[tp] if m not in holders[tp]]
            under = [m for m in candidates if len(result[m]) < quota[m]]
            chosen = min(under or candidates, key=lambda m: (len(result[m]), m))
            holders[tp].add(chosen)
            result[chosen].add(tp)

    out: dict[str, Partitions] = {}
    for member in members:
        by_topic: dict[uuid.UUID, set[int]] = {}
        for topic_id, p in result[member]:
            by_topic.setdefault(topic_id, set()).add(p)
        out[member] = {t: frozenset(ps) for t, ps in by_topic.items()}
    return out
