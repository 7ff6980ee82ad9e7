"""Where ACLs live, one store per metadata mode, behind one interface (`AclStore`).

- Single node: `LocalAclStore`, `<data dir>/acls.json` rewritten atomically (write, fsync, rename), in
  the JSON shape Kafka gives each resource in ZooKeeper, keyed by pattern type, resource type and name.
- ZooKeeper: `strom.security.zk_acl_store.ZkAclStore`, Kafka's `/kafka-acl` layout with change
  notifications, so an ACL written through one broker reaches every broker.
- KRaft: the metadata log's AccessControlEntryRecord / RemoveAccessControlEntryRecord (Kafka's
  AclControlManager). A KRaft backend implements this same protocol: `create` and `delete` append the
  records through the quorum controller, and replaying them calls the `on_change` callback with the
  whole set, exactly as the other stores do.

A store calls `on_change(bindings)` with the full ACL set once at start and after every change it makes
or learns of; the authorizer swaps its index then. `create`/`delete` return once the change is durable.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from strom.security.acl import (
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    PermissionType,
    ResourcePattern,
    camel_name,
    from_camel_name,
)
from strom.security.authorizer import AclOperation, PatternType, ResourceType

__all__ = ["AclStore", "LocalAclStore", "decode_entries", "encode_entries"]

OnChange = Callable[[frozenset[AclBinding]], None]


class AclStore(Protocol):
    async def start(self, on_change: OnChange) -> None: ...

    async def stop(self) -> None: ...

    async def create(self, bindings: list[AclBinding]) -> None:
        """Add bindings (already validated); bindings present already are kept once."""

    async def delete(self, filters: list[AclBindingFilter]) -> list[list[AclBinding]]:
        """Remove every binding each filter matches; per filter, the bindings it removed."""


def encode_entries(entries: Iterable[AccessControlEntry]) -> bytes:
    """Kafka's ZooKeeper JSON of one resource's ACLs: {"version":1,"acls":[{principal, permissionType,
    operation, host}]}."""
    acls = [
        {
            "principal": e.principal,
            "permissionType": camel_name(e.permission),
            "operation": camel_name(e.operation),
            "host": e.host,
        }
        for e in sorted(entries, key=lambda e: (e.principal, e.host, e.operation, e.permission))
    ]
    return json.dumps({"version": 1, "acls": acls}, separators=(",", ":")).encode()


def decode_entries(data: bytes) -> list[AccessControlEntry]:
    if not data:
        return []
    doc = json.loads(data)
    return [
        AccessControlEntry(
            a["principal"],
            a["host"],
            AclOperation(from_camel_name(AclOperation, a["operation"])),
            PermissionType(from_camel_name(PermissionType, a["permissionType"])),
        )
        for a in doc.get("acls", ())
    ]


class LocalAclStore:
    """The single-node store: `<data_dir>/acls.json`."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "acls.json"
        self._bindings: set[AclBinding] = set()
        self._on_change: OnChange = lambda _b: None
        self._lock = asyncio.Lock()

    async def start(self, on_change: OnChange) -> None:
        self._on_change = on_change
        self._bindings = set(await asyncio.to_thread(self._read))
        on_change(frozenset(self._bindings))

    async def stop(self) -> None:
        return None

    def _read(self) -> list[AclBinding]:
        if not self.path.exists():
            return []
        doc = json.loads(self.path.read_text(encoding="utf-8"))
        found = []
        for item in doc.get("resources", ()):
            pattern = ResourcePattern(
                ResourceType(from_camel_name(ResourceType, item["resourceType"])),
                item["name"],
                PatternType(from_camel_name(PatternType, item["patternType"])),
            )
            found += [AclBinding(pattern, e) for e in decode_entries(json.dumps(item).encode())]
        return found

    def _write(self, bindings: frozenset[AclBinding]) -> None:
        by_pattern: dict[ResourcePattern, list[AccessControlEntry]] = {}
        for b in bindings:
            by_pattern.setdefault(b.pattern, []).append(b.entry)
        resources: list[dict[str, Any]] = []
        for pattern in sorted(by_pattern, key=lambda p: (p.pattern_type, p.resource_type, p.name)):
            item = json.loads(encode_entries(by_pattern[pattern]))
            item.update(
                resourceType=camel_name(pattern.resource_type),
                name=pattern.name,
                patternType=camel_name(pattern.pattern_type),
            )
            resources.append(item)
        tmp = self.path.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "resources": resources}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    async def _commit(self, bindings: set[AclBinding]) -> None:
        frozen = frozenset(bindings)
        await asyncio.to_thread(self._write, frozen)
        self._bindings = bindings
        self._on_change(frozen)

    async def create(self, bindings: list[AclBinding]) -> None:
        async with self._lock:
            await self._commit(self._bindings | set(bindings))

    async def delete(self, filters: list[AclBindingFilter]) -> list[list[AclBinding]]:
        async with self._lock:
            removed = [[b for b in self._bindings if f.matches(b)] for f in filters]
            gone = {b for group in removed for b in group}
            if gone:
                await self._commit(self._bindings - gone)
            return removed
