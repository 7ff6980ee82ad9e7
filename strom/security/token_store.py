"""Where a broker keeps delegation tokens (KIP-48), in each mode's place and in Kafka's layout.

- ZooKeeper (`zookeeper.connect` set): `/delegation_token/tokens/<token id>` holds Kafka's
  DelegationTokenZNode JSON, version 3 (KIP-373): `{"version":3,"owner":"User%3Aalice","tokenRequester":
  ...,"renewers":[...],"issueTimestamp":...,"maxTimestamp":...,"expiryTimestamp":...}` with principals
  URL-encoded as Kafka's Sanitizer does; every change also creates `/delegation_token/token_changes/
  token_change_<seq>` holding the token id, as Kafka's ZkDelegationTokenManager notifies. Brokers read the
  znodes when they need a token, so a token created or renewed through any broker holds everywhere.
- KRaft: the backend's own store (`token_store()`, DelegationTokenRecords in the metadata log).
- Single node: `<data dir>/delegation-tokens.json`, rewritten atomically.

The HMAC is never stored: brokers derive it from `delegation.token.secret.key`.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from pathlib import Path
from typing import Any

from strom.security.delegation_tokens import TokenInformation, TokenStore
from strom.security.principal import KafkaPrincipal
from strom.security.scram_store import _write_atomically

__all__ = ["LocalTokenStore", "ZkTokenStore", "decode_token", "encode_token", "token_store_for"]

FILE_NAME = "delegation-tokens.json"
TOKENS_PATH = "/delegation_token/tokens"
CHANGES_PATH = "/delegation_token/token_changes"
CHANGE_PREFIX = "token_change_"


def _sanitize(principal: KafkaPrincipal) -> str:
    # Kafka's Sanitizer.sanitize: URL encoding with '*' as %2A and spaces as %20
    return urllib.parse.quote(str(principal), safe="").replace("*", "%2A")


def _principal(text: str) -> KafkaPrincipal:
    return KafkaPrincipal.parse(urllib.parse.unquote(text))


def encode_token(token: TokenInformation) -> dict[str, Any]:
    """Kafka's DelegationTokenZNode.encode, as a dict (the token id is the znode's name)."""
    return {
        "version": 3,
        "owner": _sanitize(token.owner),
        "tokenRequester": _sanitize(token.requester),
        "renewers": [_sanitize(r) for r in token.renewers],
        "issueTimestamp": token.issue_ms,
        "maxTimestamp": token.max_ms,
        "expiryTimestamp": token.expiry_ms,
    }


def decode_token(token_id: str, doc: dict[str, Any]) -> TokenInformation:
    owner = _principal(str(doc["owner"]))
    # version 1-2 znodes have no requester: the owner asked for the token
    requester = _principal(str(doc["tokenRequester"])) if doc.get("tokenRequester") else owner
    return TokenInformation(
        token_id=token_id, owner=owner, requester=requester,
        renewers=tuple(_principal(str(r)) for r in doc.get("renewers") or ()),
        issue_ms=int(doc["issueTimestamp"]), max_ms=int(doc["maxTimestamp"]),
        expiry_ms=int(doc["expiryTimestamp"]),
    )


class LocalTokenStore:
    """Tokens of a single-node broker, in one JSON file in its data directory."""

    def __init__(self, data_dir: Path) -> None:
        self._path = Path(data_dir) / FILE_NAME
        self._tokens: dict[str, TokenInformation] = {}
        self._lock = asyncio.Lock()
        if self._path.exists():
            doc = json.loads(self._path.read_text(encoding="utf-8"))
            self._tokens = {tid: decode_token(tid, t) for tid, t in (doc.get("tokens") or {}).items()}

    async def all(self) -> dict[str, TokenInformation]:
        return dict(self._tokens)

    async def _save(self, tokens: dict[str, TokenInformation]) -> None:
        doc = {"version": 1, "tokens": {tid: encode_token(t) for tid, t in tokens.items()}}
        await asyncio.to_thread(
            _write_atomically, self._path, json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")
        )
        self._tokens = tokens

    async def put(self, token: TokenInformation) -> None:
        async with self._lock:
            await self._save({**self._tokens, token.token_id: token})

    async def remove(self, token_id: str) -> None:
        async with self._lock:
            if token_id in self._tokens:
                await self._save({k: v for k, v in self._tokens.items() if k != token_id})


class ZkTokenStore:
    """Tokens in ZooKeeper's `/delegation_token/tokens` (the kazoo client of the ZooKeeper backend)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _all(self) -> dict[str, TokenInformation]:
        from kazoo.exceptions import NoNodeError

        try:
            ids = self._client.get_children(TOKENS_PATH)
        except NoNodeError:
            return {}
        out: dict[str, TokenInformation] = {}
        for token_id in ids:
            try:
                data, _stat = self._client.get(f"{TOKENS_PATH}/{token_id}")
            except NoNodeError:
                continue  # expired between the listing and the read
            out[token_id] = decode_token(token_id, json.loads(data.decode("utf-8")))
        return out

    async def all(self) -> dict[str, TokenInformation]:
        return await asyncio.to_thread(self._all)

    def _notify(self, txn: Any, token_id: str) -> None:
        txn.create(f"{CHANGES_PATH}/{CHANGE_PREFIX}", token_id.encode("utf-8"), sequence=True)

    def _put(self, token: TokenInformation) -> None:
        from kazoo.exceptions import NoNodeError

        self._client.ensure_path(TOKENS_PATH)
        self._client.ensure_path(CHANGES_PATH)
        path = f"{TOKENS_PATH}/{token.token_id}"
        data = json.dumps(encode_token(token), separators=(",", ":")).encode("utf-8")
        txn = self._client.transaction()
        try:
            self._client.get(path)
            txn.set_data(path, data)
        except NoNodeError:
            txn.create(path, data)
        self._notify(txn, token.token_id)
        failures = [r for r in txn.commit() if isinstance(r, Exception)]
        if failures:
            raise failures[0]

    async def put(self, token: TokenInformation) -> None:
        await asyncio.to_thread(self._put, token)

    def _remove(self, token_id: str) -> None:
        from kazoo.exceptions import NoNodeError

        self._client.ensure_path(CHANGES_PATH)
        txn = self._client.transaction()
        txn.delete(f"{TOKENS_PATH}/{token_id}")
        self._notify(txn, token_id)
        failures = [r for r in txn.commit() if isinstance(r, Exception)]
        if failures and not isinstance(failures[0], NoNodeError):
            raise failures[0]

    async def remove(self, token_id: str) -> None:
        await asyncio.to_thread(self._remove, token_id)


def token_store_for(backend: Any, data_dir: Path) -> TokenStore:
    """The backend's own store when it has one (`token_store()`: KRaft's DelegationTokenRecords), the
    ZooKeeper store when the cluster backend is ZooKeeper's, else the local file."""
    own = getattr(backend, "token_store", None)
    if callable(own):
        return own()  # type: ignore[no-any-return]
    client = getattr(getattr(backend, "store", None), "client", None)
    if client is not None:
        return ZkTokenStore(client)
    return LocalTokenStore(data_dir)
