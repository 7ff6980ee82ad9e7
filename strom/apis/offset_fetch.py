"""OffsetFetch (api key 9), versions 1-10: read a group's committed offsets.

A partition without a committed offset answers offset -1, empty metadata, leader epoch -1 and NONE.
v2+ accepts null topics for "every committed offset of the group" and has a top-level error; v5 adds
the committed leader epoch (KIP-320); v7 require_stable (KIP-447): a partition with transactional offsets
still pending for the group (TxnOffsetCommit written, the transaction's marker not yet applied) answers
offset -1 and UNSTABLE_OFFSET_COMMIT instead of its older committed offset, and the client retries; v8+
asks for several groups at once (KIP-709), each with its own error; v9 names the fetching member and its
epoch (KIP-848): for a consumer group the member must be known (UNKNOWN_MEMBER_ID) and at its current
epoch (STALE_MEMBER_EPOCH), while a fetch without a member (admin tools) is always answered. v10 names
topics by id (KIP-516, KIP-848), in the request and the response: an id this broker does not know answers
UNKNOWN_TOPIC_ID for its partitions (offset -1, listed first), and "every committed offset" leaves out
topics that no longer exist (they have no id).

Errors: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, INVALID_GROUP_ID (v1 reports them per partition);
UNSTABLE_OFFSET_COMMIT per partition (v7+ with require_stable); UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH (v9+),
UNKNOWN_TOPIC_ID (v10), GROUP_AUTHORIZATION_FAILED (no DESCRIBE on the group), TOPIC_AUTHORIZATION_FAILED
(no DESCRIBE on an asked-for topic; when every offset is asked for, such topics are left out).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from strom.apis._authz import allowed, may
from strom.apis._build import build, entry_type, no_throttle
from strom.coordinator.group.results import FetchedOffset
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 9
TOPIC_IDS_FROM = 10


@dataclass(frozen=True, slots=True)
class _NamedTopic:
    """A v10 topic resolved to its name, for the name-keyed fetch."""

    name: str
    partition_indexes: Any


def _fetch(
    ctx: Any, group_id: str, topics: Any, require_stable: bool
) -> tuple[ErrorCode, list[FetchedOffset]]:
    wanted = None
    if topics is not None:
        wanted = [(t.name, p) for t in topics for p in t.partition_indexes]
    error, fetched = ctx.broker.group_coordinator.core.fetch_offsets(group_id, wanted, require_stable)
    if error is not ErrorCode.none and wanted is not None:
        fetched = [FetchedOffset(t, p, -1, -1, "", error) for t, p in wanted]
    # topics need DESCRIBE: asked-for partitions answer TOPIC_AUTHORIZATION_FAILED, and when every
    # committed offset is asked for, the topics the principal may not describe are left out (Kafka)
    describable = allowed(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, {f.topic for f in fetched})
    if wanted is None:
        fetched = [f for f in fetched if f.topic in describable]
    else:
        denied = ErrorCode.topic_authorization_failed
        fetched = [f if f.topic in describable else FetchedOffset(f.topic, f.partition, -1, -1, "", denied)
                   for f in fetched]  # fmt: skip
    return error, fetched


def _topics(
    topic_cls: type, fetched: list[FetchedOffset], ids: dict[str, uuid.UUID] | None = None
) -> tuple[Any, ...]:
    """The response topics; by id (v10) when `ids` maps the names (topics without one are left out)."""
    part_cls = entry_type(topic_cls, "partitions")
    by_topic: dict[str, list[Any]] = {}
    for f in fetched:
        by_topic.setdefault(f.topic, []).append(
            build(
                part_cls,
                partition_index=f.partition,
                committed_offset=f.offset,
                committed_leader_epoch=f.leader_epoch,
                metadata=f.metadata,
                error_code=f.error,
            )
        )
    if ids is not None:
        return tuple(
            build(topic_cls, topic_id=ids[name], partitions=tuple(parts))
            for name, parts in by_topic.items()
            if name in ids
        )
    return tuple(build(topic_cls, name=name, partitions=tuple(parts)) for name, parts in by_topic.items())


def _by_id(ctx: Any, topic_cls: type, topics: Any) -> tuple[Any, dict[str, uuid.UUID], tuple[Any, ...]]:
    """v10: the asked-for topics resolved to names, the ids of every topic by name, and the response
    entries of the ids not known here."""
    image = ctx.broker.metadata.image
    ids = {info.name: info.topic_id for info in image.topics.values() if info.topic_id is not None}
    if topics is None:
        return None, ids, ()
    names = {topic_id: name for name, topic_id in ids.items()}
    part_cls = entry_type(topic_cls, "partitions")
    named, unknown = [], []
    for t in topics:
        name = names.get(t.topic_id)
        if name is not None:
            named.append(_NamedTopic(name, t.partition_indexes))
            continue
        parts = tuple(
            build(
                part_cls,
                partition_index=p,
                committed_offset=-1,
                committed_leader_epoch=-1,
                metadata="",
                error_code=ErrorCode.unknown_topic_id,
            )
            for p in t.partition_indexes
        )
        unknown.append(build(topic_cls, topic_id=t.topic_id, partitions=parts))
    return named, ids, tuple(unknown)


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    cls = response_type(API_KEY, version)
    require_stable = version >= 7 and bool(getattr(request, "require_stable", False))
    if version >= 8:
        group_cls = entry_type(cls, "groups")
        topic_cls = entry_type(group_cls, "topics")
        groups = []
        core = ctx.broker.group_coordinator.core
        for g in request.groups:
            member_id = getattr(g, "member_id", None)
            if not may(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, g.group_id):
                error = ErrorCode.group_authorization_failed
            else:
                error = core.validate_offset_fetch(g.group_id, member_id, int(getattr(g, "member_epoch", -1)))
            topics, ids, unknown = g.topics, None, ()
            if version >= TOPIC_IDS_FROM:
                topics, ids, unknown = _by_id(ctx, topic_cls, g.topics)
            if error is ErrorCode.none:
                error, fetched = _fetch(ctx, g.group_id, topics, require_stable)
            else:
                fetched, unknown = [], ()
            groups.append(
                build(
                    group_cls,
                    group_id=g.group_id,
                    topics=unknown + _topics(topic_cls, fetched, ids),
                    error_code=error,
                )
            )
        return build(cls, throttle_time=no_throttle(), groups=tuple(groups))
    if not may(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, request.group_id):
        # v1 has no top-level error: each requested partition carries it
        error = ErrorCode.group_authorization_failed
        topics = request.topics or () if version < 2 else ()
        wanted = [(t.name, p) for t in topics for p in t.partition_indexes]
        fetched = [FetchedOffset(t, p, -1, -1, "", error) for t, p in wanted]
    else:
        error, fetched = _fetch(ctx, request.group_id, request.topics, require_stable)
    return build(
        cls,
        throttle_time=no_throttle(),
        topics=_topics(entry_type(cls, "topics"), fetched),
        error_code=error,
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=1, max_version=10, handler=handle, name="OffsetFetch")
