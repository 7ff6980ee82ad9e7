"""Delegation tokens in KRaft mode: CreateDelegationToken through a broker is forwarded to the controller,
which appends a DelegationTokenRecord; the broker describes the token and authenticates SCRAM `tokenauth`
clients with its replayed log, refuses token requests on that connection itself, and an expiry removes the
token everywhere (RemoveDelegationTokenRecord)."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.create_delegation_token.v3.request import CreateDelegationTokenRequest
from kio.schema.describe_delegation_token.v3.request import DescribeDelegationTokenRequest
from kio.schema.expire_delegation_token.v2.request import ExpireDelegationTokenRequest
from kio.static.primitive import i64Timedelta

from strom.client.connection import BrokerConnection
from strom.cluster.kraft.tokens import token_record
from strom.metadata.image import MetadataState
from strom.metadata.records import RemoveDelegationTokenRecord
from strom.metadata.serde import ApiMessageAndVersion
from strom.protocol.errors import ErrorCode
from strom.security.delegation_tokens import TokenInformation
from strom.security.principal import KafkaPrincipal
from strom.security.sasl.client import SaslClientSettings
from strom.testing.kraft_node import EmbeddedKRaftNode
from strom.testing.raft_quorum import wait_for

SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
ALICE = KafkaPrincipal("User", "alice")


def test_token_records_replay() -> None:
    state = MetadataState()
    token = TokenInformation("t1", ALICE, KafkaPrincipal("User", "bob"), (KafkaPrincipal("User", "carol"),),
                             1, 3, 2)
    state.replay(token_record(token), 0)
    assert state.tokens == {"t1": token}
    state.replay(ApiMessageAndVersion(RemoveDelegationTokenRecord(token_id="t1"), 0), 1)
    assert state.tokens == {} and state.tokens_version == 2


@pytest.fixture(scope="module")
def node() -> Iterator[EmbeddedKRaftNode]:
    settings = {
        "sasl.enabled.mechanisms": "SCRAM-SHA-256",
        "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": SCRAM_JAAS,
        "delegation.token.secret.key": "kraft-token-key",
    }
    with EmbeddedKRaftNode(settings, extra_listeners={"SASL_PLAINTEXT": "SASL_PLAINTEXT"}) as node:
        yield node


def _sasl(user: str, password: str, token: bool = False) -> SaslClientSettings:
    extra = ' tokenauth="true"' if token else ""
    return SaslClientSettings.from_client_properties({
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.jaas.config": f'{SCRAM_JAAS[:-1]} username="{user}" password="{password}"{extra};',
    })  # type: ignore[return-value]


def _period(ms: int) -> i64Timedelta:
    return i64Timedelta.parse(datetime.timedelta(milliseconds=ms))


async def _request(host: str, port: int, sasl: SaslClientSettings, request: Any) -> Any:
    conn = await BrokerConnection.open(host, port, sasl=sasl)
    try:
        return await conn.request(request, timeout=15)
    finally:
        await conn.close()


def test_tokens_through_the_metadata_log(node: EmbeddedKRaftNode) -> None:
    admin_mod = pytest.importorskip("confluent_kafka.admin")
    admin = admin_mod.AdminClient({"bootstrap.servers": node.bootstrap_servers})
    info = admin_mod.ScramCredentialInfo(admin_mod.ScramMechanism.SCRAM_SHA_256, 4096)
    for future in admin.alter_user_scram_credentials(
        [admin_mod.UserScramCredentialUpsertion("alice", info, b"alice-secret")]
    ).values():
        future.result(15)
    assert node.controller is not None and node.broker is not None
    broker = node.broker
    wait_for(lambda: ("alice", "SCRAM-SHA-256") in broker.metadata.state.scram, 10, "the broker's replay")
    host, port = broker.bound_addresses["SASL_PLAINTEXT"]
    alice = _sasl("alice", "alice-secret")

    created = asyncio.run(_request(host, port, alice, CreateDelegationTokenRequest(
        owner_principal_type=None, owner_principal_name=None, renewers=(), max_lifetime=_period(-1))))
    assert created.error_code == ErrorCode.none and created.principal_name == "alice"
    token_id, hmac = created.token_id, bytes(created.hmac)
    assert token_id in node.controller.controller.state.tokens
    wait_for(lambda: token_id in broker.metadata.state.tokens, 10, "the token to reach the broker")

    described = asyncio.run(_request(host, port, alice, DescribeDelegationTokenRequest(owners=None)))
    assert [(t.token_id, bytes(t.hmac)) for t in described.tokens] == [(token_id, hmac)]

    import base64

    with_token = _sasl(token_id, base64.b64encode(hmac).decode(), token=True)
    # authenticated with the token, which may not see tokens (Describe: its timestamps are plain
    # numbers, which kio reads even when an error sets them to -1)
    refused = asyncio.run(_request(host, port, with_token, DescribeDelegationTokenRequest(owners=None)))
    assert refused.error_code == ErrorCode.delegation_token_request_not_allowed

    expired = asyncio.run(_request(host, port, alice, ExpireDelegationTokenRequest(
        hmac=hmac, expiry_time_period=_period(-1))))
    assert expired.error_code == ErrorCode.none
    wait_for(lambda: not broker.metadata.state.tokens, 10, "the removal to reach the broker")
    with pytest.raises(Exception):  # noqa: B017 - the token no longer authenticates
        asyncio.run(_request(host, port, with_token, DescribeDelegationTokenRequest(owners=None)))
