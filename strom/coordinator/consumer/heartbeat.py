"""ConsumerGroupHeartbeat (KIP-848) in the coordinator core: joining, subscribing, the group epoch, the
target assignment and the member's reconciliation, as Kafka 4.4's GroupMetadataManager does them.

One heartbeat:
1. Validation (INVALID_REQUEST with Kafka's messages; UNSUPPORTED_ASSIGNOR; INVALID_REGULAR_EXPRESSION).
   Epoch 0 (re)joins and must carry the rebalance timeout, a subscription (names or regex) and an empty
   owned-partitions list; v1+ members bring their own member id (KIP-1082), v0 members get one.
2. The member: a new one may join unless group.consumer.max.size is reached (GROUP_MAX_SIZE_REACHED);
   a known one must send its member epoch, or the previous one with only partitions it still has (the
   answer that bumped it was lost), else FENCED_MEMBER_EPOCH; UNKNOWN_MEMBER_ID for a member we do not
   know. Static members (instance id): a rejoin takes over the member that left with epoch -2, keeping its
   partitions (UNRELEASED_INSTANCE_ID while that member is still in; FENCED_INSTANCE_ID for another
   member id with the same instance id).
3. The group epoch moves when a subscription, a regex's resolution, the preferred server assignor or the
   metadata of the subscribed topics (partitions added, topics created or deleted) changes.
4. A group epoch ahead of the target assignment gets a new target from the group's assignor (the one
   most members name with `server_assignor`, else the first of group.consumer.assignors), at most once
   per group.consumer.assignment.interval.ms (group config consumer.assignment.interval.ms): inside the
   interval the target waits for a later heartbeat (there is no timer, as in Kafka 4.4), and the group
   shows Assigning (its assignment epoch behind its group epoch) meanwhile.
5. The member reconciles towards its target (`reconcile.Reconciler`); a member asked to revoke must do
   so within its rebalance timeout or be fenced.

Records go to __consumer_offsets in Kafka's order (member subscription, group epoch, target members,
target metadata, current assignment) and the heartbeat is answered once they are written. The answer
carries the assignment when the request was a full one (joining, or every field set after an error) or
when the assigned partitions changed.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable
from dataclasses import replace

from strom.coordinator.consumer import records as rec
from strom.coordinator.consumer.assignors import ASSIGNORS
from strom.coordinator.consumer.base import REBALANCE, can_compute_next_target
from strom.coordinator.consumer.group import ConsumerGroup, ResolvedRegex, TopicsView
from strom.coordinator.consumer.member import (
    LEAVE_GROUP_MEMBER_EPOCH,
    LEAVE_GROUP_STATIC_MEMBER_EPOCH,
    ConsumerMember,
    MemberState,
    partitions_of,
)
from strom.coordinator.consumer.migration import ConsumerMigration
from strom.coordinator.consumer.reconcile import FencedMemberEpochError, Reconciler
from strom.coordinator.consumer.results import HeartbeatRequest, HeartbeatResult
from strom.coordinator.group.base import Record, append_error_code
from strom.coordinator.group.group import GroupState
from strom.coordinator.group.schemas import encode_group_key
from strom.protocol.errors import ErrorCode, KafkaError


def _error(code: ErrorCode, message: str) -> KafkaError:
    return KafkaError(message, code)


def new_member_id() -> str:
    """Kafka's Uuid.randomUuid().toString(): url-safe base64 of 16 random bytes, no padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


