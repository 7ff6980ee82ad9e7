"""FindCoordinator (api key 10), versions 0-6: which broker coordinates a group or a transactional id.

A group's coordinator is the leader of partition abs(javaHashCode(group)) % offsets.topic.num.partitions
of __consumer_offsets; a transactional id's, the leader of its partition of __transaction_state. The
internal topic is created on first use (COORDINATOR_NOT_AVAILABLE if that fails). The coordinator's
address is its endpoint on the listener the client connected through. v1 adds key_type
(0 group, 1 transaction) and error_message; v4 batches several keys (KIP-699); v5 only allows the
TRANSACTION_ABORTABLE error (KIP-890, never answered here); v6 adds key type 2 (KIP-932): the share
coordinator of a share-partition, whose key is "group:topicId:partition", is the leader of partition
abs(javaHashCode(key)) % share.coordinator.state.topic.num.partitions of __share_group_state (created on
first use). Key type 2 below v6 is INVALID_REQUEST, as in Kafka.

Errors: COORDINATOR_NOT_AVAILABLE (no leader yet, the topic cannot be created, or this broker leads the
group's offsets partition but has not loaded it yet), INVALID_REQUEST (unknown key type, or share key type
below v6), GROUP_AUTHORIZATION_FAILED / TRANSACTIONAL_ID_AUTHORIZATION_FAILED (no DESCRIBE on the group or
transactional id).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from strom.apis._authz import may
from strom.apis._build import build, entry_type, no_throttle
from strom.coordinator.group.schemas import partition_for
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 10

def _is_share_partition_key(key: str) -> bool:
    """A share coordinator key is "group:topicId:partition" (Kafka's SharePartitionKey): a group id, a
    base64url topic id of 16 bytes and a partition number; anything else is INVALID_REQUEST, as in Kafka."""
    parts = key.split(":")
    if len(parts) != 3 or not parts[0]:
        return False
    try:
        topic_id = base64.urlsafe_b64decode(parts[1] + "==")
    except (ValueError, binascii.Error):
        return False
    return len(topic_id) == 16 and parts[2].isdigit()


async def _locate(ctx: Any, key: str, key_type: int) -> tuple[ErrorCode, str | None, int, str, int]:
    """(error, message, node id, host, port) of the coordinator for `key`."""
    if key_type == 0 and not may(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, key):
        return ErrorCode.group_authorization_failed, None, -1, "", -1
    if key_type == 1 and not may(ctx, AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, key):
        return ErrorCode.transactional_id_authorization_failed, None, -1, "", -1
    try:
        if key_type == 0:
            info = await ctx.broker.group_coordinator.ensure_offsets_topic()
        elif key_type == 1:
            info = await ctx.broker.txn_coordinator.ensure_txn_topic()
        elif key_type == 2 and ctx.api_version >= 6:
            if not _is_share_partition_key(key):
                return ErrorCode.invalid_request, f"Invalid coordinator key {key}", -1, "", -1
            info = await ctx.broker.share_coordinator.ensure_state_topic()
        else:
            return ErrorCode.invalid_request, f"Unsupported key type {key_type}", -1, "", -1
    except KafkaError as exc:
        return ErrorCode.coordinator_not_available, exc.message, -1, "", -1
    if info is None:
        return ErrorCode.coordinator_not_available, None, -1, "", -1
    image = ctx.broker.metadata.image
    partition = partition_for(key, len(info.partitions))
    state = info.partitions.get(partition)
    broker = image.brokers.get(state.leader) if state is not None else None
    # the coordinator's address on the client's listener; a coordinator without it is not available
    endpoint = broker.endpoint(ctx.listener_name) if broker is not None else None
    if broker is None or endpoint is None:
        return ErrorCode.coordinator_not_available, None, -1, "", -1
    if key_type == 0 and broker.node_id == ctx.broker.node_id:
        core = ctx.broker.group_coordinator.core
        if partition not in core.owned:
            # this broker coordinates the group but has not loaded its offsets partition yet: clients
            # retry FindCoordinator until it has, rather than failing a commit on a loading coordinator
            return ErrorCode.coordinator_not_available, "the group's coordinator is loading", -1, "", -1
    return ErrorCode.none, None, broker.node_id, endpoint.host, endpoint.port


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    cls = response_type(API_KEY, version)
    key_type = getattr(request, "key_type", 0)
    if version >= 4:
        entry_cls = entry_type(cls, "coordinators")
        coordinators = []
        for key in request.coordinator_keys:
            error, message, node, host, port = await _locate(ctx, key, key_type)
            coordinators.append(
                build(
                    entry_cls,
                    key=key,
                    node_id=node,
                    host=host,
                    port=port,
                    error_code=error,
                    error_message=message,
                )
            )
        return build(cls, throttle_time=no_throttle(), coordinators=tuple(coordinators))
    error, message, node, host, port = await _locate(ctx, request.key, key_type)
    return build(
        cls,
        throttle_time=no_throttle(),
        error_code=error,
        error_message=message,
        node_id=node,
        host=host,
        port=port,
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=6, handler=handle, name="FindCoordinator")
