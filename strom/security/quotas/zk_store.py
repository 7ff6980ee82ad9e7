"""Client quotas in ZooKeeper, in the layout Kafka's ZooKeeper-mode brokers kept (AdminZkClient,
ClientQuotaManager's config handlers, KIP-55):

    /config/clients/<client-id>                    {"version":1,"config":{"producer_byte_rate":"1024"}}
    /config/users/<user>                           the user's quotas, beside its SCRAM credentials
    /config/users/<user>/clients/<client-id>       quotas of one client of one user
    /config/ips/<ip>                               {"version":1,"config":{"connection_creation_rate":"5"}}
    /config/changes/config_change_<seq>            {"version":2,"entity_path":"users/<user>/clients/<id>"}

Names are sanitized as Kafka's Sanitizer does (URL-encoded, `*` as %2A, space as %20); `<default>` is the
default entity. Whole-number keys are written as integers, the others as Java doubles ("200.0"). A znode
is written with its version (compare-and-set, retried) in one transaction with its change notification;
keys that are not quotas (SCRAM credentials) are kept. Every broker watches /config/changes and reloads
the quotas when a notification appears.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from strom.cluster import zk_layout as L
from strom.security.quotas.entities import (
    CLIENT_ID,
    CLIENT_KEYS,
    IP,
    IP_KEYS,
    QUOTA_KEYS,
    USER,
    QuotaEntity,
    Quotas,
)
from strom.security.quotas.store import OnChange

__all__ = ["ZkQuotaStore", "desanitize", "entity_path", "sanitize"]

log = logging.getLogger("strom.security.quotas")

DEFAULT = "<default>"


def sanitize(name: str) -> str:
    """Kafka's Sanitizer.sanitize (URLEncoder, then '+' as %20 and '*' as %2A)."""
    return quote(name, safe="").replace("~", "%7E").replace("*", "%2A")


def desanitize(name: str) -> str:
    return unquote(name)


def _node(name: str | None) -> str:
    return DEFAULT if name is None else sanitize(name)


def _name(node: str) -> str | None:
    return None if node == DEFAULT else desanitize(node)


def entity_path(entity: QuotaEntity) -> str:
    """The entity's path under /config (without it): users/alice/clients/app-1, clients/<default>."""
    if entity.has(IP):
        return f"ips/{_node(entity.get(IP))}"
    if entity.has(USER) and entity.has(CLIENT_ID):
        return f"users/{_node(entity.get(USER))}/clients/{_node(entity.get(CLIENT_ID))}"
    if entity.has(USER):
        return f"users/{_node(entity.get(USER))}"
    return f"clients/{_node(entity.get(CLIENT_ID))}"


def _render(key: str, value: float) -> str:
    whole = CLIENT_KEYS.get(key, IP_KEYS.get(key, False))
    return str(int(value)) if whole else repr(float(value))


def _values(config: Mapping[str, str]) -> dict[str, float]:
    out = {}
    for key, raw in config.items():
        if key in QUOTA_KEYS:
            try:
                out[key] = float(raw)
            except ValueError:
                log.warning("ignoring the unreadable quota %s=%r", key, raw)
    return out


class ZkQuotaStore:
    """Client quotas of a ZooKeeper-mode cluster, through the broker's own ZooKeeper session."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_change: OnChange = lambda _q: None
        self._reload_wanted = asyncio.Event()
        self._reloader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self, on_change: OnChange) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_change = on_change
        await asyncio.to_thread(self.client.ensure_path, L.CONFIG_CHANGES)
        await self._reload()
        self._reloader = asyncio.create_task(self._reload_loop(), name="zk-quota-reload")

    async def stop(self) -> None:
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader
            self._reloader = None
        self._loop = None

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
            except Exception as exc:  # a lost session: the next notification or write reloads again
                log.warning("reloading client quotas from ZooKeeper failed: %r", exc)

    async def _reload(self) -> None:
        self._on_change(await asyncio.to_thread(self._read_all))

    def _children(self, path: str) -> list[str]:
        try:
            return list(self.client.get_children(path))
        except NoNodeError:
            return []

    def _config(self, path: str) -> dict[str, float]:
        try:
            data, _stat = self.client.get(path)
        except NoNodeError:
            return {}
        return _values(L.decode_config(data))

    def _read_all(self) -> Quotas:
        # arm the watch before reading, so no notification between the read and the watch is lost
        self.client.get_children(L.CONFIG_CHANGES, watch=self._on_watch)
        found: Quotas = {}

        def add(entity: QuotaEntity, values: dict[str, float]) -> None:
            if values:
                found[entity] = values

        for node in self._children("/config/clients"):
            add(QuotaEntity(((CLIENT_ID, _name(node)),)), self._config(f"/config/clients/{node}"))
        for node in self._children("/config/ips"):
            add(QuotaEntity(((IP, _name(node)),)), self._config(f"/config/ips/{node}"))
        for node in self._children("/config/users"):
            user = _name(node)
            add(QuotaEntity(((USER, user),)), self._config(f"/config/users/{node}"))
            for client in self._children(f"/config/users/{node}/clients"):
                path = f"/config/users/{node}/clients/{client}"
                add(QuotaEntity(((CLIENT_ID, _name(client)), (USER, user))), self._config(path))
        return found

    # --- writing ----------------------------------------------------------------------------------
    def _write_entity(self, entity: QuotaEntity, values: Mapping[str, float]) -> None:
        relative = entity_path(entity)
        path = f"/config/{relative}"
        self.client.ensure_path(path.rsplit("/", 1)[0])
        while True:
            try:
                data, stat = self.client.get(path)
                config, version = L.decode_config(data), stat.version
            except NoNodeError:
                config, version = {}, None
            # keep what is not a quota (a user's SCRAM credentials)
            config = {k: v for k, v in config.items() if k not in QUOTA_KEYS}
            config.update({k: _render(k, v) for k, v in values.items()})
            txn = self.client.transaction()
            if version is None:
                txn.create(path, L.encode_config(config))
            else:
                txn.set_data(path, L.encode_config(config), version=version)
            change = L.encode_config_change(relative)
            txn.create(f"{L.CONFIG_CHANGES}/{L.CONFIG_CHANGE_PREFIX}", change, sequence=True)
            results = txn.commit()
            if any(isinstance(r, BadVersionError | NodeExistsError) for r in results):
                continue  # another writer won: read again and apply ours on top
            failures = [r for r in results if isinstance(r, Exception)]
            if failures:
                raise failures[0]
            return

    async def write(self, changes: Mapping[QuotaEntity, Mapping[str, float]]) -> None:
        async with self._lock:
            await asyncio.to_thread(self.client.ensure_path, L.CONFIG_CHANGES)
            for entity, values in changes.items():
                await asyncio.to_thread(self._write_entity, entity, values)
            await self._reload()
