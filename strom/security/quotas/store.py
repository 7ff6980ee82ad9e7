"""Where client quotas live, one store per metadata mode, behind one interface (`QuotaStore`).

- Single node: `LocalQuotaStore`, `<data dir>/client-quotas.json` rewritten atomically (write, fsync,
  rename): a list of entities (Kafka's entity types and names, null for a default) with their values.
- ZooKeeper: `strom.security.quotas.zk_store.ZkQuotaStore`, Kafka's `/config/clients/<id>`,
  `/config/users/<user>`, `/config/users/<user>/clients/<id>` and `/config/ips/<ip>` with change
  notifications under `/config/changes`, so a quota written through one broker reaches every broker.
- KRaft: the metadata log's ClientQuotaRecord (Kafka's ClientQuotaControlManager). A KRaft backend offers a
  `quota_store()` method returning this same protocol: `write` appends the records through the quorum
  controller, and replaying them calls `on_change` with the whole set, as the other stores do.

A store calls `on_change(quotas)` with every entity's values once at start and after every change it makes
or learns of; the quota manager swaps its table then. `write` returns once the change is durable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from strom.security.quotas.entities import QUOTA_KEYS, QuotaEntity, Quotas

__all__ = ["FILE_NAME", "LocalQuotaStore", "OnChange", "QuotaStore", "quota_store_for"]

log = logging.getLogger("strom.security.quotas")

FILE_NAME = "client-quotas.json"

OnChange = Callable[[Quotas], None]


class QuotaStore(Protocol):
    async def start(self, on_change: OnChange) -> None: ...

    async def stop(self) -> None: ...

    async def write(self, changes: Mapping[QuotaEntity, Mapping[str, float]]) -> None:
        """Give each entity exactly these values (an empty mapping removes the entity's quotas)."""


class LocalQuotaStore:
    """Quotas of a single-node broker, in one JSON file in its data directory."""

    def __init__(self, data_dir: Path) -> None:
        self._path = Path(data_dir) / FILE_NAME
        self._quotas: Quotas = {}
        self._on_change: OnChange = lambda _q: None
        self._lock = asyncio.Lock()

    async def start(self, on_change: OnChange) -> None:
        self._on_change = on_change
        if self._path.exists():
            self._quotas = decode_quotas(json.loads(self._path.read_text(encoding="utf-8")))
        on_change(dict(self._quotas))

    async def stop(self) -> None:
        return None

    async def write(self, changes: Mapping[QuotaEntity, Mapping[str, float]]) -> None:
        async with self._lock:
            quotas = {e: dict(v) for e, v in self._quotas.items()}
            for entity, values in changes.items():
                if values:
                    quotas[entity] = dict(values)
                else:
                    quotas.pop(entity, None)
            data = json.dumps(encode_quotas(quotas), indent=1).encode("utf-8")
            await asyncio.to_thread(_write_atomically, self._path, data)
            self._quotas = quotas
        self._on_change(dict(quotas))


def encode_quotas(quotas: Quotas) -> dict[str, Any]:
    return {
        "version": 1,
        "entities": [
            {
                "entity": [{"entity_type": t, "entity_name": n} for t, n in entity.parts],
                "values": dict(sorted(values.items())),
            }
            for entity, values in sorted(quotas.items(), key=lambda item: item[0].sort_key())
        ],
    }


def decode_quotas(doc: Any) -> Quotas:
    out: Quotas = {}
    for item in (doc or {}).get("entities", []):
        try:
            parts = tuple(sorted((str(p["entity_type"]), p.get("entity_name")) for p in item["entity"]))
            values = {str(k): float(v) for k, v in item["values"].items() if k in QUOTA_KEYS}
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring an unreadable client quota entry %r", item)
            continue
        if values:
            out[QuotaEntity(parts)] = values
    return out


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def quota_store_for(backend: Any, data_dir: Path) -> QuotaStore:
    """The backend's own store when it offers one (`quota_store()`: KRaft's ClientQuotaRecords),
    ZooKeeper's /config tree, or the single node's file."""
    own = getattr(backend, "quota_store", None)
    if callable(own):
        return own()  # type: ignore[no-any-return]
    client = getattr(getattr(backend, "store", None), "client", None)
    if client is not None:
        from strom.security.quotas.zk_store import ZkQuotaStore

        return ZkQuotaStore(client)
    from strom.cluster.local import LocalBackend

    if not isinstance(backend, LocalBackend):
        # a backend without a shared quota store yet: each node keeps its own file
        log.warning("client quotas are kept in %s, not in the cluster metadata", data_dir)
    return LocalQuotaStore(data_dir)
