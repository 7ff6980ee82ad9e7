"""CreateTopics (api key 19), versions 2-7.

Behaviour: each topic is validated and created on its own; one failure does not affect the others.
The topics of one request are created concurrently, so a request's answer waits about as long as its
slowest topic takes to get leaders, not their sum (librdkafka's tests create 100 topics in one request
with a 30 s timeout; one after the other took longer than that in a three-broker cluster). Topics whose
names collide (equal once '.' is read as '_') are created one after the other, in request order, so the
second is refused as colliding with the first, as Kafka refuses it.
`num_partitions` / `replication_factor` of -1 take the broker's `num.partitions` /
`default.replication.factor` (KIP-464, v4+); a manual assignment (`assignments`) requires both to be -1.
`validate_only` runs every check and answers as if created, creating nothing. Creation is synchronous,
so `timeout` is not waited on. v5+ answers the topic's partition count, replication factor and full
config list (the same entries DescribeConfigs gives, KIP-525); v7 adds the topic id (KIP-516).

Errors per topic: NONE; INVALID_REQUEST (topic named twice in the request, or both counts and a manual
assignment given); TOPIC_ALREADY_EXISTS; INVALID_TOPIC_EXCEPTION (name not 1..249 chars of [a-zA-Z0-9._-], or
"."/".."); INVALID_PARTITIONS (0 or below -1); INVALID_REPLICATION_FACTOR (0, below -1, or above the live
broker count); INVALID_REPLICA_ASSIGNMENT (gaps in partition ids, duplicate or unknown brokers);
INVALID_CONFIG (unknown key, null or unparsable value), TOPIC_AUTHORIZATION_FAILED (no CREATE on the cluster
or the topic; v5+ `topic_config_error_code` too without DESCRIBE_CONFIGS on the topic, whose configs are then
left out); THROTTLING_QUOTA_EXCEEDED (v6+, the user's or client's controller_mutation_rate was already
exhausted when the topic came up; its partitions count against the quota in request order, KIP-599).
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Any

from strom.apis._admin_util import build, error_of, kio_module
from strom.apis._authz import allowed, may
from strom.apis._build import throttle_time
from strom.apis._config_describe import describe_topic
from strom.cluster.metadata import TopicInfo
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec
from strom.security.authorizer import AclOperation, ResourceType
from strom.security.quotas.controller_mutation import ThrottlingQuotaExceeded
from strom.security.quotas.throttling import mutation_quota, mutation_throttle_ms

API_KEY = 19
MIN_VERSION = 2
MAX_VERSION = 7
STRICT_QUOTA_SINCE = 6  # KIP-599: older versions are throttled but never refused


def _result(mod: Any, name: str, **values: Any) -> Any:
    values.setdefault("error_message", None)
    values.setdefault("topic_id", None)
    values.setdefault("num_partitions", -1)
    values.setdefault("replication_factor", -1)
    values.setdefault("configs", ())
    return build(mod.CreatableTopicResult, name=name, **values)


def _success(ctx: Any, mod: Any, info: TopicInfo, *, with_configs: bool = True) -> Any:
    if not with_configs:
        return _result(
            mod,
            info.name,
            error_code=ErrorCode.none,
            topic_id=info.topic_id,
            num_partitions=len(info.partitions),
            replication_factor=info.replication_factor,
            topic_config_error_code=ErrorCode.topic_authorization_failed,
        )
    configs = (
        tuple(
            build(
                mod.CreatableTopicConfigs,
                name=e.name,
                value=e.value,
                read_only=e.read_only,
                config_source=int(e.source),
                is_sensitive=e.sensitive,
            )
            for e in describe_topic(ctx.broker.config, info.configs)
        )
        if hasattr(mod, "CreatableTopicConfigs")
        else ()
    )
    return _result(
        mod,
        info.name,
        error_code=ErrorCode.none,
        topic_id=info.topic_id,
        num_partitions=len(info.partitions),
        replication_factor=info.replication_factor,
        configs=configs,
    )


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("create_topics", ctx.api_version, "response")
    backend = ctx.broker.metadata
    counts = Counter(t.name for t in request.topics)
    results: list[Any] = []
    answered: set[str] = set()
    # CREATE on the cluster covers every topic, else CREATE on each; the configs answered (v5+) need
    # DESCRIBE_CONFIGS on the topic, or the topic's config error is TOPIC_AUTHORIZATION_FAILED
    names = [t.name for t in request.topics]
    creatable = set(names) if may(ctx, AclOperation.CREATE, ResourceType.CLUSTER) else allowed(
        ctx, AclOperation.CREATE, ResourceType.TOPIC, names
    )
    describable = allowed(ctx, AclOperation.DESCRIBE_CONFIGS, ResourceType.TOPIC, names)
    # (slot in results, topic, manual assignment) by collision key, created after the checks below
    pending: defaultdict[str, list[tuple[int, Any, dict[int, list[int]] | None]]] = defaultdict(list)
    quota = mutation_quota(ctx, STRICT_QUOTA_SINCE)
    default_partitions = int(ctx.broker.config.get("num.partitions"))
    for topic in request.topics:
        if counts[topic.name] > 1:
            # Kafka answers a duplicated name once, with INVALID_REQUEST
            if topic.name not in answered:
                answered.add(topic.name)
                results.append(
                    _result(
                        mod,
                        topic.name,
                        error_code=ErrorCode.invalid_request,
                        error_message="Duplicate topic name.",
                    )
                )
            continue
        if topic.name not in creatable:
            results.append(
                _result(
                    mod,
                    topic.name,
                    error_code=ErrorCode.topic_authorization_failed,
                    error_message="Authorization failed.",
                )
            )
            continue
        assignments = {a.partition_index: list(a.broker_ids) for a in topic.assignments} or None
        if assignments is not None and len(assignments) != len(topic.assignments):
            results.append(
                _result(
                    mod,
                    topic.name,
                    error_code=ErrorCode.invalid_replica_assignment,
                    error_message="A partition appears twice in the manual partition assignment.",
                )
            )
            continue
        partitions = len(assignments) if assignments else int(topic.num_partitions)
        try:
            quota.record(default_partitions if partitions == -1 else partitions)
        except ThrottlingQuotaExceeded as exc:
            # Kafka 4.4 answers this error without a message
            results.append(_result(mod, topic.name, error_code=exc.code, error_message=None))
            continue
        pending[str(topic.name).replace(".", "_")].append((len(results), topic, assignments))
        results.append(None)

    async def create(topic: Any, assignments: dict[int, list[int]] | None) -> Any:
        configs = {c.name: c.value for c in topic.configs}
        try:
            info = await backend.create_topic(
                topic.name,
                int(topic.num_partitions),
                int(topic.replication_factor),
                configs,
                assignments,
                validate_only=bool(request.validate_only),
            )
        except Exception as exc:
            code, message = error_of(exc)
            return _result(mod, topic.name, error_code=code, error_message=message)
        return _success(ctx, mod, info, with_configs=topic.name in describable)

    async def create_in_order(group: list[tuple[int, Any, dict[int, list[int]] | None]]) -> None:
        for slot, topic, assignments in group:
            results[slot] = await create(topic, assignments)

    await asyncio.gather(*(create_in_order(group) for group in pending.values()))
    throttle = throttle_time(mutation_throttle_ms(ctx, quota))
    return mod.CreateTopicsResponse(throttle_time=throttle, topics=tuple(results))


SPEC = ApiSpec(API_KEY, MIN_VERSION, MAX_VERSION, handle, name="CreateTopics")
