"""Server-side assignors of consumer groups (KIP-848): `uniform` and `range` (group.consumer.assignors).

Both are pure functions from the members' subscriptions (topic ids), the partition counts and the current
target assignment to the next target assignment.

- `uniform` (Kafka's UniformAssignor) balances the number of partitions per member and is sticky: a
  member keeps the partitions it had as long as it still subscribes to them and holds no more than its
  share, so a rebalance moves as few partitions as it can. With identical subscriptions every member ends
  with floor or ceil of partitions / members; with different subscriptions partitions move from the
  fullest to the emptiest eligible member until no move narrows the gap.
- `range` (Kafka's RangeAssignor) gives, per topic, each subscribed member a contiguous range of
  partitions, members in member-id order, the first `partitions % members` getting one more; it is
  sticky within each member's quota like Kafka's, so members keep their ranges when nothing changes.

Which member gets which partition can differ from Kafka's (its tie-breaks, and rack awareness, are not
reproduced); the balance and stickiness properties are the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping

from strom.coordinator.consumer.records import Partitions

Subscriptions = Mapping[str, frozenset[uuid.UUID]]  # member id -> subscribed topic ids
Assignor = Callable[[Subscriptions, Mapping[uuid.UUID, int], Mapping[str, Partitions]], dict[str, Partitions]]

TopicPartition = tuple[uuid.UUID, int]


def _freeze(out: dict[str, dict[uuid.UUID, set[int]]]) -> dict[str, Partitions]:
    return {m: {t: frozenset(ps) for t, ps in topics.items() if ps} for m, topics in out.items()}


def uniform(
    members: Subscriptions, partitions: Mapping[uuid.UUID, int], current: Mapping[str, Partitions]
) -> dict[str, Partitions]:
    if not members:
        return {}
    order = sorted(members)
    eligible: dict[TopicPartition, list[str]] = {}
    for topic_id in sorted(partitions, key=str):
        subs = [m for m in order if topic_id in members[m]]
        if subs:
            for p in range(partitions[topic_id]):
                eligible[(topic_id, p)] = subs
    owner: dict[TopicPartition, str] = {}
    counts = dict.fromkeys(order, 0)
    homogeneous = len({members[m] for m in order}) == 1
    total = len(eligible)
    quota_min, extra = divmod(total, len(order)) if homogeneous else (total, 0)
    # sticky part: keep what each member had, within its quota when subscriptions are the same
    full = 0
    for m in order:
        kept = sorted(
            (t, p) for t, ps in current.get(m, {}).items() for p in ps if m in eligible.get((t, p), ())
        )
        limit = quota_min + (1 if full < extra else 0) if homogeneous else len(kept)
        kept = kept[:limit]
        if homogeneous and len(kept) > quota_min:
            full += 1
        for tp in kept:
            if tp not in owner:
                owner[tp] = m
                counts[m] += 1
    # the rest goes to the least loaded eligible member
    for tp, subs in eligible.items():
        if tp in owner:
            continue
        best = min(subs, key=lambda m: (counts[m], order.index(m)))
        owner[tp] = best
        counts[best] += 1
    if not homogeneous:
        _rebalance(owner, counts, eligible, order)
    out: dict[str, dict[uuid.UUID, set[int]]] = {m: {} for m in order}
    for (t, p), m in owner.items():
        out[m].setdefault(t, set()).add(p)
    return _freeze(out)


def _rebalance(
    owner: dict[TopicPartition, str],
    counts: dict[str, int],
    eligible: dict[TopicPartition, list[str]],
    order: list[str],
) -> None:
    """Move partitions from fuller to emptier eligible members while that narrows the gap by two or
    more (different subscriptions)."""
    moved = True
    while moved:
        moved = False
        for tp in sorted(owner, key=lambda x: (str(x[0]), x[1])):
            m = owner[tp]
            target = min(eligible[tp], key=lambda c: (counts[c], order.index(c)))
            if counts[m] - counts[target] > 1:
                owner[tp] = target
                counts[m] -= 1
                counts[target] += 1
                moved = True


def range_(
    members: Subscriptions, partitions: Mapping[uuid.UUID, int], current: Mapping[str, Partitions]
) -> dict[str, Partitions]:
    out: dict[str, dict[uuid.UUID, set[int]]] = {m: {} for m in members}
    for topic_id in sorted(partitions, key=str):
        subs = sorted(m for m in members if topic_id in members[m])
        if not subs:
            continue
        n = partitions[topic_id]
        base, extra = divmod(n, len(subs))
        quotas = {m: base + (1 if i < extra else 0) for i, m in enumerate(subs)}
        taken: set[int] = set()
        # sticky: a member keeps the partitions it had, up to its quota
        for m in subs:
            had = sorted(p for p in current.get(m, {}).get(topic_id, ()) if p < n)[: quotas[m]]
            if had:
                out[m][topic_id] = set(had)
                taken.update(had)
        free = [p for p in range(n) if p not in taken]
        for m in subs:
            have = out[m].setdefault(topic_id, set())
            while len(have) < quotas[m] and free:
                have.add(free.pop(0))
    return _freeze(out)


ASSIGNORS: dict[str, Assignor] = {"uniform": uniform, "range": range_}
