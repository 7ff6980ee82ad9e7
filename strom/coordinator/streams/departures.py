"""Members leaving streams groups (KIP-1071): by heartbeat, by session timeout, by rebalance timeout.

- Member epoch -1 leaves for good: the member's records get tombstones (current assignment, target
  assignment, metadata) and the group epoch moves, so the next heartbeat computes a new target. The
  answer carries epoch -1.
- Member epoch -2 is a static member leaving temporarily: it keeps its tasks with epoch -2 so that the
  same instance id rejoining within the session timeout takes them back.
- group.streams.session.timeout.ms without a heartbeat fences the member (as leaving for good); so does
  its rebalance timeout when it has not revoked what it was asked to.
"""

from __future__ import annotations

from strom.coordinator.group.base import Record
from strom.coordinator.streams.base import STREAMS_REBALANCE, STREAMS_SESSION, StreamsBase
from strom.coordinator.streams.group import (
    LEAVE_GROUP_STATIC_MEMBER_EPOCH,
    MemberState,
    StreamsGroup,
    StreamsMember,
)
from strom.coordinator.streams.heartbeat import StreamsHeartbeatRequest, StreamsHeartbeatResult
from strom.protocol.errors import ErrorCode, KafkaError


class StreamsDepartures(StreamsBase):
    def _streams_leave(
        self, req: StreamsHeartbeatRequest, now_ms: int
    ) -> tuple[list[Record], StreamsHeartbeatResult]:
        group = self.streams_groups.get(req.group_id)
        if group is None:
            if self._is_other_type(req.group_id):
                raise KafkaError(
                    f"Group {req.group_id} is not a streams group.", ErrorCode.group_id_not_found
                )
            raise KafkaError(f"Streams group {req.group_id} not found.", ErrorCode.group_id_not_found)
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
        result = StreamsHeartbeatResult(
            ErrorCode.none, member_id=req.member_id, member_epoch=req.member_epoch
        )
        if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            away = member.with_epoch(LEAVE_GROUP_STATIC_MEMBER_EPOCH)
            group.update_member(away)
            self.timers.cancel(
                (STREAMS_REBALANCE, group.group_id, member.member_id, str(member.member_epoch))
            )
            return [self._streams_assignment_record(group.group_id, away)], result
        return self._streams_fence(group, member, now_ms), result

    def _streams_fence(self, group: StreamsGroup, member: StreamsMember, now_ms: int) -> list[Record]:
        """Remove a member and move the group epoch; the records to write."""
        self._cancel_streams_timers(group.group_id, member)
        group.remove_member(member.member_id, now_ms)
        records = self._streams_member_tombstones(group.group_id, member.member_id)
        group.metadata_hash = self._metadata_hash(group.topics(), self.topics_view())
        group.group_epoch += 1
        records.append(self._streams_epoch_record(group))
        return records

    def _on_streams_deadline(self, key: tuple[str, ...], now_ms: int) -> None:
        kind, group_id, member_id = key[0], key[1], key[2]
        group = self.streams_groups.get(group_id)
        member = None if group is None else group.members.get(member_id)
        if group is None or member is None:
            return
        if kind == STREAMS_REBALANCE and (
            member.member_epoch != int(key[3]) or member.state is not MemberState.UNREVOKED_TASKS
        ):
            return
        if kind not in (STREAMS_SESSION, STREAMS_REBALANCE):
            return
        records = self._streams_fence(group, member, now_ms)
        self._append(self.partition_for(group_id), records, lambda _error: None)
