"""Online migration between classic and consumer groups (KIP-848, `group.consumer.migration.policy`), as
Kafka 4.4's GroupMetadataManager converts them.

- Upgrade: a ConsumerGroupHeartbeat joining a classic group that has members converts it when the policy
  allows upgrades, the group uses the embedded consumer protocol (protocol type "consumer") and it is below
  group.consumer.max.size. Parked JoinGroup and SyncGroup requests are answered REBALANCE_IN_PROGRESS; each
  classic member becomes a consumer-group member that keeps its classic metadata, at member epoch = the
  classic generation, Stable, owning (and targeted with) the partitions of its last assignment. The group
  epoch and the target assignment epoch are the generation; the joining member then bumps the epoch as any
  new member does. Records: the classic group's tombstone, then the consumer group's records
  (subscriptions, epoch, target members, target epoch, current assignments), as Kafka writes them.
- Downgrade: when the last member using the consumer protocol leaves (or is fenced) and only classic
  members remain, the policy allows downgrades and the group fits group.max.size, the group becomes a
  classic group at generation = the group epoch, Stable, each member's assignment its target assignment in
  the ConsumerProtocol format, and a rebalance starts at once. Records: the consumer group's tombstones,
  then the classic group's metadata.

Committed offsets stay with the group id through both conversions (they are keyed by group, not by type).
"""

from __future__ import annotations

from strom.coordinator.consumer import classic_protocol as cp
from strom.coordinator.consumer import records as rec
from strom.coordinator.consumer.base import ConsumerBase
from strom.coordinator.consumer.group import ConsumerGroup, names_of
from strom.coordinator.consumer.member import ConsumerMember, MemberState
from strom.coordinator.group import schemas
from strom.coordinator.group.base import Record
from strom.coordinator.group.group import Group, GroupState
from strom.coordinator.group.member import Member
from strom.protocol.errors import CorruptRecordError, ErrorCode

CONSUMER_PROTOCOL_TYPE = "consumer"


