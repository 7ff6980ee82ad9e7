"""ACLs in ZooKeeper, in the layout Kafka's AclAuthorizer kept (kafka.zk.ZkAclStore, KIP-290):

    /kafka-acl/<ResourceType>/<name>                      LITERAL patterns
    /kafka-acl-extended/prefixed/<ResourceType>/<name>    PREFIXED patterns
        {"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Read",
                              "host":"*"}]}
    /kafka-acl-changes/acl_changes_<seq>                  "Topic:orders" after a LITERAL change
    /kafka-acl-extended-changes/acl_changes_<seq>         after a PREFIXED change:
        {"version":1,"resourceType":"Topic","name":"orders","patternType":"PREFIXED"}

A resource's znode is written with its version (compare-and-set, retried when another broker won), then
a sequential change node tells every broker; each broker watches both change paths and reloads the ACLs
when a child appears. Change nodes older than 15 minutes are purged by the writer, as Kafka does.
Blocking kazoo calls run in worker threads; the watch callbacks hop back onto the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError, NotEmptyError

from strom.security.acl import AclBinding, AclBindingFilter, ResourcePattern, camel_name, from_camel_name
from strom.security.acl_store import OnChange, decode_entries, encode_entries
from strom.security.authorizer import PatternType, ResourceType

__all__ = ["ZkAclStore", "acl_path"]

log = logging.getLogger("strom.security.zk_acl_store")

LITERAL_ROOT = "/kafka-acl"
PREFIXED_ROOT = "/kafka-acl-extended/prefixed"
LITERAL_CHANGES = "/kafka-acl-changes"
EXTENDED_CHANGES = "/kafka-acl-extended-changes"
CHANGE_PREFIX = "acl_changes_"
CHANGE_EXPIRY_MS = 15 * 60 * 1000


def _root(pattern_type: PatternType) -> str:
    return LITERAL_ROOT if pattern_type == PatternType.LITERAL else PREFIXED_ROOT


def acl_path(pattern: ResourcePattern) -> str:
    return f"{_root(pattern.pattern_type)}/{camel_name(pattern.resource_type)}/{pattern.name}"


def _change(pattern: ResourcePattern) -> tuple[str, bytes]:
    if pattern.pattern_type == PatternType.LITERAL:
        return LITERAL_CHANGES, f"{camel_name(pattern.resource_type)}:{pattern.name}".encode()
    event = {
        "version": 1,
        "resourceType": camel_name(pattern.resource_type),
        "name": pattern.name,
        "patternType": pattern.pattern_type.name,
    }
    return EXTENDED_CHANGES, json.dumps(event, separators=(",", ":")).encode()


class ZkAclStore:
    """ACLs of a ZooKeeper-mode cluster, through the broker's own ZooKeeper session."""

    def __init__(self, client: KazooClient, *, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_change: OnChange = lambda _b: None
        self._reload_wanted = asyncio.Event()
        self._reloader: asyncio.Task[None] | None = None
        self._bindings: frozenset[AclBinding] = frozenset()
        self._lock = asyncio.Lock()

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self, on_change: OnChange) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_change = on_change
        await asyncio.to_thread(self._ensure_paths)
        await self._reload()
        self._reloader = asyncio.create_task(self._reload_loop(), name="zk-acl-reload")

    async def stop(self) -> None:
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader
            self._reloader = None
        self._loop = None

    def _ensure_paths(self) -> None:
        for path in (LITERAL_ROOT, PREFIXED_ROOT, LITERAL_CHANGES, EXTENDED_CHANGES):
            self.client.ensure_path(path)

    # --- reading and watching ---------------------------------------------------------------------
    def _on_watch(self, _event: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._reload_wanted.set)

    async def _reload_loop(self) -> None:
        while True:
            await self._reload_wanted.wait()
            self._reload_wanted.clear()
            try:
                await self._reload()
            except Exception as exc:  # a lost session: the next watch or write reloads again
                log.warning("reloading ACLs from ZooKeeper failed: %r", exc)

    async def _reload(self) -> None:
        bindings = await asyncio.to_thread(self._read_all)
        self._bindings = bindings
        self._on_change(bindings)

    def _read_all(self) -> frozenset[AclBinding]:
        # arm the change watches before reading, so no change between the read and the watch is lost
        for path in (LITERAL_CHANGES, EXTENDED_CHANGES):
            self.client.get_children(path, watch=self._on_watch)
        found: set[AclBinding] = set()
        for pattern_type in (PatternType.LITERAL, PatternType.PREFIXED):
            root = _root(pattern_type)
            for type_name in self._children(root):
                resource_type = ResourceType(from_camel_name(ResourceType, type_name))
                if resource_type == ResourceType.UNKNOWN:
                    continue
                for name in self._children(f"{root}/{type_name}"):
                    pattern = ResourcePattern(resource_type, name, pattern_type)
                    try:
                        data, _stat = self.client.get(acl_path(pattern))
                    except NoNodeError:
                        continue
                    found.update(AclBinding(pattern, e) for e in decode_entries(data))
        return frozenset(found)

    def _children(self, path: str) -> list[str]:
        try:
            return self.client.get_children(path)
        except NoNodeError:
            return []

    # --- writing ----------------------------------------------------------------------------------
    def _update(self, pattern: ResourcePattern, change: Callable[[set[Any]], set[Any]]) -> bool:
        """Compare-and-set one resource's znode; True when it changed (a change node is then written)."""
        path = acl_path(pattern)
        while True:
            try:
                data, stat = self.client.get(path)
                current, version = set(decode_entries(data)), stat.version
            except NoNodeError:
                current, version = set(), -1
            wanted = change(set(current))
            if wanted == current:
                return False
            try:
                if not wanted:
                    self.client.delete(path, version=version)
                elif version < 0:
                    self.client.create(path, encode_entries(wanted), makepath=True)
                else:
                    self.client.set(path, encode_entries(wanted), version=version)
            except (BadVersionError, NodeExistsError, NoNodeError, NotEmptyError):
                continue  # another broker changed it meanwhile: read again
            changes, payload = _change(pattern)
            self.client.create(f"{changes}/{CHANGE_PREFIX}", payload, sequence=True, makepath=True)
            return True

    def _purge_changes(self) -> None:
        cutoff = int(self._clock() * 1000) - CHANGE_EXPIRY_MS
        for path in (LITERAL_CHANGES, EXTENDED_CHANGES):
            for child in self._children(path):
                try:
                    _data, stat = self.client.get(f"{path}/{child}")
                    if stat.ctime < cutoff:
                        self.client.delete(f"{path}/{child}")
                except NoNodeError:
                    pass

    def _create(self, bindings: list[AclBinding]) -> None:
        by_pattern: dict[ResourcePattern, set[Any]] = {}
        for b in bindings:
            by_pattern.setdefault(b.pattern, set()).add(b.entry)
        for pattern, entries in by_pattern.items():
            self._update(pattern, lambda current, add=entries: current | add)  # type: ignore[misc]
        self._purge_changes()

    def _delete(self, filters: list[AclBindingFilter]) -> list[list[AclBinding]]:
        bindings = self._read_all()
        removed = [[b for b in bindings if f.matches(b)] for f in filters]
        by_pattern: dict[ResourcePattern, set[Any]] = {}
        for b in (b for group in removed for b in group):
            by_pattern.setdefault(b.pattern, set()).add(b.entry)
        for pattern, entries in by_pattern.items():
            self._update(pattern, lambda current, gone=entries: current - gone)  # type: ignore[misc]
        self._purge_changes()
        return removed

    async def create(self, bindings: list[AclBinding]) -> None:
        async with self._lock:
            await asyncio.to_thread(self._create, bindings)
            await self._reload()

    async def delete(self, filters: list[AclBindingFilter]) -> list[list[AclBinding]]:
        async with self._lock:
            removed = await asyncio.to_thread(self._delete, filters)
            await self._reload()
            return removed
