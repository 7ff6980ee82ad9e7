"""DescribeUserScramCredentials (api key 50), version 0 (KIP-554).

Behaviour, as Kafka 4.4's ScramImage answers it: for each requested user (every user with a credential
when the list is null or empty) the mechanisms (1 SCRAM-SHA-256, 2 SCRAM-SHA-512) and iteration counts of
its credentials; never the salt or keys. Credentials come from the broker's store
(strom.security.scram_store: ZooKeeper's /config/users, or the single node's file).

Errors: CLUSTER_AUTHORIZATION_FAILED (no DESCRIBE on the cluster; top level); per user RESOURCE_NOT_FOUND
("Attempt to describe a user credential that does not exist: <user>") and DUPLICATE_RESOURCE ("Cannot
describe SCRAM credentials for the same user twice in a single request: <user>").
"""

from __future__ import annotations

from typing import Any

from strom.apis._admin_util import NO_THROTTLE, kio_module
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec
from strom.security.authorizer import AclOperation, ResourceType
from strom.security.scram_credentials import SCRAM_MECHANISMS

API_KEY = 50
CLUSTER_NAME = "kafka-cluster"


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("describe_user_scram_credentials", ctx.api_version, "response")
    if not ctx.authorize(AclOperation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME):
        return mod.DescribeUserScramCredentialsResponse(
            throttle_time=NO_THROTTLE, error_code=ErrorCode.cluster_authorization_failed,
            error_message=None, results=(),
        )
    store = ctx.broker.scram_store
    credentials = await store.all() if store is not None else {}
    requested: dict[str, bool] = {}  # user -> asked twice
    if request.users:
        for user in request.users:
            requested[str(user.name)] = str(user.name) in requested
    else:
        requested = dict.fromkeys(sorted(credentials), False)
    results = []
    for user, duplicate in requested.items():
        if duplicate:
            code, message, infos = (
                ErrorCode.duplicate_resource,
                f"Cannot describe SCRAM credentials for the same user twice in a single request: {user}",
                (),
            )
        elif user in credentials:
            code, message = ErrorCode.none, None
            infos = tuple(
                mod.CredentialInfo(mechanism=SCRAM_MECHANISMS[name].type, iterations=cred.iterations)
                for name, cred in sorted(credentials[user].items())
            )
        else:
            code, message, infos = (
                ErrorCode.resource_not_found,
                f"Attempt to describe a user credential that does not exist: {user}",
                (),
            )
        results.append(mod.DescribeUserScramCredentialsResult(
            user=user, error_code=code, error_message=message, credential_infos=infos
        ))
    return mod.DescribeUserScramCredentialsResponse(
        throttle_time=NO_THROTTLE, error_code=ErrorCode.none, error_message=None, results=tuple(results)
    )


SPEC = ApiSpec(
    api_key=API_KEY, min_version=0, max_version=0, handler=handle, name="DescribeUserScramCredentials"
)
