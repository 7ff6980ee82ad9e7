"""Classic members of a consumer group (KIP-848's online migration), as Kafka 4.4's GroupMetadataManager
serves JoinGroup, SyncGroup, Heartbeat and LeaveGroup for the ClassicGroupMember members of a
ConsumerGroup (classicGroupJoinToConsumerGroup and its siblings).

A classic consumer keeps speaking its protocol while the group is a consumer group; the coordinator answers
it from the consumer group's state:
- JoinGroup: the protocol type must be "consumer" and share a protocol with every other classic member
  (else INCONSISTENT_GROUP_PROTOCOL); JoinGroup v4+ without a member id gets MEMBER_ID_REQUIRED and a new
  id; group.consumer.max.size applies (GROUP_MAX_SIZE_REACHED). The subscription (topics, owned partitions,
  rack) of the member's first protocol becomes its consumer-group subscription, the session timeout and the
  protocols its classic metadata, and it is reconciled as a ConsumerGroupHeartbeat member would be. The
  answer, once the records are written, carries generation = the member epoch, the first protocol's name,
  no leader and no member list: every member is a follower and the coordinator is the assignor.
- SyncGroup: UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION (generation != member epoch),
  INCONSISTENT_GROUP_PROTOCOL, REBALANCE_IN_PROGRESS when the group epoch moved past the member (unless it
  still has partitions to revoke); else the member's assigned partitions as a ConsumerProtocolAssignment.
- Heartbeat: the same checks, then REBALANCE_IN_PROGRESS whenever the member must join again to move on:
  the group epoch is ahead of it, it has partitions to revoke, or partitions it waits for were released.
- LeaveGroup: the members leave as with member epoch -1.
OffsetCommit from a classic member checks its generation against the member epoch (ILLEGAL_GENERATION),
in `offsets`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from strom.coordinator.consumer import classic_protocol as cp
from strom.coordinator.consumer import records as rec
from strom.coordinator.consumer.departures import ConsumerDepartures
from strom.coordinator.consumer.group import ConsumerGroup, names_of
from strom.coordinator.consumer.heartbeat import ConsumerHeartbeats, new_member_id
from strom.coordinator.consumer.member import ConsumerMember, MemberState
from strom.coordinator.consumer.migration import CONSUMER_PROTOCOL_TYPE
from strom.coordinator.group.base import Record, append_error_code
from strom.coordinator.group.results import JoinRequest, JoinResult, SyncRequest, SyncResult
from strom.protocol.errors import CorruptRecordError, ErrorCode, KafkaError


class ClassicMembers(ConsumerDepartures, ConsumerHeartbeats):
    def _classic_target(self, group_id: str) -> ConsumerGroup | None:
        """The consumer group that answers a classic request for `group_id`: one with members."""
        group = self.consumer_groups.get(group_id)
        if group is None or not group.members:
            return None
        if self._status(group_id, allow_empty=False) is not ErrorCode.none:
            return None
        return group

    # --- JoinGroup -----------------------------------------------------------------------------------

    def join(self, req: JoinRequest, now_ms: int, respond: Callable[[JoinResult], None]) -> None:
        group = self._classic_target(req.group_id)
        if group is None:
            super().join(req, now_ms, respond)  # type: ignore[misc]
            return
        try:
            member_id, records, result = self._classic_join(group, req, now_ms)
        except KafkaError as exc:
            respond(JoinResult(exc.code, req.member_id))
            return
        if result.error is not ErrorCode.none or not records:
            respond(result)
            return

        def written(error: KafkaError | None) -> None:
            code = append_error_code(error)
            respond(result if code is ErrorCode.none else JoinResult(code, member_id))

        self._append(self.partition_for(req.group_id), records, written)

    def _classic_join(
        self, group: ConsumerGroup, req: JoinRequest, now_ms: int
    ) -> tuple[str, list[Record], JoinResult]:
        cfg = self.config
        if not cfg.min_session_timeout_ms <= req.session_timeout_ms <= cfg.max_session_timeout_ms:
            raise KafkaError("invalid session timeout", ErrorCode.invalid_session_timeout)
        if not self._supports_classic_protocols(group, req.protocol_type, req.protocols):
            raise KafkaError("inconsistent protocols", ErrorCode.inconsistent_group_protocol)
        try:
            sub = cp.decode_subscription(req.protocols[0][1])
        except CorruptRecordError:
            raise KafkaError("bad subscription", ErrorCode.inconsistent_group_protocol) from None
        unknown = req.member_id == ""
        member_id = req.member_id or new_member_id()
        if unknown and req.group_instance_id is None and req.require_known_member_id:
            return member_id, [], JoinResult(ErrorCode.member_id_required, member_id)
        records: list[Record] = []
        member = group.members.get(member_id)
        static = group.static_member(req.group_instance_id)
        if static is not None and static.member_id != member_id:
            if not unknown:
                raise KafkaError("fenced instance id", ErrorCode.fenced_instance_id)
            # a restarted static member: its old incarnation leaves, the new one joins in its place
            records += self._fence(group, static, now_ms)
        if member is None:
            if len(group.members) >= self.consumer_config.max_size:
                raise KafkaError("group is full", ErrorCode.group_max_size_reached)
            member = ConsumerMember(member_id)
        elif not member.uses_classic_protocol:
            raise KafkaError("not a classic member", ErrorCode.unknown_member_id)
        topics = self.topics_view()
        owned = {
            topics.by_name[t].topic_id: set(parts) for t, parts in sub.owned.items() if t in topics.by_name
        }
        updated = replace(
            member,
            instance_id=req.group_instance_id if req.group_instance_id is not None else member.instance_id,
            rack_id=sub.rack_id if sub.rack_id is not None else member.rack_id,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            server_assignor=None,
            subscribed_topic_names=sub.topics,
            subscribed_topic_regex="",
            client_id=req.client_id,
            client_host=req.client_host,
            classic=rec.ClassicMemberMetadata(req.session_timeout_ms, tuple(req.protocols)),
        )
        reconciled = self._apply_member(group, member, updated, owned, now_ms, records)
        self._schedule_classic_session(group.group_id, reconciled, now_ms)
        return member_id, records, JoinResult(
            ErrorCode.none,
            member_id,
            reconciled.member_epoch,
            CONSUMER_PROTOCOL_TYPE,
            req.protocols[0][0],
            "",
            [],
        )

    @staticmethod
    def _supports_classic_protocols(
        group: ConsumerGroup, protocol_type: str, protocols: list[tuple[str, bytes]]
    ) -> bool:
        """Kafka's ConsumerGroup.supportsClassicProtocols: protocol type "consumer" and a protocol every
        classic member supports."""
        if protocol_type != CONSUMER_PROTOCOL_TYPE or not protocols:
            return False
        classic = [m.classic for m in group.members.values() if m.classic is not None]
        if not classic:
            return True
        return any(all(name in {n for n, _ in c.protocols} for c in classic) for name, _ in protocols)

    # --- SyncGroup, Heartbeat ------------------------------------------------------------------------

    def _classic_member(
        self, group: ConsumerGroup, member_id: str, instance_id: str | None, generation_id: int
    ) -> ConsumerMember:
        member = group.members.get(member_id)
        if instance_id is not None:
            static = group.static_member(instance_id)
            if static is not None and static.member_id != member_id:
                raise KafkaError("fenced instance id", ErrorCode.fenced_instance_id)
        if member is None or not member.uses_classic_protocol:
            raise KafkaError("unknown member", ErrorCode.unknown_member_id)
        if generation_id != member.member_epoch:
            raise KafkaError("illegal generation", ErrorCode.illegal_generation)
        return member

    def sync(self, req: SyncRequest, now_ms: int, respond: Callable[[SyncResult], None]) -> None:
        group = self._classic_target(req.group_id)
        if group is None:
            super().sync(req, now_ms, respond)  # type: ignore[misc]
            return
        try:
            member = self._classic_member(group, req.member_id, req.group_instance_id, req.generation_id)
        except KafkaError as exc:
            respond(SyncResult(exc.code))
            return
        assert member.classic is not None
        protocol_name = member.classic.protocols[0][0]
        if (req.protocol_type is not None and req.protocol_type != CONSUMER_PROTOCOL_TYPE) or (
            req.protocol_name is not None and req.protocol_name != protocol_name
        ):
            respond(SyncResult(ErrorCode.inconsistent_group_protocol))
            return
        if group.group_epoch > member.member_epoch and member.state is not MemberState.UNREVOKED_PARTITIONS:
            respond(SyncResult(ErrorCode.rebalance_in_progress))
            return
        self._schedule_classic_session(group.group_id, member, now_ms)
        version = cp.subscription_version(member.classic.protocols[0][1])
        assignment = cp.encode_assignment(names_of(member.assigned, self.topics_view()), version)
        respond(SyncResult(ErrorCode.none, CONSUMER_PROTOCOL_TYPE, protocol_name, assignment))

    def heartbeat(
        self, group_id: str, generation_id: int, member_id: str, instance_id: str | None, now_ms: int
    ) -> ErrorCode:
        group = self._classic_target(group_id)
        if group is None:
            return super().heartbeat(group_id, generation_id, member_id, instance_id, now_ms)  # type: ignore[misc, no-any-return]
        try:
            member = self._classic_member(group, member_id, instance_id, generation_id)
        except KafkaError as exc:
            return exc.code
        self._schedule_classic_session(group_id, member, now_ms)
        released = member.state is MemberState.UNRELEASED_PARTITIONS and not _waiting_on_unreleased(
            group, member
        )
        revoking = member.state is MemberState.UNREVOKED_PARTITIONS
        if member.member_epoch < group.group_epoch or revoking or released:
            return ErrorCode.rebalance_in_progress
        return ErrorCode.none

    # --- LeaveGroup ----------------------------------------------------------------------------------

    def leave(
        self, group_id: str, members: Iterable[tuple[str, str | None]], now_ms: int
    ) -> tuple[ErrorCode, list[tuple[str, str | None, ErrorCode]]]:
        group = self._classic_target(group_id)
        if group is None:
            return super().leave(group_id, members, now_ms)  # type: ignore[misc, no-any-return]
        out: list[tuple[str, str | None, ErrorCode]] = []
        records: list[Record] = []
        for member_id, instance_id in members:
            if instance_id is not None:
                member = group.static_member(instance_id)
            else:
                member = group.members.get(member_id)
            if member is None:
                out.append((member_id, instance_id, ErrorCode.unknown_member_id))
            elif instance_id is not None and member_id and member.member_id != member_id:
                out.append((member_id, instance_id, ErrorCode.fenced_instance_id))
            else:
                if self.consumer_groups.get(group_id) is group:
                    records += self._fence_or_downgrade(group, member, now_ms)
                out.append((member_id, instance_id, ErrorCode.none))
        if records:
            self._append(self.partition_for(group_id), records, lambda _error: None)
        return ErrorCode.none, out


def _waiting_on_unreleased(group: ConsumerGroup, member: ConsumerMember) -> bool:
    """Whether a partition of the member's target it does not have yet is still owned by another member."""
    for topic_id, parts in group.target_of(member.member_id).items():
        have = member.assigned.get(topic_id, {})
        if any(p not in have and group.current_partition_epoch(topic_id, p) != -1 for p in parts):
            return True
    return False

