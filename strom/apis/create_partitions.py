"""CreatePartitions (api key 37), versions 0-3.

Behaviour: grows each topic to `count` partitions; partitions are never removed. New partitions are
placed with Kafka's replica assignment continuing from partition 0's layout, or as given in
`assignments` (replicas of the new partitions only). `validate_only` checks without changing anything.
The topics of one request grow concurrently, so the answer waits about as long as the slowest topic's new
leaders, not their sum, as Kafka's controller handles a request's topics together (librdkafka's test 0081
grows nine topics in one request with a 6.5 s operation timeout; one after the other outlived it on a
loaded three-broker cluster). The controller-mutation quota is charged in request order first.

Errors per topic: NONE; INVALID_REQUEST (topic named twice); UNKNOWN_TOPIC_OR_PARTITION; INVALID_PARTITIONS
(count equal to or lower than the current count); INVALID_REPLICA_ASSIGNMENT (wrong number of assignments,
duplicate or unknown brokers), TOPIC_AUTHORIZATION_FAILED (no ALTER on the topic); THROTTLING_QUOTA_EXCEEDED
(v3+, the controller_mutation_rate quota was already exhausted; new partitions count against it, KIP-599).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from strom.apis._admin_util import build, error_of, kio_module
from strom.apis._authz import may
from strom.apis._build import throttle_time
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec
from strom.security.authorizer import AclOperation, ResourceType
from strom.security.quotas.controller_mutation import ThrottlingQuotaExceeded
from strom.security.quotas.throttling import mutation_quota, mutation_throttle_ms

API_KEY = 37
MIN_VERSION = 0
MAX_VERSION = 3
STRICT_QUOTA_SINCE = 3  # KIP-599: older versions are throttled but never refused


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("create_partitions", ctx.api_version, "response")
    backend = ctx.broker.metadata
    counts = Counter(t.name for t in request.topics)
    results: list[Any] = []
    answered: set[str] = set()
    quota = mutation_quota(ctx, STRICT_QUOTA_SINCE)
    # (slot in results, topic, manual assignment), grown after the checks below
    pending: list[tuple[int, Any, list[list[int]] | None]] = []

    def result(name: str, code: ErrorCode, message: str | None) -> Any:
        return build(mod.CreatePartitionsTopicResult, name=name, error_code=code, error_message=message)

    for topic in request.topics:
        code, message = ErrorCode.none, None
        if counts[topic.name] > 1:
            if topic.name in answered:
                continue
            answered.add(topic.name)
            code, message = ErrorCode.invalid_request, "Duplicate topic in request."
        elif not may(ctx, AclOperation.ALTER, ResourceType.TOPIC, topic.name):
            code, message = ErrorCode.topic_authorization_failed, None
        else:
            assignments = (
                [list(a.broker_ids) for a in topic.assignments] if topic.assignments is not None else None
            )
            current = backend.image.topics.get(topic.name)
            try:
                quota.record(int(topic.count) - len(current.partitions) if current else 0)
            except ThrottlingQuotaExceeded as exc:
                code, message = exc.code, None  # as CreateTopics answers it
            else:
                pending.append((len(results), topic, assignments))
        results.append(result(topic.name, code, message))

    async def grow(slot: int, topic: Any, assignments: list[list[int]] | None) -> None:
        try:
            await backend.create_partitions(
                topic.name, int(topic.count), assignments, validate_only=bool(request.validate_only)
            )
        except Exception as exc:
            results[slot] = result(topic.name, *error_of(exc))

    await asyncio.gather(*(grow(*item) for item in pending))
    throttle = throttle_time(mutation_throttle_ms(ctx, quota))
    return mod.CreatePartitionsResponse(throttle_time=throttle, results=tuple(results))


SPEC = ApiSpec(API_KEY, MIN_VERSION, MAX_VERSION, handle, name="CreatePartitions")
