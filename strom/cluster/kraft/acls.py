"""ACLs in KRaft mode: AccessControlEntryRecord and RemoveAccessControlEntryRecord in `__cluster_metadata`,
as Kafka 4.4's AclControlManager writes them and its StandardAuthorizer loads them.

- Creating: each new binding gets a random id (a Uuid, never the zero one) and one AccessControlEntryRecord;
  a binding that exists already, or twice in one request, is written once and succeeds (Kafka answers
  success without a record).
- Deleting: every binding a filter matches gets one RemoveAccessControlEntryRecord (once, however many
  filters match it); each filter's result lists what it matched.
- The records of one request are one batch, so every node's authorizer sees all or none of them.

Two `strom.security.acl_store.AclStore`s over this: `ControllerAclStore` on controllers (CreateAcls and
DeleteAcls, served directly or forwarded in an Envelope, append through the quorum controller) and
`ReplayedAclStore` on KRaft brokers, which only follows the replayed log: a broker forwards CreateAcls and
DeleteAcls to the controller (strom.cluster.kraft.forwarding) and never writes ACLs itself. Both call the
authorizer's `load` with the whole set whenever the replayed set changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

from strom.metadata.image import MetadataState
from strom.metadata.records import AccessControlEntryRecord, RemoveAccessControlEntryRecord
from strom.metadata.serde import ApiMessageAndVersion
from strom.protocol.errors import ErrorCode, KafkaError
from strom.security.acl import AclBinding, AclBindingFilter

__all__ = ["AclWatcher", "ControllerAclStore", "ReplayedAclStore", "create_acl_records", "delete_acl_records"]

OnChange = Callable[[frozenset[AclBinding]], None]


def _new_id(taken: Iterable[uuid.UUID]) -> uuid.UUID:
    used = set(taken)
    while True:
        candidate = uuid.uuid4()
        if candidate not in used:
            return candidate


def create_acl_records(state: MetadataState, bindings: Iterable[AclBinding]) -> list[ApiMessageAndVersion]:
    """The records adding the bindings not present yet (already validated)."""
    present = set(state.acls.values())
    records = []
    for binding in bindings:
        if binding in present:
            continue
        present.add(binding)
        p, e = binding.pattern, binding.entry
        record = AccessControlEntryRecord(
            id=_new_id(state.acls),
            resource_type=int(p.resource_type),
            resource_name=p.name,
            pattern_type=int(p.pattern_type),
            principal=e.principal,
            host=e.host,
            operation=int(e.operation),
            permission_type=int(e.permission),
        )
        records.append(ApiMessageAndVersion(record, 0))
    return records


def delete_acl_records(
    state: MetadataState, filters: Iterable[AclBindingFilter]
) -> tuple[list[ApiMessageAndVersion], list[list[AclBinding]]]:
    """(removal records, per filter the bindings it matched)."""
    removed: set[uuid.UUID] = set()
    records = []
    matched = []
    for acl_filter in filters:
        hits = []
        for acl_id, binding in state.acls.items():
            if acl_filter.matches(binding):
                hits.append(binding)
                if acl_id not in removed:
                    removed.add(acl_id)
                    records.append(ApiMessageAndVersion(RemoveAccessControlEntryRecord(id=acl_id), 0))
        matched.append(hits)
    return records, matched


class AclWatcher:
    """Calls `on_change` with the whole ACL set when a state's ACLs changed since the last look."""

    def __init__(self) -> None:
        self.on_change: OnChange = lambda _bindings: None
        self._seen: tuple[int, int] | None = None

    def __call__(self, state: MetadataState) -> None:
        key = (id(state), state.acls_version)
        if key != self._seen:
            self._seen = key
            self.on_change(frozenset(state.acls.values()))


class ControllerAclStore:
    """The AclStore of a controller: writes through the active quorum controller (NOT_CONTROLLER
    elsewhere), reads what the controller replayed."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self.watcher = AclWatcher()
        controller.watchers.append(self.watcher)

    async def start(self, on_change: OnChange) -> None:
        self.watcher.on_change = on_change
        self.watcher(self.controller.state)

    async def stop(self) -> None:
        return None

    def _check_active(self) -> None:
        if not self.controller.is_active:
            raise KafkaError("This is not the active controller.", code=ErrorCode.not_controller)

    async def create(self, bindings: list[AclBinding]) -> None:
        self._check_active()
        records = create_acl_records(self.controller.state, bindings)
        if records:
            await self.controller.wait_committed(self.controller.append(records))

    async def delete(self, filters: list[AclBindingFilter]) -> list[list[AclBinding]]:
        self._check_active()
        records, matched = delete_acl_records(self.controller.state, filters)
        if records:
            await self.controller.wait_committed(self.controller.append(records))
        return matched


class ReplayedAclStore:
    """The AclStore of a KRaft broker: the ACLs of its replayed metadata log."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.watcher = AclWatcher()
        backend.watchers.append(self.watcher)

    async def start(self, on_change: OnChange) -> None:
        self.watcher.on_change = on_change
        self.watcher(self.backend.state)

    async def stop(self) -> None:
        return None

    async def create(self, bindings: list[AclBinding]) -> None:
        # unreachable in a running broker: CreateAcls is forwarded to the controller
        raise KafkaError("ACLs are created by the controller", code=ErrorCode.not_controller)

    async def delete(self, filters: list[AclBindingFilter]) -> list[list[AclBinding]]:
        raise KafkaError("ACLs are deleted by the controller", code=ErrorCode.not_controller)
