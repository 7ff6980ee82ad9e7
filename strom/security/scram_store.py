"""Where a broker keeps SCRAM credentials (KIP-554), in each mode's place and in Kafka's layout.

- ZooKeeper (`zookeeper.connect` set): `/config/users/<user>` is `{"version":1,"config":{"SCRAM-SHA-256":
  "salt=...,stored_key=...,server_key=...,iterations=4096"}}`, beside any quota keys of that user (kept
  as they are), written with a version check and a `/config/changes` notification `users/<user>`, as
  Kafka's AdminZkClient.changeUserOrUserClientIdConfig writes them. Brokers read the znode at each
  authentication, so a credential altered through any broker is in force everywhere at once.
- Single node: `<data dir>/scram-credentials.json` (the same credential strings per user and mechanism),
  rewritten atomically (temp file, fsync, rename), beside the local backend's cluster-metadata.json.

`get(user, mechanism)` for authentication; `all()` for DescribeUserScramCredentials; `alter(upsertions,
deletions)` for AlterUserScramCredentials (validated by the handler first). Credentials never leave the
broker: Describe answers only mechanisms and iteration counts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any, Protocol

from strom.security.scram_credentials import (
    SCRAM_MECHANISMS,
    ScramCredential,
    credential_from_string,
    credential_to_string,
)

__all__ = ["LocalScramStore", "ScramStore", "ZkScramStore", "scram_store_for"]

log = logging.getLogger("strom.security.scram")

Credentials = dict[str, dict[str, ScramCredential]]
"""user -> mechanism name -> credential."""

FILE_NAME = "scram-credentials.json"


class ScramStore(Protocol):
    async def get(self, user: str, mechanism: str) -> ScramCredential | None: ...

    async def all(self) -> Credentials: ...

    async def alter(
        self, upsertions: list[tuple[str, str, ScramCredential]], deletions: list[tuple[str, str]]
    ) -> None: ...


def _parse_user(config: dict[str, str], user: str) -> dict[str, ScramCredential]:
    out: dict[str, ScramCredential] = {}
    for mechanism in SCRAM_MECHANISMS:
        text = config.get(mechanism)
        if text is None:
            continue
        try:
            out[mechanism] = credential_from_string(text)
        except ValueError:
            log.warning("ignoring an unreadable %s credential of user %s", mechanism, user)
    return out


class LocalScramStore:
    """Credentials of a single-node broker, in one JSON file in its data directory."""

    def __init__(self, data_dir: Path) -> None:
        self._path = Path(data_dir) / FILE_NAME
        self._users: dict[str, dict[str, str]] = {}
        self._lock = asyncio.Lock()
        if self._path.exists():
            doc = json.loads(self._path.read_text(encoding="utf-8"))
            self._users = {str(u): dict(c) for u, c in (doc.get("users") or {}).items()}

    async def get(self, user: str, mechanism: str) -> ScramCredential | None:
        return _parse_user(self._users.get(user, {}), user).get(mechanism)

    async def all(self) -> Credentials:
        return {user: creds for user in self._users if (creds := _parse_user(self._users[user], user))}

    async def alter(
        self, upsertions: list[tuple[str, str, ScramCredential]], deletions: list[tuple[str, str]]
    ) -> None:
        async with self._lock:
            users = {u: dict(c) for u, c in self._users.items()}
            for user, mechanism in deletions:
                users.get(user, {}).pop(mechanism, None)
            for user, mechanism, credential in upsertions:
                users.setdefault(user, {})[mechanism] = credential_to_string(credential)
            users = {u: c for u, c in users.items() if c}
            data = json.dumps({"version": 1, "users": users}, indent=1, sort_keys=True).encode("utf-8")
            await asyncio.to_thread(_write_atomically, self._path, data)
            self._users = users


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


class ZkScramStore:
    """Credentials in ZooKeeper's `/config/users/<user>` (the kazoo client of the ZooKeeper backend)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _read(self, user: str) -> tuple[dict[str, str], int | None]:
        from kazoo.exceptions import NoNodeError

        from strom.cluster import zk_layout as L

        try:
            data, stat = self._client.get(f"/config/users/{user}")
        except NoNodeError:
            return {}, None
        return L.decode_config(data), stat.version

    async def get(self, user: str, mechanism: str) -> ScramCredential | None:
        config, _version = await asyncio.to_thread(self._read, user)
        return _parse_user(config, user).get(mechanism)

    def _all(self) -> Credentials:
        from kazoo.exceptions import NoNodeError

        try:
            users = self._client.get_children("/config/users")
        except NoNodeError:
            return {}
        out: Credentials = {}
        for user in users:
            creds = _parse_user(self._read(user)[0], user)
            if creds:
                out[user] = creds
        return out

    async def all(self) -> Credentials:
        return await asyncio.to_thread(self._all)

    def _alter_user(self, user: str, changes: dict[str, ScramCredential | None]) -> None:
        from kazoo.exceptions import BadVersionError, NodeExistsError

        from strom.cluster import zk_layout as L

        while True:
            config, version = self._read(user)
            for mechanism, credential in changes.items():
                if credential is None:
                    config.pop(mechanism, None)
                else:
                    config[mechanism] = credential_to_string(credential)
            txn = self._client.transaction()
            if version is None:
                txn.create(f"/config/users/{user}", L.encode_config(config))
            else:
                txn.set_data(f"/config/users/{user}", L.encode_config(config), version=version)
            change = L.encode_config_change(f"users/{user}")
            txn.create(f"{L.CONFIG_CHANGES}/{L.CONFIG_CHANGE_PREFIX}", change, sequence=True)
            results = txn.commit()
            if not any(isinstance(r, BadVersionError | NodeExistsError) for r in results):
                failures = [r for r in results if isinstance(r, Exception)]
                if failures:
                    raise failures[0]
                return
            # someone changed the user in between: re-read and apply our change again

    def _alter(
        self, upsertions: list[tuple[str, str, ScramCredential]], deletions: list[tuple[str, str]]
    ) -> None:
        self._client.ensure_path("/config/users")
        by_user: dict[str, dict[str, ScramCredential | None]] = {}
        for user, mechanism in deletions:
            by_user.setdefault(user, {})[mechanism] = None
        for user, mechanism, credential in upsertions:
            by_user.setdefault(user, {})[mechanism] = credential
        for user, changes in by_user.items():
            self._alter_user(user, changes)

    async def alter(
        self, upsertions: list[tuple[str, str, ScramCredential]], deletions: list[tuple[str, str]]
    ) -> None:
        await asyncio.to_thread(self._alter, upsertions, deletions)


def scram_store_for(backend: Any, data_dir: Path) -> ScramStore:
    """The backend's own store when it has one (`scram_store()`: KRaft's UserScramCredentialRecords), the
    ZooKeeper store when the cluster backend is ZooKeeper's, else the local file."""
    own = getattr(backend, "scram_store", None)
    if callable(own):
        return own()  # type: ignore[no-any-return]
    store = getattr(backend, "store", None)
    client = getattr(store, "client", None)
    if client is not None:
        return ZkScramStore(client)
    return LocalScramStore(data_dir)
