"""Members leaving consumer groups (KIP-848): by heartbeat, by session timeout, by rebalance timeout.

- Member epoch -1 leaves for good: the member's records get tombstones (current assignment, target
  assignment, subscription), a regex no other member uses is dropped, and the group epoch moves so the
  next heartbeat of any member computes a new target assignment. The answer carries epoch -1.
- Member epoch -2 is a static member (group.instance.id) leaving temporarily: it stays in the group with
  epoch -2 and keeps its partitions, so that the same instance id rejoining within the session timeout
  takes them back without a rebalance. The answer carries epoch -2.
- The last member using the consumer protocol leaving a group whose other members are classic ones turns
  the group back into a classic group (`migration`, KIP-848's online downgrade).
- group.consumer.session.timeout.ms (a classic member: its own session timeout) without a heartbeat fences
  the member (as leaving for good); so does
  the member's rebalance timeout when it has not revoked what it was asked to since it was asked.
"""

from __future__ import annotations

from strom.coordinator.consumer import records as rec
from strom.coordinator.consumer.base import REBALANCE, SESSION
from strom.coordinator.consumer.group import ConsumerGroup
from strom.coordinator.consumer.member import LEAVE_GROUP_STATIC_MEMBER_EPOCH, ConsumerMember, MemberState
from strom.coordinator.consumer.migration import ConsumerMigration
from strom.coordinator.consumer.results import HeartbeatRequest, HeartbeatResult
from strom.coordinator.group.base import Record
from strom.protocol.errors import ErrorCode, KafkaError


class ConsumerDepartures(ConsumerMigration):
    def _leave(self, req: HeartbeatRequest, now_ms: int) -> tuple[list[Record], HeartbeatResult]:
        group = self.consumer_groups.get(req.group_id)
        if group is None:
            if req.group_id in self.groups:
                raise KafkaError(
                    f"Group {req.group_id} is not a consumer group.", ErrorCode.group_id_not_found
                )
            raise KafkaError(f"Consumer group {req.group_id} not found.", ErrorCode.group_id_not_found)
        if req.instance_id is None:
            member = group.members.get(req.member_id)
            if member is None:
                raise KafkaError(
                    f"Member {req.member_id} is not a member of group {req.group_id}.",
                    ErrorCode.unknown_member_id,
                )
        else:
            member = group.static_member(req.instance_id)
            if member is None:
                raise KafkaError(f"Instance id {req.instance_id} is unknown.", ErrorCode.unknown_member_id)
            if member.member_id != req.member_id:
                raise KafkaError(
                    f"Static member {req.member_id} with instance id {req.instance_id} was fenced by member "
                    f"{member.member_id}.",
                    ErrorCode.fenced_instance_id,
                )
        result = HeartbeatResult(ErrorCode.none, member_id=req.member_id, member_epoch=req.member_epoch)
        if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            away = member.with_epoch(LEAVE_GROUP_STATIC_MEMBER_EPOCH)
            group.update_member(away)
            self.timers.cancel((REBALANCE, group.group_id, member.member_id, str(member.member_epoch)))
            return [self._current_assignment_record(group.group_id, away)], result
        return self._fence_or_downgrade(group, member, now_ms), result

    def _fence_or_downgrade(self, group: ConsumerGroup, member: ConsumerMember, now_ms: int) -> list[Record]:
        """The last member using the consumer protocol leaving a group of classic members turns it back
        into a classic group when the migration policy allows it; any other member is just removed."""
        if not member.uses_classic_protocol and self._can_downgrade(group, {member.member_id}):
            return self._downgrade(group, {member.member_id}, now_ms)
        return self._fence(group, member, now_ms)

    def _fence(self, group: ConsumerGroup, member: ConsumerMember, now_ms: int) -> list[Record]:
        """Remove a member and move the group epoch; the records to write."""
        self._cancel_member_timers(group.group_id, member)
        group.remove_member(member.member_id, now_ms)
        records = self._member_tombstones(group.group_id, member.member_id)
        if member.subscribed_topic_regex and not any(
            m.subscribed_topic_regex == member.subscribed_topic_regex for m in group.members.values()
        ):
            group.regexes.pop(member.subscribed_topic_regex, None)
            key = rec.member_key(rec.REGULAR_EXPRESSION, group.group_id, member.subscribed_topic_regex)
            records.append((key, None))
        group.metadata_hash = self._metadata_hash(group.subscribed_topics(), self.topics_view())
        group.group_epoch += 1
        records.append(self._epoch_record(group))
        return records

    def _on_consumer_deadline(self, key: tuple[str, ...], now_ms: int) -> None:
        kind, group_id, member_id = key[0], key[1], key[2]
        group = self.consumer_groups.get(group_id)
        member = None if group is None else group.members.get(member_id)
        if group is None or member is None:
            return
        if kind == SESSION:
            pass
        elif kind == REBALANCE:
            if member.member_epoch != int(key[3]) or member.state is not MemberState.UNREVOKED_PARTITIONS:
                return
        else:
            return
        records = self._fence_or_downgrade(group, member, now_ms)
        self._append(self.partition_for(group_id), records, lambda _error: None)
