"""The delegation-token handlers' checks (KIP-48, KIP-373): connections that may not ask, CREATE_TOKENS
on the owner for a token of someone else, and which tokens Describe shows (owned, requested or renewable;
DESCRIBE on the token; DESCRIBE_TOKENS on its owner)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kio.schema.create_delegation_token.v3.request import CreateDelegationTokenRequest
from kio.schema.describe_delegation_token.v3.request import DescribeDelegationTokenRequest
from kio.static.primitive import i64Timedelta

from strom.apis import create_delegation_token, describe_delegation_token
from strom.protocol.errors import ErrorCode
from strom.security.authorizer import AclOperation, ResourceType
from strom.security.delegation_tokens import TokenManager, TokenSettings
from strom.security.principal import KafkaPrincipal
from strom.security.token_store import LocalTokenStore

ALICE, BOB, CAROL = (KafkaPrincipal("User", n) for n in ("alice", "bob", "carol"))


@dataclass
class FakeBroker:
    delegation_tokens: TokenManager


@dataclass
class Ctx:
    broker: FakeBroker
    principal: KafkaPrincipal
    api_version: int = 3
    security_protocol: str = "SASL_SSL"
    token_authenticated: bool = False
    forwarded: bool = False
    allowed: set[tuple[AclOperation, ResourceType, str]] = field(default_factory=set)

    def authorize(self, operation: AclOperation, resource_type: ResourceType, name: str) -> bool:
        return (operation, resource_type, name) in self.allowed


def _create(owner: KafkaPrincipal | None = None) -> CreateDelegationTokenRequest:
    return CreateDelegationTokenRequest(
        owner_principal_type=owner.principal_type if owner else None,
        owner_principal_name=owner.name if owner else None, renewers=(),
        max_lifetime=i64Timedelta.parse(datetime.timedelta(milliseconds=-1)),
    )


async def test_checks_of_create_and_describe(tmp_path: Path) -> None:
    broker = FakeBroker(TokenManager(TokenSettings(secret_key="k"), LocalTokenStore(tmp_path), lambda: 1000))
    handle_create: Any = create_delegation_token.handle
    handle_describe: Any = describe_delegation_token.handle
    not_allowed = ErrorCode.delegation_token_request_not_allowed
    for refused in (Ctx(broker, ALICE, security_protocol="PLAINTEXT"),
                    Ctx(broker, ALICE, token_authenticated=True),
                    Ctx(broker, KafkaPrincipal("User", "ANONYMOUS"), security_protocol="SSL")):
        assert (await handle_create(refused, _create())).error_code == not_allowed
    # bob asks for a token of alice: only with CREATE_TOKENS on User:alice
    denied = await handle_create(Ctx(broker, BOB), _create(ALICE))
    assert denied.error_code == ErrorCode.delegation_token_authorization_failed
    bob = Ctx(broker, BOB, allowed={(AclOperation.CREATE_TOKENS, ResourceType.USER, "User:alice")})
    made = await handle_create(bob, _create(ALICE))
    assert made.error_code == ErrorCode.none
    assert (made.principal_name, made.token_requester_principal_name) == ("alice", "bob")
    # bob requested it; carol sees it only through an ACL
    everyone = DescribeDelegationTokenRequest(owners=None)
    assert [t.token_id for t in (await handle_describe(Ctx(broker, BOB), everyone)).tokens] == [made.token_id]
    assert (await handle_describe(Ctx(broker, CAROL), everyone)).tokens == ()
    carol = Ctx(broker, CAROL, allowed={(AclOperation.DESCRIBE_TOKENS, ResourceType.USER, "User:alice")})
    assert len((await handle_describe(carol, everyone)).tokens) == 1
    assert (await handle_describe(bob, DescribeDelegationTokenRequest(owners=()))).tokens == ()
    # a forwarded request (Envelope): the forwarding broker checked the connection
    forwarded = Ctx(broker, ALICE, security_protocol="PLAINTEXT", forwarded=True)
    assert (await handle_create(forwarded, _create())).error_code == ErrorCode.none
