"""DeleteTopics (api key 20), versions 1-6.

Behaviour: deletes each named topic (v6 also by topic id, KIP-516); the metadata change reaches the
replica manager, which removes the partitions' logs. Deletion is synchronous, so `timeout` is not waited on.
The topics of one request are deleted concurrently, so the answer waits about as long as the slowest
deletion, not their sum, as Kafka's controller deletes a request's topics together (librdkafka's tests
delete 100 topics in one request with a 30 s timeout; one after the other took longer than that in a
three-broker cluster). A name (or an id) given twice is not deleted and is answered once, INVALID_REQUEST
"Duplicate topic name." ("Duplicate topic id."), as Kafka 4.4's controller answers.

Errors per topic: NONE; UNKNOWN_TOPIC_OR_PARTITION (no such name); UNKNOWN_TOPIC_ID (v6, no such id);
INVALID_REQUEST (both a name and an id, or neither; or an internal topic such as `__consumer_offsets`);
TOPIC_DELETION_DISABLED (`delete.topic.enable=false`), TOPIC_AUTHORIZATION_FAILED (no DELETE on the topic; by
id, no DESCRIBE either); THROTTLING_QUOTA_EXCEEDED (v5+, the controller_mutation_rate quota was already
exhausted; a deleted topic's partitions count against it, KIP-599).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from typing import Any

from strom.apis._admin_util import build, error_of, kio_module
from strom.apis._authz import may
from strom.apis._build import throttle_time
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec
from strom.security.authorizer import AclOperation, ResourceType
from strom.security.quotas.controller_mutation import ThrottlingQuotaExceeded
from strom.security.quotas.throttling import mutation_quota, mutation_throttle_ms

API_KEY = 20
MIN_VERSION = 1
MAX_VERSION = 6
STRICT_QUOTA_SINCE = 5  # KIP-599: older versions are throttled but never refused

_ZERO = uuid.UUID(int=0)


def _targets(request: Any) -> list[tuple[str | None, uuid.UUID | None]]:
    if hasattr(request, "topic_names"):
        return [(name, None) for name in request.topic_names]
    return [(t.name, t.topic_id if t.topic_id not in (None, _ZERO) else None) for t in request.topics]


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("delete_topics", ctx.api_version, "response")
    backend = ctx.broker.metadata
    results: list[Any] = []
    # (slot in results, requested topic id) by topic name, deleted after the checks below
    pending: defaultdict[str, list[tuple[int, uuid.UUID | None]]] = defaultdict(list)

    def result(name: str | None, topic_id: uuid.UUID | None, code: ErrorCode, message: str | None) -> Any:
        return build(
            mod.DeletableTopicResult,
            name=name,
            topic_id=topic_id or _ZERO,
            error_code=code,
            error_message=message,
        )

    quota = mutation_quota(ctx, STRICT_QUOTA_SINCE)
    targets = _targets(request)
    named = Counter(name for name, topic_id in targets if name is not None and topic_id is None)
    by_id = Counter(topic_id for name, topic_id in targets if topic_id is not None and name is None)
    answered: set[object] = set()
    for name, topic_id in targets:
        code, message = ErrorCode.none, None
        duplicate = (name is not None and topic_id is None and named[name] > 1) or (
            topic_id is not None and name is None and by_id[topic_id] > 1
        )
        if duplicate:
            # Kafka's controller deletes no topic named twice and answers it once
            if (name, topic_id) in answered:
                continue
            answered.add((name, topic_id))
            code = ErrorCode.invalid_request
            message = "Duplicate topic name." if topic_id is None else "Duplicate topic id."
        elif name is not None and topic_id is not None:
            code, message = ErrorCode.invalid_request, "Topic name and topic id cannot both be set."
        elif name is None and topic_id is None:
            code, message = ErrorCode.invalid_request, "Neither topic name nor topic id was set."
        else:
            if topic_id is not None:
                found = backend.image.topic_by_id(topic_id)
                if found is None:
                    code, message = ErrorCode.unknown_topic_id, "This server does not host this topic ID."
                elif not may(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, found.name):
                    # a topic the principal may not describe keeps its name hidden (Kafka)
                    code, message = ErrorCode.topic_authorization_failed, None
                else:
                    name = found.name
            if code == ErrorCode.none and not may(ctx, AclOperation.DELETE, ResourceType.TOPIC, str(name)):
                code, message = ErrorCode.topic_authorization_failed, None
        if code == ErrorCode.none:
            existing = backend.image.topics.get(str(name))
            try:
                quota.record(len(existing.partitions) if existing else 0)
            except ThrottlingQuotaExceeded as exc:
                code, message = exc.code, None  # as CreateTopics answers it
        if code == ErrorCode.none:
            pending[str(name)].append((len(results), topic_id))
        results.append(result(name, topic_id, code, message))

    async def delete_in_order(name: str, slots: list[tuple[int, uuid.UUID | None]]) -> None:
        for slot, topic_id in slots:
            try:
                info = await backend.delete_topic(name)
            except Exception as exc:
                code, message = error_of(exc)
                results[slot] = result(name, topic_id, code, message)
            else:
                results[slot] = result(name, info.topic_id, ErrorCode.none, None)

    await asyncio.gather(*(delete_in_order(name, slots) for name, slots in pending.items()))
    throttle = throttle_time(mutation_throttle_ms(ctx, quota))
    return mod.DeleteTopicsResponse(throttle_time=throttle, responses=tuple(results))


SPEC = ApiSpec(API_KEY, MIN_VERSION, MAX_VERSION, handle, name="DeleteTopics")