class ConsumerMigration(ConsumerBase):
    # --- classic -> consumer -------------------------------------------------------------------------

    def _can_upgrade(self, classic: Group) -> bool:
        return (
            self.consumer_config.upgrade_enabled
            and classic.protocol_type == CONSUMER_PROTOCOL_TYPE
            and len(classic.members) < self.consumer_config.max_size
        )

    def _upgrade(self, classic: Group, now_ms: int, records: list[Record]) -> ConsumerGroup | None:
        """Convert a classic group with members; None (the group stays classic) if a member's metadata or
        assignment does not parse, where Kafka answers GROUP_ID_NOT_FOUND."""
        topics = self.topics_view()
        group = ConsumerGroup(classic.group_id, now_ms)
        group.group_epoch = group.assignment_epoch = classic.generation_id
        group.offsets = classic.offsets
        try:
            for m in classic.members.values():
                protocol = classic.protocol_name or m.protocols[0][0]
                sub = cp.decode_subscription(m.metadata_for(protocol))
                assigned = cp.decode_assignment(m.assignment)
                by_id = {
                    topics.by_name[t].topic_id: {p: classic.generation_id for p in parts}
                    for t, parts in assigned.items()
                    if t in topics.by_name and parts
                }
                member = ConsumerMember(
                    m.member_id,
                    instance_id=m.group_instance_id,
                    rack_id=sub.rack_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    subscribed_topic_names=sub.topics,
                    rebalance_timeout_ms=m.rebalance_timeout_ms,
                    member_epoch=classic.generation_id,
                    previous_member_epoch=classic.generation_id,
                    state=MemberState.STABLE,
                    assigned=by_id,
                    classic=rec.ClassicMemberMetadata(m.session_timeout_ms, tuple(m.protocols)),
                )
                group.update_member(member)
                group.target[m.member_id] = {t: frozenset(ps) for t, ps in by_id.items()}
        except (CorruptRecordError, KeyError):
            return None
        group.metadata_hash = self._metadata_hash(group.subscribed_topics(), topics)
        # the classic group's requests in flight are told to join again
        for m in classic.members.values():
            self._fail_waiters(m, ErrorCode.rebalance_in_progress)
            self.timers.cancel(("hb", classic.group_id, m.member_id))
        for pending in classic.pending_members:
            self.timers.cancel(("pending", classic.group_id, pending))
        self.timers.cancel(("join", classic.group_id))
        self.timers.cancel(("sync", classic.group_id))
        classic.state = GroupState.DEAD
        del self.groups[classic.group_id]
        records.append((schemas.encode_group_key(classic.group_id), None))
        records.extend(self._consumer_group_records(group))
        self.consumer_groups[group.group_id] = group
        for member in group.members.values():
            self._schedule_classic_session(group.group_id, member, now_ms)
        return group

    def _consumer_group_records(self, group: ConsumerGroup) -> list[Record]:
        """Kafka's ConsumerGroup.createConsumerGroupRecords."""
        gid = group.group_id
        out = [self._member_metadata_record(gid, m) for m in group.members.values()]
        out.append(self._epoch_record(group))
        for mid in group.members:
            key = rec.member_key(rec.TARGET_ASSIGNMENT_MEMBER, gid, mid)
            out.append((key, rec.encode_target_member(group.target_of(mid))))
        value = rec.TargetMetadataValue(group.assignment_epoch, group.assignment_timestamp)
        out.append((rec.group_key(rec.TARGET_ASSIGNMENT_METADATA, gid), rec.encode_target_metadata(value)))
        out += [self._current_assignment_record(gid, m) for m in group.members.values()]
        return out

    def _schedule_classic_session(self, group_id: str, member: ConsumerMember, now_ms: int) -> None:
        timeout = member.classic.session_timeout_ms if member.classic is not None else None
        self._schedule_session(group_id, member.member_id, now_ms, timeout)

    # --- consumer -> classic -------------------------------------------------------------------------

    def _can_downgrade(self, group: ConsumerGroup, leaving: set[str]) -> bool:
        remaining = [m for mid, m in group.members.items() if mid not in leaving]
        return (
            bool(remaining)
            and all(m.uses_classic_protocol for m in remaining)
            and self.consumer_config.downgrade_enabled
            and len(remaining) <= self.config.max_size
        )

    def _downgrade(self, group: ConsumerGroup, leaving: set[str], now_ms: int) -> list[Record]:
        """Convert a consumer group whose remaining members all speak the classic protocol; the records
        to write. The classic group starts a rebalance at once (a member left)."""
        gid = group.group_id
        records: list[Record] = []
        members = list(group.members.values())
        records += [(rec.member_key(rec.CURRENT_MEMBER_ASSIGNMENT, gid, m.member_id), None) for m in members]
        records += [(rec.member_key(rec.TARGET_ASSIGNMENT_MEMBER, gid, m.member_id), None) for m in members]
        records += [(rec.member_key(rec.MEMBER_METADATA, gid, m.member_id), None) for m in members]
        records += self._group_tombstones(group)
        for m in members:
            self._cancel_member_timers(gid, m)
        del self.consumer_groups[gid]
        group.dead = True

        topics = self.topics_view()
        classic = Group(gid, now_ms, GroupState.STABLE)
        classic.generation_id = group.group_epoch
        classic.protocol_type = CONSUMER_PROTOCOL_TYPE
        classic.offsets = group.offsets
        for m in members:
            if m.member_id in leaving or m.classic is None:
                continue
            classic.add(
                Member(
                    member_id=m.member_id,
                    group_instance_id=m.instance_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    rebalance_timeout_ms=m.rebalance_timeout_ms,
                    session_timeout_ms=m.classic.session_timeout_ms,
                    protocol_type=CONSUMER_PROTOCOL_TYPE,
                    protocols=list(m.classic.protocols),
                )
            )
        classic.protocol_name = classic.select_protocol()
        for member in classic.members.values():
            version = cp.subscription_version(member.metadata_for(classic.protocol_name))
            target = names_of(group.target_of(member.member_id), topics)
            member.assignment = cp.encode_assignment(target, version)
            self._schedule_heartbeat(classic, member, now_ms)
        self.groups[gid] = classic
        records.append(self._classic_group_record(classic))
        self._prepare_rebalance(classic, now_ms)  # type: ignore[attr-defined]
        return records

    @staticmethod
    def _classic_group_record(group: Group) -> Record:
        protocol = group.protocol_name or ""
        value = schemas.GroupValue(
            protocol_type=group.protocol_type or "",
            generation=group.generation_id,
            protocol=group.protocol_name,
            leader=group.leader_id,
            current_state_timestamp=group.state_timestamp,
            members=[
                schemas.MemberValue(
                    m.member_id,
                    m.group_instance_id,
                    m.client_id,
                    m.client_host,
                    m.rebalance_timeout_ms,
                    m.session_timeout_ms,
                    m.metadata_for(protocol),
                    m.assignment,
                )
                for m in group.members.values()
            ],
        )
        return schemas.encode_group_key(group.group_id), schemas.encode_group_value(value)

