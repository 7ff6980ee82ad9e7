"""Delegation tokens in KRaft mode (KIP-48 on KIP-500): DelegationTokenRecord and RemoveDelegationTokenRecord
in `__cluster_metadata`, as Kafka 4.4's DelegationTokenControlManager writes them (principals as
`User:alice` strings; the HMAC is never in the log, every node derives it from
`delegation.token.secret.key`).

`MetadataTokenStore` is the `strom.security.delegation_tokens.TokenStore` of a KRaft node: `all` reads the
owner's replayed `MetadataState`, so a token created through any broker authenticates and is described on
every node once its record is replayed there. On the active controller `put` and `remove` append one record
and return once it is committed (NOT_CONTROLLER elsewhere); a broker forwards CreateDelegationToken,
RenewDelegationToken and ExpireDelegationToken to the controller (strom.cluster.kraft.forwarding) and never
writes tokens itself. Only the active controller removes expired tokens.
"""

from __future__ import annotations

from typing import Any

from strom.metadata.records import DelegationTokenRecord, RemoveDelegationTokenRecord
from strom.metadata.serde import ApiMessageAndVersion
from strom.protocol.errors import ErrorCode, KafkaError
from strom.security.delegation_tokens import TokenInformation

__all__ = ["MetadataTokenStore", "token_record"]


def token_record(token: TokenInformation) -> ApiMessageAndVersion:
    return ApiMessageAndVersion(
        DelegationTokenRecord(
            owner=str(token.owner), requester=str(token.requester),
            renewers=tuple(str(r) for r in token.renewers), issue_timestamp=token.issue_ms,
            max_timestamp=token.max_ms, expiration_timestamp=token.expiry_ms, token_id=token.token_id,
        ),
        0,
    )


class MetadataTokenStore:
    """The tokens of `owner.state` (a KRaftBackend or a QuorumController); writes need the controller."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner

    async def all(self) -> dict[str, TokenInformation]:
        return dict(self.owner.state.tokens)

    async def _append(self, record: ApiMessageAndVersion) -> None:
        owner = self.owner
        if not hasattr(owner, "append"):
            # unreachable in a running broker: the token APIs that write are forwarded to the controller
            raise KafkaError("Delegation tokens are written by the controller", code=ErrorCode.not_controller)
        if not owner.is_active:
            raise KafkaError("This is not the active controller.", code=ErrorCode.not_controller)
        await owner.wait_committed(owner.append([record]))

    async def put(self, token: TokenInformation) -> None:
        await self._append(token_record(token))

    async def remove(self, token_id: str) -> None:
        await self._append(ApiMessageAndVersion(RemoveDelegationTokenRecord(token_id=token_id), 0))
