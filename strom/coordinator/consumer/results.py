"""Inputs and outputs of the consumer-group (KIP-848) core, independent of wire versions: the API modules
translate ConsumerGroupHeartbeat / ConsumerGroupDescribe requests into these and back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from strom.coordinator.consumer.records import Partitions
from strom.protocol.errors import ErrorCode


@dataclass(frozen=True, slots=True)
class HeartbeatRequest:
    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: tuple[str, ...] | None = None
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    # the partitions the member owns, by topic id; None when the request leaves them out
    owned: dict[uuid.UUID, set[int]] | None = None
    client_id: str = ""
    client_host: str = ""
    # v1+: the member id is the client's own (KIP-1082) and must be set from the first heartbeat
    version: int = 1


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    error: ErrorCode
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    assignment: Partitions | None = None


@dataclass(frozen=True, slots=True)
class DescribedMember:
    member_id: str
    instance_id: str | None
    rack_id: str | None
    member_epoch: int
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]
    subscribed_topic_regex: str
    assignment: list[tuple[uuid.UUID, str, list[int]]]
    target_assignment: list[tuple[uuid.UUID, str, list[int]]]
    # ConsumerGroupDescribe v1+: 0 for a member using the classic protocol, 1 for the consumer protocol
    member_type: int = 1


@dataclass(frozen=True, slots=True)
class DescribedGroup:
    group_id: str
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    state: str = ""
    group_epoch: int = 0
    assignment_epoch: int = 0
    assignor: str = ""
    members: list[DescribedMember] = field(default_factory=list)
