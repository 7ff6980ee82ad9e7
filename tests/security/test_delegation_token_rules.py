"""Delegation tokens (KIP-48): the HMAC as Kafka computes it, lifetimes, renew/expire rules, expiry
removal, SCRAM `tokenauth` credentials, and the local and ZooKeeper layouts."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest

from strom.protocol.errors import ErrorCode
from strom.security.delegation_tokens import TokenManager, TokenSettings, token_hmac
from strom.security.principal import KafkaPrincipal
from strom.security.sasl import SaslError
from strom.security.sasl.scram import ScramClient, ScramServer
from strom.security.token_store import LocalTokenStore, decode_token, encode_token

ALICE = KafkaPrincipal("User", "alice")
BOB = KafkaPrincipal("User", "bob")
EVE = KafkaPrincipal("User", "eve")
HOUR = 3600 * 1000


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def manager(tmp_path: Path, clock: Clock, **settings: int) -> TokenManager:
    return TokenManager(TokenSettings(secret_key="s3cret", **settings), LocalTokenStore(tmp_path), clock)


def test_hmac_is_hmac_sha512_of_the_token_id() -> None:
    expected = hmac.new(b"key", b"token-1", hashlib.sha512).digest()
    assert token_hmac("key", "token-1") == expected and len(expected) == 64


async def test_disabled_without_a_secret_key(tmp_path: Path) -> None:
    tokens = TokenManager(TokenSettings(), LocalTokenStore(tmp_path), Clock())
    assert (await tokens.create(ALICE, ALICE, [], -1)).code == ErrorCode.delegation_token_auth_disabled
    assert await tokens.renew(ALICE, b"x", -1) == (ErrorCode.delegation_token_auth_disabled, -1)


async def test_lifetimes_renew_and_expire(tmp_path: Path) -> None:
    clock = Clock()
    tokens = manager(tmp_path, clock, max_lifetime_ms=10 * HOUR, renew_ms=HOUR)
    created = await tokens.create(ALICE, ALICE, [BOB], 5 * HOUR)
    token = created.token
    assert token is not None and created.hmac == tokens.hmac_of(token.token_id)
    assert (token.issue_ms, token.expiry_ms, token.max_ms) == (clock.ms, clock.ms + HOUR, clock.ms + 5 * HOUR)
    assert await tokens.renew(EVE, created.hmac, -1) == (ErrorCode.delegation_token_owner_mismatch, -1)
    assert await tokens.renew(BOB, b"nope", -1) == (ErrorCode.delegation_token_not_found, -1)
    clock.ms += HOUR // 2
    assert await tokens.renew(BOB, created.hmac, 10 * HOUR) == (ErrorCode.none, token.max_ms)
    assert await tokens.expire(ALICE, created.hmac, HOUR) == (ErrorCode.none, clock.ms + HOUR)
    clock.ms += 2 * HOUR
    assert await tokens.renew(ALICE, created.hmac, -1) == (ErrorCode.delegation_token_expired, -1)
    assert await tokens.remove_expired() == [token.token_id]
    assert await tokens.tokens() == []


async def test_expire_now_and_invalid_renewer(tmp_path: Path) -> None:
    tokens = manager(tmp_path, Clock())
    bad = await tokens.create(ALICE, ALICE, [KafkaPrincipal("Group", "g")], -1)
    assert bad.code == ErrorCode.invalid_principal_type
    created = await tokens.create(ALICE, ALICE, [], -1)
    code, _ = await tokens.expire(ALICE, created.hmac, -1)
    assert code == ErrorCode.none and await tokens.tokens() == []


async def test_tokens_survive_a_restart_in_kafkas_znode_layout(tmp_path: Path) -> None:
    created = await manager(tmp_path, Clock()).create(BOB, ALICE, [BOB], -1)
    assert created.token is not None
    again = await LocalTokenStore(tmp_path).all()
    assert again == {created.token.token_id: created.token}
    doc = encode_token(created.token)
    assert doc["owner"] == "User%3Aalice" and doc["tokenRequester"] == "User%3Abob" and doc["version"] == 3
    assert decode_token(created.token.token_id, doc) == created.token


async def _scram(server: ScramServer, user: str, password: str, token: bool) -> None:
    client = ScramClient("SCRAM-SHA-512", user, password, token=token)
    server_first = await server.evaluate(client.first())
    assert server_first is not None
    client.verify(await server.evaluate(client.final(server_first)) or b"")


async def test_scram_tokenauth_authenticates_as_the_owner(tmp_path: Path) -> None:
    clock = Clock()
    tokens = manager(tmp_path, clock)
    created = await tokens.create(BOB, ALICE, [], -1)
    assert created.token is not None
    password = base64.b64encode(created.hmac).decode()

    async def no_user(_user: str, _mechanism: str) -> None:
        return None

    server = ScramServer("SCRAM-SHA-512", no_user, tokens.scram_lookup)
    await _scram(server, created.token.token_id, password, token=True)
    assert server.authorization_id == "alice" and server.token_authenticated
    assert server.credential_expiration_ms == created.token.expiry_ms
    with pytest.raises(SaslError, match="Invalid tokenId"):
        await _scram(ScramServer("SCRAM-SHA-512", no_user, tokens.scram_lookup), "unknown", password, True)
    clock.ms = created.token.expiry_ms + 1  # expired tokens no longer authenticate
    with pytest.raises(SaslError, match="Invalid tokenId"):
        await _scram(ScramServer("SCRAM-SHA-512", no_user, tokens.scram_lookup), created.token.token_id,
                     password, True)
