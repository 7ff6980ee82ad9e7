"""The reconciliation engine of KIP-848, as Kafka 4.4's CurrentAssignmentBuilder.

Given a member's current state, the target assignment for it (and its epoch), which partitions it says it
owns, and who owns every partition now, compute the member's next state:

- STABLE at an older epoch, or UNRELEASED_PARTITIONS: move towards the target.
- UNREVOKED_PARTITIONS: wait until the member no longer reports the partitions pending revocation, then
  move towards the target (at its current epoch; the epoch moves once nothing is left to revoke).
- Moving towards the target: keep assigned ∩ target; what the member has beyond the target is pending
  revocation, and if it still reports any of it the member stays at its epoch in UNREVOKED_PARTITIONS.
  Otherwise it takes the target epoch and the target partitions nobody else owns now (each stamped with
  that epoch, KIP-1251); target partitions still owned by another member stay out until released
  (UNRELEASED_PARTITIONS), so no partition ever has two owners.
- When the member's subscription changed, partitions of topics it no longer subscribes to are revoked at
  once even before the next target assignment.
- UNKNOWN (a state from a newer version): the member must come back with nothing owned, or be fenced.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from strom.coordinator.consumer.member import ConsumerMember, MemberState
from strom.coordinator.consumer.records import EpochAssignment, Partitions
from strom.protocol.errors import ErrorCode, KafkaError

Owned = dict[uuid.UUID, set[int]] | None  # what the member reports owning; None when not sent


class FencedMemberEpochError(KafkaError):
    code = ErrorCode.fenced_member_epoch


class Reconciler:
    def __init__(
        self,
        member: ConsumerMember,
        target_epoch: int,
        target: Partitions,
        partition_epoch: Callable[[uuid.UUID, int], int],
        owned: Owned,
        subscribed_topic_ids: set[uuid.UUID],
        subscription_changed: bool = False,
    ) -> None:
        self.member = member
        self.target_epoch = target_epoch
        self.target = target
        self.partition_epoch = partition_epoch
        self.owned = owned
        self.subscribed = subscribed_topic_ids
        self.subscription_changed = subscription_changed

    def build(self) -> ConsumerMember:
        m = self.member
        if m.state is MemberState.STABLE:
            if m.member_epoch != self.target_epoch:
                return self._next(m.member_epoch, m.assigned)
            if self.subscription_changed:
                return self._drop_unsubscribed(m.member_epoch, m.assigned)
            return m
        if m.state is MemberState.UNREVOKED_PARTITIONS:
            if self._owns_any(m.pending_revocation):
                if self.subscription_changed:
                    return self._drop_unsubscribed(m.member_epoch, m.assigned)
                return m
            return self._next(m.member_epoch, m.assigned)
        if m.state is MemberState.UNRELEASED_PARTITIONS:
            return self._next(m.member_epoch, m.assigned)
        if self.owned is None or any(self.owned.values()):
            raise FencedMemberEpochError(
                "The consumer group member is in a unknown state. The member must abandon all its "
                "partitions and rejoin."
            )
        return self._next(self.target_epoch, m.assigned)

    def _owns_any(self, assignment: EpochAssignment) -> bool:
        if self.owned is None:
            return True
        for topic_id, parts in self.owned.items():
            pending = assignment.get(topic_id)
            if pending and any(p in pending for p in parts):
                return True
        return False

    def _drop_unsubscribed(self, epoch: int, assigned: EpochAssignment) -> ConsumerMember:
        m = self.member
        if not self.subscribed and not m.pending_revocation:
            kept: EpochAssignment = {}
            pending: EpochAssignment = {t: dict(p) for t, p in assigned.items()}
        else:
            kept = {t: p for t, p in assigned.items() if t in self.subscribed}
            if len(kept) == len(assigned):
                return m
            pending = {t: dict(p) for t, p in m.pending_revocation.items()}
            for t, parts in assigned.items():
                if t not in self.subscribed:
                    pending.setdefault(t, {}).update(parts)
        if kept == assigned:
            return m
        if pending and self._owns_any(pending):
            return m.with_epoch(
                epoch, state=MemberState.UNREVOKED_PARTITIONS, assigned=kept, pending_revocation=pending
            )
        return m.with_epoch(epoch, assigned=kept)

    def _next(self, epoch: int, current: EpochAssignment) -> ConsumerMember:
        m = self.member
        unreleased = False
        new_assigned: EpochAssignment = {}
        new_pending: EpochAssignment = {}
        to_assign: dict[uuid.UUID, set[int]] = {}
        for topic_id in set(self.target) | set(current):
            target = self.target.get(topic_id, frozenset()) if topic_id in self.subscribed else frozenset()
            have = current.get(topic_id, {})
            kept = {p: e for p, e in have.items() if p in target}
            revoke = {p: e for p, e in have.items() if p not in target}
            mine_pending = m.pending_revocation.get(topic_id, {})
            assign = set()
            for p in target:
                if p in kept:
                    continue
                # a partition pending revocation from this very member is not someone else's
                if self.partition_epoch(topic_id, p) != -1 and p not in mine_pending:
                    unreleased = True
                else:
                    assign.add(p)
            if kept:
                new_assigned[topic_id] = kept
            if revoke:
                new_pending[topic_id] = revoke
            if assign:
                to_assign[topic_id] = assign
        if new_pending and self._owns_any(new_pending):
            return m.with_epoch(
                epoch,
                state=MemberState.UNREVOKED_PARTITIONS,
                assigned=new_assigned,
                pending_revocation=new_pending,
            )
        for topic_id, parts in to_assign.items():
            epochs = new_assigned.setdefault(topic_id, {})
            for p in parts:
                epochs[p] = self.target_epoch
        state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
        return m.with_epoch(self.target_epoch, state=state, assigned=new_assigned, pending_revocation={})
