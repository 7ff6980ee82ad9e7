"""SCRAM credentials in KRaft mode (KIP-554 on KIP-500): UserScramCredentialRecord and
RemoveUserScramCredentialRecord in `__cluster_metadata`, as Kafka 4.4's ScramControlManager writes them.

`MetadataScramStore` is the `strom.security.scram_store.ScramStore` of a KRaft node: `get` and `all` read
the owner's replayed `MetadataState` (credentials from `strom storage format --add-scram` included, which
the controller appends at activation), so a credential altered anywhere authenticates on every broker once
its record is replayed there. On a controller, `alter` appends the records of one AlterUserScramCredentials
request as one batch through the active quorum controller (NOT_CONTROLLER elsewhere) and returns once they
are committed. A broker forwards AlterUserScramCredentials to the controller (strom.cluster.kraft.forwarding)
and never writes credentials itself.
"""

from __future__ import annotations

from typing import Any

from strom.metadata.records import RemoveUserScramCredentialRecord, UserScramCredentialRecord
from strom.metadata.serde import ApiMessageAndVersion
from strom.protocol.errors import ErrorCode, KafkaError
from strom.security.scram_credentials import SCRAM_MECHANISMS, ScramCredential

__all__ = ["MetadataScramStore", "scram_records"]

Credentials = dict[str, dict[str, ScramCredential]]


def scram_records(
    upsertions: list[tuple[str, str, ScramCredential]], deletions: list[tuple[str, str]]
) -> list[ApiMessageAndVersion]:
    """The records of one alteration: removals first, then the new credentials."""
    records = [
        ApiMessageAndVersion(
            RemoveUserScramCredentialRecord(name=user, mechanism=SCRAM_MECHANISMS[mechanism].type), 0
        )
        for user, mechanism in deletions
    ]
    for user, mechanism, credential in upsertions:
        record = UserScramCredentialRecord(
            name=user,
            mechanism=SCRAM_MECHANISMS[mechanism].type,
            salt=credential.salt,
            stored_key=credential.stored_key,
            server_key=credential.server_key,
            iterations=credential.iterations,
        )
        records.append(ApiMessageAndVersion(record, 0))
    return records


class MetadataScramStore:
    """The credentials of `owner.state` (a KRaftBackend or a QuorumController); `alter` needs the
    controller."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner

    async def get(self, user: str, mechanism: str) -> ScramCredential | None:
        credential: ScramCredential | None = self.owner.state.scram.get((user, mechanism))
        return credential

    async def all(self) -> Credentials:
        result: Credentials = {}
        for (user, mechanism), credential in self.owner.state.scram.items():
            result.setdefault(user, {})[mechanism] = credential
        return result

    async def alter(
        self, upsertions: list[tuple[str, str, ScramCredential]], deletions: list[tuple[str, str]]
    ) -> None:
        owner = self.owner
        if not hasattr(owner, "append"):
            # unreachable in a running broker: AlterUserScramCredentials is forwarded to the controller
            raise KafkaError("SCRAM credentials are altered by the controller", code=ErrorCode.not_controller)
        if not owner.is_active:
            raise KafkaError("This is not the active controller.", code=ErrorCode.not_controller)
        records = scram_records(upsertions, deletions)
        if records:
            await owner.wait_committed(owner.append(records))
