"""ShareGroupHeartbeat in the group coordinator core (KIP-932), as Kafka 4.4's GroupMetadataManager:

- Validation (INVALID_REQUEST with Kafka's messages): "GroupId can't be empty.", "MemberId can't be
  empty." (v1: the client picks its member id, KIP-1082), "RackId can't be empty.",
  "SubscribedTopicNames must be set in first request." (epoch 0), "MemberEpoch is invalid." (below -1).
- Epoch 0 joins (creating the group; GROUP_MAX_SIZE_REACHED past group.share.max.size); a positive epoch
  must be the member's (UNKNOWN_MEMBER_ID for an unknown member, FENCED_MEMBER_EPOCH otherwise); -1
  leaves: the member's records get tombstones and the group epoch moves. A group id of a classic or
  consumer group is GROUP_ID_NOT_FOUND "Group X is not a share group.".
- A new or changed subscription moves the group epoch; the target assignment is then recomputed
  (strom.coordinator.share.assignor, Kafka's `simple` assignor's rules; ShareGroupTargetAssignmentMember
  per member, ShareGroupTargetAssignmentMetadata) and a member takes
  its target on its next heartbeat (ShareGroupCurrentMemberAssignment, member epoch = assignment epoch).
  The answer carries the assignment when it changed, or to a joining member.
- Subscribed partitions whose share state was never initialized are handed back (`to_initialize`): the
  shell initializes them through the share coordinator, then `share_initialized` records them in
  ShareGroupStatePartitionMetadata, moves the group epoch, and they join the assignment.
- group.share.session.timeout.ms without a heartbeat removes the member as if it left.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from strom.coordinator.consumer.results import HeartbeatResult
from strom.coordinator.group.base import Record, append_error_code
from strom.coordinator.share import records as rec
from strom.coordinator.share.assignor import assign_share_partitions
from strom.coordinator.share.base import SHARE_SESSION, ShareBase
from strom.coordinator.share.group import ShareGroup, ShareMember
from strom.protocol.errors import ErrorCode, KafkaError

LEAVE_GROUP_MEMBER_EPOCH = -1


@dataclass(frozen=True, slots=True)
class ShareHeartbeatRequest:
    group_id: str
    member_id: str
    member_epoch: int
    rack_id: str | None = None
    subscribed_topic_names: tuple[str, ...] | None = None
    client_id: str = ""
    client_host: str = ""


@dataclass(frozen=True, slots=True)
class ShareHeartbeatResult:
    result: HeartbeatResult
    # topic id -> (name, partitions) whose share state must be initialized first
    to_initialize: dict[uuid.UUID, tuple[str, frozenset[int]]] = field(default_factory=dict)


def _error(code: ErrorCode, message: str) -> KafkaError:
    return KafkaError(message, code)


class ShareHeartbeats(ShareBase):
    def share_heartbeat(
        self, req: ShareHeartbeatRequest, now_ms: int, respond: Callable[[ShareHeartbeatResult], None]
    ) -> None:
        try:
            self._validate_share_heartbeat(req)
        except KafkaError as exc:
            respond(ShareHeartbeatResult(HeartbeatResult(exc.code, exc.message)))
            return
        status = self._status(req.group_id, allow_empty=False)
        if status is not ErrorCode.none:
            respond(ShareHeartbeatResult(HeartbeatResult(status)))
            return
        try:
            if req.member_epoch == LEAVE_GROUP_MEMBER_EPOCH:
                records, result = self._share_leave(req, now_ms)
            else:
                records, result = self._share_beat(req, now_ms)
        except KafkaError as exc:
            respond(ShareHeartbeatResult(HeartbeatResult(exc.code, exc.message)))
            return
        self._write_then(req.group_id, records, result, respond)

    def _write_then(
        self,
        group_id: str,
        records: list[Record],
        result: ShareHeartbeatResult,
        respond: Callable[[ShareHeartbeatResult], None],
    ) -> None:
        if not records:
            respond(result)
            return

        def written(error: KafkaError | None) -> None:
            code = append_error_code(error)
            respond(result if code is ErrorCode.none else ShareHeartbeatResult(HeartbeatResult(code)))

        self._append(self.partition_for(group_id), records, written)

    def _validate_share_heartbeat(self, req: ShareHeartbeatRequest) -> None:
        if not req.group_id.strip():
            raise _error(ErrorCode.invalid_request, "GroupId can't be empty.")
        if not req.member_id.strip():
            raise _error(ErrorCode.invalid_request, "MemberId can't be empty.")
        if req.rack_id is not None and not req.rack_id.strip():
            raise _error(ErrorCode.invalid_request, "RackId can't be empty.")
        if req.member_epoch == 0 and not req.subscribed_topic_names:
            raise _error(ErrorCode.invalid_request, "SubscribedTopicNames must be set in first request.")
        if req.member_epoch < LEAVE_GROUP_MEMBER_EPOCH:
            raise _error(ErrorCode.invalid_request, "MemberEpoch is invalid.")

    def _share_group(self, group_id: str, create: bool, now_ms: int) -> ShareGroup:
        if self._is_other_type(group_id):
            raise _error(ErrorCode.group_id_not_found, f"Group {group_id} is not a share group.")
        group = self.share_groups.get(group_id)
        if group is None:
            if not create:
                raise _error(ErrorCode.group_id_not_found, f"Group {group_id} not found.")
            group = self.share_groups[group_id] = ShareGroup(group_id, now_ms)
        return group

    # --- heartbeat -----------------------------------------------------------------------------------

    def _share_beat(
        self, req: ShareHeartbeatRequest, now_ms: int
    ) -> tuple[list[Record], ShareHeartbeatResult]:
        group = self._share_group(req.group_id, req.member_epoch == 0, now_ms)
        old = group.members.get(req.member_id)
        if req.member_epoch == 0:
            if old is None and len(group.members) >= self.share_config.max_size:
                raise _error(
                    ErrorCode.group_max_size_reached,
                    "The share group has reached its maximum capacity of "
                    f"{self.share_config.max_size} members.",
                )
        elif old is None:
            raise _error(
                ErrorCode.unknown_member_id,
                f"Member {req.member_id} is not a member of group {req.group_id}.",
            )
        elif req.member_epoch != old.member_epoch:
            raise _error(
                ErrorCode.fenced_member_epoch,
                f"The share group member has a smaller member epoch ({req.member_epoch}) than the one known "
                f"by the group coordinator ({old.member_epoch}). The member must abandon all its partitions "
                "and rejoin.",
            )
        records: list[Record] = []
        member = replace(old) if old is not None else ShareMember(req.member_id)
        member.client_id, member.client_host = req.client_id, req.client_host
        if req.rack_id is not None:
            member.rack_id = req.rack_id
        if req.subscribed_topic_names is not None:
            member.subscribed_topic_names = tuple(req.subscribed_topic_names)
        metadata_changed = old is None or (
            member.rack_id,
            member.client_id,
            member.client_host,
            member.subscribed_topic_names,
        ) != (old.rack_id, old.client_id, old.client_host, old.subscribed_topic_names)
        group.members[member.member_id] = member
        if metadata_changed:
            records.append(self._share_member_record(group.group_id, member))
        if old is None or set(old.subscribed_topic_names) != set(member.subscribed_topic_names):
            records += self._bump_share_epoch(group)
        records += self._refresh_share_target(group, now_ms)
        target = group.target.get(member.member_id, {})
        changed = target != member.assigned or member.member_epoch != group.assignment_epoch
        if changed:
            if member.member_epoch != group.assignment_epoch:
                member.previous_member_epoch = member.member_epoch
                member.member_epoch = group.assignment_epoch
            member.assigned = dict(target)
            records.append(self._share_assignment_record(group.group_id, member))
        self._schedule_share_session(group.group_id, member.member_id, now_ms)
        result = HeartbeatResult(
            ErrorCode.none,
            member_id=member.member_id,
            member_epoch=member.member_epoch,
            heartbeat_interval_ms=self._share_config_of(group.group_id).heartbeat_interval_ms,
            assignment=member.assigned if changed or req.member_epoch == 0 else None,
        )
        return records, ShareHeartbeatResult(result, self._uninitialized(group))

    def _bump_share_epoch(self, group: ShareGroup) -> list[Record]:
        group.metadata_hash = self._metadata_hash(group.subscribed_topics(), self.topics_view())
        group.group_epoch += 1
        return [self._share_epoch_record(group)]

    def _refresh_share_target(self, group: ShareGroup, now_ms: int) -> list[Record]:
        """Recompute the target assignment once the group epoch moved past it."""
        if group.assignment_epoch >= group.group_epoch:
            return []
        topics = self.topics_view()
        ids = {name: meta.topic_id for name, meta in topics.by_name.items()}
        subscriptions = {
            m.member_id: [ids[name] for name in m.subscribed_topic_names if name in ids]
            for m in group.members.values()
        }
        assignable = {topic_id: parts for topic_id, (_name, parts) in group.initialized.items()}
        targets = assign_share_partitions(subscriptions, assignable, group.target)
        records: list[Record] = []
        for member in group.members.values():
            target = targets[member.member_id]
            if group.target.get(member.member_id) != target:
                group.target[member.member_id] = target
                key = rec.member_key(rec.TARGET_ASSIGNMENT_MEMBER, group.group_id, member.member_id)
                records.append((key, rec.encode_target_member(target)))
        group.assignment_epoch = group.group_epoch
        key = rec.group_key(rec.TARGET_ASSIGNMENT_METADATA, group.group_id)
        records.append((key, rec.encode_target_metadata(group.assignment_epoch, now_ms)))
        return records

    def _uninitialized(self, group: ShareGroup) -> dict[uuid.UUID, tuple[str, frozenset[int]]]:
        topics = self.topics_view()
        out: dict[uuid.UUID, tuple[str, frozenset[int]]] = {}
        for name in sorted(group.subscribed_topics()):
            meta = topics.by_name.get(name)
            if meta is None:
                continue
            done = group.initialized.get(meta.topic_id, (name, frozenset()))[1]
            missing = frozenset(range(meta.partitions)) - done
            if missing:
                out[meta.topic_id] = (name, missing)
        return out

    def share_initialized(
        self,
        group_id: str,
        initialized: dict[uuid.UUID, tuple[str, frozenset[int]]],
        now_ms: int,
        respond: Callable[[ErrorCode], None],
    ) -> None:
        """The share coordinator initialized these partitions' state: they may be assigned now."""
        group = self.share_groups.get(group_id)
        if group is None or not initialized:
            respond(ErrorCode.none)
            return
        for topic_id, (name, parts) in initialized.items():
            done = group.initialized.get(topic_id, (name, frozenset()))[1]
            group.initialized[topic_id] = (name, done | parts)
        records = [self._share_state_metadata_record(group), *self._bump_share_epoch(group)]
        records += self._refresh_share_target(group, now_ms)
        self._append(self.partition_for(group_id), records, lambda e: respond(append_error_code(e)))

    # --- leaving -------------------------------------------------------------------------------------

    def _share_leave(
        self, req: ShareHeartbeatRequest, now_ms: int
    ) -> tuple[list[Record], ShareHeartbeatResult]:
        group = self._share_group(req.group_id, False, now_ms)
        member = group.members.get(req.member_id)
        if member is None:
            raise _error(
                ErrorCode.unknown_member_id,
                f"Member {req.member_id} is not a member of group {req.group_id}.",
            )
        result = HeartbeatResult(
            ErrorCode.none, member_id=req.member_id, member_epoch=LEAVE_GROUP_MEMBER_EPOCH
        )
        return self._remove_share_member(group, member, now_ms), ShareHeartbeatResult(result)

    def _remove_share_member(self, group: ShareGroup, member: ShareMember, now_ms: int) -> list[Record]:
        self.timers.cancel((SHARE_SESSION, group.group_id, member.member_id))
        del group.members[member.member_id]
        group.target.pop(member.member_id, None)
        records = self._share_member_tombstones(group.group_id, member.member_id)
        records += self._bump_share_epoch(group)
        records += self._refresh_share_target(group, now_ms)
        return records

    def _on_share_deadline(self, key: tuple[str, ...], now_ms: int) -> None:
        group = self.share_groups.get(key[1])
        member = None if group is None else group.members.get(key[2])
        if group is None or member is None:
            return
        records = self._remove_share_member(group, member, now_ms)
        self._append(self.partition_for(group.group_id), records, lambda _error: None)
