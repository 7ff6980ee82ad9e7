"""AlterUserScramCredentials (api key 51), version 0 (KIP-554).

Behaviour, as Kafka 4.4's ScramControlManager decides it: each user may appear once among the deletions
and upsertions; an upsertion carries the salt, the salted password (never the password) and the
iterations, from which the broker keeps StoredKey and ServerKey (strom.security.scram_credentials); a
deletion removes one mechanism's credential. Valid changes are applied together in the broker's store
(ZooKeeper's /config/users/<user> in Kafka's layout, or the single node's file) and take effect for the
next authentication on every broker; invalid users get their own error.

Errors (per user): CLUSTER_AUTHORIZATION_FAILED (no ALTER on the cluster); DUPLICATE_RESOURCE ("A user
credential cannot be altered twice in the same request"); UNACCEPTABLE_CREDENTIAL ("Username must not be
empty", "Too few iterations" below 4096, "Too many iterations" above 16384); UNSUPPORTED_SASL_MECHANISM
("Unknown SCRAM mechanism"); RESOURCE_NOT_FOUND ("Attempt to delete a user credential that does not
exist").
"""

from __future__ import annotations

from typing import Any

from strom.apis._admin_util import NO_THROTTLE, kio_module
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec
from strom.security.authorizer import AclOperation, ResourceType
from strom.security.scram_credentials import MAX_ITERATIONS, make_credential, mechanism_by_type

API_KEY = 51
CLUSTER_NAME = "kafka-cluster"
_TWICE = "A user credential cannot be altered twice in the same request"


def _check_name_and_mechanism(name: str, mechanism: int) -> tuple[ErrorCode, str] | None:
    if not name:
        return ErrorCode.unacceptable_credential, "Username must not be empty"
    if mechanism_by_type(mechanism) is None:
        return ErrorCode.unsupported_sasl_mechanism, "Unknown SCRAM mechanism"
    return None


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("alter_user_scram_credentials", ctx.api_version, "response")

    def result(user: str, code: ErrorCode, message: str | None) -> Any:
        return mod.AlterUserScramCredentialsResult(user=user, error_code=code, error_message=message)

    names = [str(d.name) for d in request.deletions] + [str(u.name) for u in request.upsertions]
    users = list(dict.fromkeys(names))
    if not ctx.authorize(AclOperation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME):
        return mod.AlterUserScramCredentialsResponse(
            throttle_time=NO_THROTTLE,
            results=tuple(result(u, ErrorCode.cluster_authorization_failed, None) for u in users),
        )
    store = ctx.broker.scram_store
    existing = await store.all() if store is not None else {}
    errors: dict[str, tuple[ErrorCode, str]] = {}
    deletions: dict[str, Any] = {}
    upsertions: dict[str, Any] = {}
    for deletion in request.deletions:
        name = str(deletion.name)
        if name in errors:
            continue
        if deletions.pop(name, None) is not None:
            errors[name] = (ErrorCode.duplicate_resource, _TWICE)
            continue
        error = _check_name_and_mechanism(name, int(deletion.mechanism))
        spec = mechanism_by_type(int(deletion.mechanism))
        if error is None and (spec is None or spec.name not in existing.get(name, {})):
            error = (ErrorCode.resource_not_found, "Attempt to delete a user credential that does not exist")
        if error is not None:
            errors[name] = error
        else:
            deletions[name] = deletion
    for upsertion in request.upsertions:
        name = str(upsertion.name)
        if name in errors:
            continue
        if deletions.pop(name, None) is not None or upsertions.pop(name, None) is not None:
            errors[name] = (ErrorCode.duplicate_resource, _TWICE)
            continue
        error = _check_name_and_mechanism(name, int(upsertion.mechanism))
        spec = mechanism_by_type(int(upsertion.mechanism))
        if error is None and spec is not None:
            if int(upsertion.iterations) < spec.min_iterations:
                error = (ErrorCode.unacceptable_credential, "Too few iterations")
            elif int(upsertion.iterations) > MAX_ITERATIONS:
                error = (ErrorCode.unacceptable_credential, "Too many iterations")
        if error is not None:
            errors[name] = error
        else:
            upsertions[name] = upsertion
    changes_to_store = [
        (name, spec.name, make_credential(spec, bytes(u.salted_password), bytes(u.salt), int(u.iterations)))
        for name, u in upsertions.items()
        if (spec := mechanism_by_type(int(u.mechanism))) is not None
    ]
    removals = [
        (name, spec.name)
        for name, d in deletions.items()
        if (spec := mechanism_by_type(int(d.mechanism))) is not None
    ]
    if (changes_to_store or removals) and store is not None:
        await store.alter(changes_to_store, removals)
    results = [result(name, ErrorCode.none, None) for name in deletions]
    results += [result(name, ErrorCode.none, None) for name in upsertions]
    results += [result(name, code, message) for name, (code, message) in errors.items()]
    return mod.AlterUserScramCredentialsResponse(throttle_time=NO_THROTTLE, results=tuple(results))


SPEC = ApiSpec(
    api_key=API_KEY, min_version=0, max_version=0, handler=handle, name="AlterUserScramCredentials"
)