class ConsumerHeartbeats(ConsumerMigration):
    def consumer_heartbeat(
        self, req: HeartbeatRequest, now_ms: int, respond: Callable[[HeartbeatResult], None]
    ) -> None:
        try:
            self._validate_heartbeat(req)
        except KafkaError as exc:
            respond(HeartbeatResult(exc.code, exc.message))
            return
        status = self._status(req.group_id, allow_empty=False)
        if status is not ErrorCode.none:
            respond(HeartbeatResult(status))
            return
        try:
            if req.member_epoch in (LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH):
                records, result = self._leave(req, now_ms)
            else:
                records, result = self._heartbeat(req, now_ms)
        except KafkaError as exc:
            respond(HeartbeatResult(exc.code, exc.message))
            return
        if not records:
            respond(result)
            return

        def written(error: KafkaError | None) -> None:
            code = append_error_code(error)
            respond(result if code is ErrorCode.none else HeartbeatResult(code))

        self._append(self.partition_for(req.group_id), records, written)

    # --- validation ----------------------------------------------------------------------------------

    def _validate_heartbeat(self, req: HeartbeatRequest) -> None:
        def not_empty(value: str | None, message: str) -> None:
            if value is not None and not value.strip():
                raise _error(ErrorCode.invalid_request, message)

        not_empty(req.group_id, "GroupId can't be empty.")
        not_empty(req.instance_id, "InstanceId can't be empty.")
        not_empty(req.rack_id, "RackId can't be empty.")
        epoch = req.member_epoch
        if req.version >= 1 or epoch != 0:
            not_empty(req.member_id, "MemberId can't be empty.")
        if epoch == 0:
            if req.rebalance_timeout_ms == -1:
                raise _error(
                    ErrorCode.invalid_request, "RebalanceTimeoutMs must be provided in first request."
                )
            if req.owned is None or req.owned:
                raise _error(ErrorCode.invalid_request, "TopicPartitions must be empty when (re-)joining.")
            if req.subscribed_topic_names is None and req.subscribed_topic_regex is None:
                raise _error(
                    ErrorCode.invalid_request,
                    "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
                )
        elif epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            if req.instance_id is None:
                raise _error(ErrorCode.invalid_request, "InstanceId can't be null.")
        elif epoch < 0 and epoch != LEAVE_GROUP_MEMBER_EPOCH:
            raise _error(ErrorCode.invalid_request, "MemberEpoch is invalid.")
        if req.server_assignor is not None and req.server_assignor not in self.consumer_config.assignors:
            names = ", ".join(self.consumer_config.assignors)
            raise _error(
                ErrorCode.unsupported_assignor,
                f"ServerAssignor {req.server_assignor} is not supported. Supported assignors: {names}.",
            )
        if req.subscribed_topic_regex:
            try:
                re.compile(req.subscribed_topic_regex)
            except re.error as exc:
                raise _error(
                    ErrorCode.invalid_regular_expression,
                    f"SubscribedTopicRegex `{req.subscribed_topic_regex}` is not a valid regular expression: "
                    f"{exc}.",
                ) from None

    # --- the group -----------------------------------------------------------------------------------

    def _consumer_group_for(
        self, group_id: str, create: bool, now_ms: int, records: list[Record]
    ) -> ConsumerGroup:
        group = self.consumer_groups.get(group_id)
        if group is not None:
            return group
        classic = self.groups.get(group_id)
        if classic is not None and classic.state is not GroupState.DEAD:
            if classic.members or classic.pending_members or classic.state is not GroupState.EMPTY:
                # a consumer-protocol member joining a classic group with members (online upgrade)
                upgraded = None
                if create and self._can_upgrade(classic):
                    upgraded = self._upgrade(classic, now_ms, records)
                if upgraded is None:
                    raise _error(ErrorCode.group_id_not_found, f"Group {group_id} is not a consumer group.")
                return upgraded
            if not create:
                raise _error(ErrorCode.group_id_not_found, f"Group {group_id} is not a consumer group.")
            # An empty classic group (committed offsets only) becomes a consumer group and keeps them.
            del self.groups[group_id]
            records.append((encode_group_key(group_id), None))
            group = ConsumerGroup(group_id, now_ms)
            group.offsets = classic.offsets
            self.consumer_groups[group_id] = group
            return group
        if not create:
            raise _error(ErrorCode.group_id_not_found, f"Consumer group {group_id} not found.")
        group = ConsumerGroup(group_id, now_ms)
        self.consumer_groups[group_id] = group
        return group

    def _heartbeat(self, req: HeartbeatRequest, now_ms: int) -> tuple[list[Record], HeartbeatResult]:
        records: list[Record] = []
        group = self._consumer_group_for(req.group_id, req.member_epoch == 0, now_ms, records)
        try:
            return self._heartbeat_in(group, req, now_ms, records)
        except KafkaError:
            if not group.members and group.group_epoch == 1 and not group.offsets:
                # a group created by a refused first heartbeat is not kept
                self.consumer_groups.pop(group.group_id, None)
            raise

    def _heartbeat_in(
        self, group: ConsumerGroup, req: HeartbeatRequest, now_ms: int, records: list[Record]
    ) -> tuple[list[Record], HeartbeatResult]:
        cfg = self._consumer_config_of(group.group_id)
        member_id = req.member_id or new_member_id()
        existing_static = group.static_member(req.instance_id)
        known = member_id in group.members or existing_static is not None
        if req.member_epoch == 0 and not known and len(group.members) >= cfg.max_size:
            raise _error(
                ErrorCode.group_max_size_reached,
                f"The consumer group has reached its maximum capacity of {cfg.max_size} members.",
            )
        if req.instance_id is None:
            member = self._dynamic_member(group, member_id, req)
        else:
            member = self._static_member(group, member_id, req, existing_static, records, now_ms)
        updated = replace(
            member,
            instance_id=req.instance_id if req.instance_id is not None else member.instance_id,
            rack_id=req.rack_id if req.rack_id is not None else member.rack_id,
            rebalance_timeout_ms=(
                req.rebalance_timeout_ms if req.rebalance_timeout_ms != -1 else member.rebalance_timeout_ms
            ),
            server_assignor=req.server_assignor
            if req.server_assignor is not None
            else member.server_assignor,
            subscribed_topic_names=(
                tuple(req.subscribed_topic_names)
                if req.subscribed_topic_names is not None
                else member.subscribed_topic_names
            ),
            subscribed_topic_regex=(
                req.subscribed_topic_regex
                if req.subscribed_topic_regex is not None
                else member.subscribed_topic_regex
            ),
            client_id=req.client_id,
            client_host=req.client_host,
        )
        reconciled = self._apply_member(group, member, updated, req.owned, now_ms, records)
        self._schedule_session(group.group_id, reconciled.member_id, now_ms)
        full = req.member_epoch == 0 or (
            req.rebalance_timeout_ms != -1
            and (req.subscribed_topic_names is not None or req.subscribed_topic_regex is not None)
            and req.owned is not None
        )
        assignment = None
        if full or reconciled.assigned != member.assigned:
            assignment = partitions_of(reconciled.assigned)
        return records, HeartbeatResult(
            ErrorCode.none,
            member_id=reconciled.member_id,
            member_epoch=reconciled.member_epoch,
            heartbeat_interval_ms=cfg.heartbeat_interval_ms,
            assignment=assignment,
        )

    def _apply_member(
        self,
        group: ConsumerGroup,
        member: ConsumerMember,
        updated: ConsumerMember,
        owned: dict[uuid.UUID, set[int]] | None,
        now_ms: int,
        records: list[Record],
    ) -> ConsumerMember:
        """Take a member's new subscription and metadata into the group: write what changed, move the
        group epoch when it must, compute a new target assignment if the epoch is ahead of it, and reconcile
        the member towards its target given what it says it `owned`. Shared by ConsumerGroupHeartbeat and
        the JoinGroup of classic members."""
        cfg = self.consumer_config
        bump = False
        subscription_changed = False
        is_new = member.member_id not in group.members
        if is_new or not updated.metadata_equals(member):
            records.append(self._member_metadata_record(group.group_id, updated))
            subscription_changed = is_new or not updated.subscription_equals(member)
            bump = subscription_changed
        topics = self.topics_view()
        members_after = {**group.members, updated.member_id: updated}
        if self._refresh_regexes(group, members_after, topics, now_ms, records):
            bump = True
        default = cfg.default_assignor
        if group.preferred_assignor(members_after, default) != group.preferred_assignor(
            group.members, default
        ):
            bump = True
        # the member's new subscription counts from here on
        group.update_member(updated)
        metadata_hash = self._metadata_hash(group.subscribed_topics(), topics)
        if metadata_hash != group.metadata_hash:
            bump = True
        if bump:
            group.group_epoch += 1
            group.metadata_hash = metadata_hash
            records.append(self._epoch_record(group))
        interval = self._consumer_config_of(group.group_id).assignment_interval_ms
        if group.group_epoch > group.assignment_epoch and can_compute_next_target(
            group.assignment_timestamp, interval, now_ms
        ):
            self._compute_target(
                group, topics, now_ms, records, new_member=updated.member_id if is_new else None
            )
        # else group.consumer.assignment.interval.ms holds the new target back: the member reconciles
        # towards the last one (a new member towards nothing) at the current assignment epoch, and the
        # group shows Assigning until a heartbeat after the interval computes it, as in Kafka 4.4
        return self._reconcile(group, updated, owned, topics, subscription_changed, now_ms, records)

    def _dynamic_member(self, group: ConsumerGroup, member_id: str, req: HeartbeatRequest) -> ConsumerMember:
        member = group.members.get(member_id)
        if member is None:
            if req.member_epoch != 0:
                raise _error(
                    ErrorCode.unknown_member_id,
                    f"Member {member_id} is not a member of group {group.group_id}.",
                )
            return ConsumerMember(member_id)
        if req.member_epoch != 0:
            self._check_epoch(member, req)
        return member

    def _static_member(
        self,
        group: ConsumerGroup,
        member_id: str,
        req: HeartbeatRequest,
        existing: ConsumerMember | None,
        records: list[Record],
        now_ms: int,
    ) -> ConsumerMember:
        if req.member_epoch == 0:
            if existing is None:
                member = group.members.get(member_id)
                return member if member is not None else ConsumerMember(member_id)
            if existing.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH:
                raise _error(
                    ErrorCode.unreleased_instance_id,
                    f"Static member {member_id} with instance id {req.instance_id} cannot join the group "
                    f"because the instance id is owned by member {existing.member_id}.",
                )
            # the new member id takes over the static member, its partitions included
            replaced = replace(existing, member_id=member_id, member_epoch=0, previous_member_epoch=0)
            target = group.target.pop(existing.member_id, None)
            group.remove_member(existing.member_id, now_ms)
            self._cancel_member_timers(group.group_id, existing)
            records.extend(self._member_tombstones(group.group_id, existing.member_id))
            group.update_member(replaced)
            records.append(self._member_metadata_record(group.group_id, replaced))
            if target is not None:
                group.target[member_id] = target
                key = rec.member_key(rec.TARGET_ASSIGNMENT_MEMBER, group.group_id, member_id)
                records.append((key, rec.encode_target_member(target)))
            records.append(self._current_assignment_record(group.group_id, replaced))
            return replaced
        if existing is None:
            raise _error(ErrorCode.unknown_member_id, f"Instance id {req.instance_id} is unknown.")
        if existing.member_id != member_id:
            raise _error(
                ErrorCode.fenced_instance_id,
                f"Static member {member_id} with instance id {req.instance_id} was fenced by member "
                f"{existing.member_id}.",
            )
        self._check_epoch(existing, req)
        return existing

    @staticmethod
    def _check_epoch(member: ConsumerMember, req: HeartbeatRequest) -> None:
        received = req.member_epoch
        if received > member.member_epoch:
            raise FencedMemberEpochError(
                f"The consumer group member has a greater member epoch ({received}) than the one known by "
                f"the group coordinator ({member.member_epoch}). The member must abandon all its "
                "partitions and rejoin."
            )
        if received < member.member_epoch:
            owned_subset = req.owned is not None and all(
                p in member.assigned.get(t, {}) for t, ps in req.owned.items() for p in ps
            )
            if received != member.previous_member_epoch or not owned_subset:
                raise FencedMemberEpochError(
                    f"The consumer group member has a smaller member epoch ({received}) than the one known "
                    f"by the group coordinator ({member.member_epoch}). The member must abandon all its "
                    "partitions and rejoin."
                )

    # --- regexes, target assignment, reconciliation --------------------------------------------------

    def _refresh_regexes(
        self,
        group: ConsumerGroup,
        members: dict[str, ConsumerMember],
        topics: TopicsView,
        now_ms: int,
        records: list[Record],
    ) -> bool:
        """Resolve the group's regexes against the topics (Python `re`, whole-name matches); returns
        whether a resolution changed. Unused regexes are dropped. As in Kafka, internal topics match like
        any other (a client that does not want them excludes them in its regex)."""
        wanted = {m.subscribed_topic_regex for m in members.values() if m.subscribed_topic_regex}
        changed = False
        for regex in [r for r in group.regexes if r not in wanted]:
            del group.regexes[regex]
            records.append((rec.member_key(rec.REGULAR_EXPRESSION, group.group_id, regex), None))
            changed = True
        for regex in sorted(wanted):
            current = group.regexes.get(regex)
            if current is not None and current.version == topics.version:
                continue
            try:
                pattern = re.compile(regex)
            except re.error:
                matched: frozenset[str] = frozenset()
            else:
                matched = frozenset(name for name in topics.by_name if pattern.fullmatch(name))
            resolved = ResolvedRegex(matched, topics.version, now_ms)
            group.regexes[regex] = resolved
            if current is None or current.topics != matched:
                changed = True
                value = rec.RegexValue(tuple(sorted(matched)), resolved.version, resolved.timestamp)
                key = rec.member_key(rec.REGULAR_EXPRESSION, group.group_id, regex)
                records.append((key, rec.encode_regex(value)))
        return changed

    def _compute_target(
        self,
        group: ConsumerGroup,
        topics: TopicsView,
        now_ms: int,
        records: list[Record],
        new_member: str | None = None,
    ) -> None:
        assignor = ASSIGNORS[group.preferred_assignor(group.members, self.consumer_config.default_assignor)]
        subscriptions = {
            mid: frozenset(self._topic_ids(group.member_topics(m), topics))
            for mid, m in group.members.items()
        }
        counts = {
            topics.by_name[name].topic_id: topics.by_name[name].partitions
            for name in group.subscribed_topics()
            if name in topics.by_name
        }
        target = assignor(subscriptions, counts, group.target)
        for mid in sorted(group.members):
            new = target.get(mid, {})
            if new != group.target.get(mid) or mid == new_member:
                key = rec.member_key(rec.TARGET_ASSIGNMENT_MEMBER, group.group_id, mid)
                records.append((key, rec.encode_target_member(new)))
        group.target = {mid: target.get(mid, {}) for mid in group.members}
        group.assignment_epoch = group.group_epoch
        group.assignment_timestamp = now_ms
        value = rec.TargetMetadataValue(group.assignment_epoch, now_ms)
        records.append(
            (rec.group_key(rec.TARGET_ASSIGNMENT_METADATA, group.group_id), rec.encode_target_metadata(value))
        )

    def _reconcile(
        self,
        group: ConsumerGroup,
        member: ConsumerMember,
        owned: dict[uuid.UUID, set[int]] | None,
        topics: TopicsView,
        subscription_changed: bool,
        now_ms: int,
        records: list[Record],
    ) -> ConsumerMember:
        current = group.members[member.member_id]
        reconciler = Reconciler(
            current,
            group.assignment_epoch,
            group.target_of(member.member_id),
            group.current_partition_epoch,
            owned,
            self._topic_ids(group.member_topics(current), topics),
            subscription_changed,
        )
        updated = reconciler.build()
        if updated is current or updated.assignment_equals(current):
            return current
        group.update_member(updated)
        records.append(self._current_assignment_record(group.group_id, updated))
        self.timers.cancel((REBALANCE, group.group_id, member.member_id, str(current.member_epoch)))
        if updated.state is MemberState.UNREVOKED_PARTITIONS:
            key = (REBALANCE, group.group_id, member.member_id, str(updated.member_epoch))
            self.timers.schedule(key, now_ms + max(updated.rebalance_timeout_ms, 0))
        return updated

    # overridden by the departures module; declared here for the type checker
    def _leave(self, req: HeartbeatRequest, now_ms: int) -> tuple[list[Record], HeartbeatResult]:
        raise NotImplementedError
