"""Delegation tokens in ZooKeeper, in Kafka's layout: `/delegation_token/tokens/<id>` (DelegationTokenZNode
version 3) and a `/delegation_token/token_changes/token_change_<seq>` notification per change."""

from __future__ import annotations

import json
from typing import Any

from strom.security.delegation_tokens import TokenInformation
from strom.security.principal import KafkaPrincipal
from strom.security.token_store import ZkTokenStore

ALICE = KafkaPrincipal("User", "alice")


async def test_tokens_in_kafkas_znodes(zk: Any) -> None:
    store = ZkTokenStore(zk)
    token = TokenInformation("tok-1", ALICE, KafkaPrincipal("User", "bob"), (KafkaPrincipal("User", "c d"),),
                             10, 30, 20)
    await store.put(token)
    data, _ = zk.get("/delegation_token/tokens/tok-1")
    assert json.loads(data) == {
        "version": 3, "owner": "User%3Aalice", "tokenRequester": "User%3Abob", "renewers": ["User%3Ac%20d"],
        "issueTimestamp": 10, "maxTimestamp": 30, "expiryTimestamp": 20,
    }
    assert await store.all() == {"tok-1": token}
    await store.remove("tok-1")
    assert await store.all() == {}
    changes = sorted(zk.get_children("/delegation_token/token_changes"))
    assert len(changes) == 2 and all(c.startswith("token_change_") for c in changes)
    assert zk.get(f"/delegation_token/token_changes/{changes[0]}")[0] == b"tok-1"
