"""Envelope (api 58) v0 on a controller: the admin requests brokers forward (KIP-590), as Kafka 4.4's
ControllerApis and EnvelopeUtils serve them.

A broker that receives an admin request its controller decides (CreateTopics, DeleteTopics,
CreatePartitions, Alter/IncrementalAlterConfigs, Create/DeleteAcls, AlterUserScramCredentials, ...) sends
it on unchanged inside an EnvelopeRequest: `request_data` is the client's request header and body,
`request_principal` the client's principal in Kafka's DefaultPrincipalData serde
(strom.security.principal_serde) and `client_host_address` the client's IP address bytes. The controller:

1. authorizes the forwarding broker: CLUSTER_ACTION on the cluster, else CLUSTER_AUTHORIZATION_FAILED;
2. reads the principal (PRINCIPAL_DESERIALIZATION_FAILURE when it cannot) and the address (INVALID_REQUEST);
3. reads the embedded header: an API Kafka does not forward is INVALID_REQUEST, a version this controller
   does not serve UNSUPPORTED_VERSION, a body that does not parse INVALID_REQUEST;
4. serves the embedded request with the controller's own handler as the client (its principal and host),
   so the authorizer (strom.apis._authz) checks the client, not the broker;
5. answers the embedded response, header included (the embedded correlation id, the header version of that
   API version), in the EnvelopeResponse's `response_data` with error NONE.

The errors of steps 1-3 are the EnvelopeResponse's own `error_code` with no `response_data`; the broker
turns them into an error response of the client's request, as Kafka's ForwardingManager does.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from kio.serial import entity_writer

from strom.protocol.errors import ErrorCode
from strom.protocol.frames import RawResponse, decode_request_header, encode_response_header, peek_api
from strom.protocol.registry import ApiSpec, is_flexible
from strom.raft.messages import build, response_class
from strom.security.authorizer import AclOperation, ResourceType
from strom.security.principal_serde import (
    PrincipalSerdeError,
    decode_client_address,
    deserialize_principal_data,
)

__all__ = ["ENVELOPE", "FORWARDABLE_APIS", "encode_response", "envelope_spec"]

log = logging.getLogger("strom.kraft.envelope")

ENVELOPE = 58
CLUSTER_NAME = "kafka-cluster"
# Kafka 4.4's ApiKeys with forwardable=true (those a broker may send inside an Envelope)
FORWARDABLE_APIS = frozenset(
    {19, 20, 30, 31, 33, 37, 38, 39, 40, 43, 44, 45, 46, 49, 51, 55, 57, 64, 67, 80, 81, 94}
)


def encode_response(response: Any, correlation_id: int, api_key: int, api_version: int) -> bytes:
    """A handler's answer (kio response or RawResponse) with its response header, as on the wire."""
    header_version = 1 if is_flexible(api_key, api_version) else 0
    buf = io.BytesIO()
    buf.write(encode_response_header(correlation_id, header_version))
    if isinstance(response, RawResponse):
        for chunk in response.chunks:
            buf.write(bytes(chunk))  # type: ignore[arg-type]  # admin responses carry no file slices
    else:
        entity_writer(type(response))(buf, response)
    return buf.getvalue()


def _answer(code: ErrorCode, data: bytes | None = None) -> Any:
    return build(response_class(ENVELOPE, 0), response_data=data, error_code=code)


async def handle_envelope(ctx: Any, request: Any) -> Any:
    from strom.server.context import RequestContext

    if not ctx.authorize(AclOperation.CLUSTER_ACTION, ResourceType.CLUSTER, CLUSTER_NAME):
        return _answer(ErrorCode.cluster_authorization_failed)
    try:
        if request.request_principal is None:
            raise PrincipalSerdeError("the envelope names no principal")
        principal, token_authenticated = deserialize_principal_data(request.request_principal)
    except PrincipalSerdeError as exc:
        log.info("envelope from %s: %s", ctx.client_host, exc)
        return _answer(ErrorCode.principal_deserialization_failure)
    try:
        client_host = decode_client_address(request.client_host_address)
    except PrincipalSerdeError:
        return _answer(ErrorCode.invalid_request)
    frame = memoryview(bytes(request.request_data))
    try:
        api_key, api_version, _ = peek_api(frame)
    except Exception:
        return _answer(ErrorCode.invalid_request)
    if api_key not in FORWARDABLE_APIS:
        return _answer(ErrorCode.invalid_request)
    spec: ApiSpec | None = ctx.broker.registry.get(api_key)
    if spec is None or not spec.supports(api_version):
        return _answer(ErrorCode.unsupported_version)
    try:
        header, body_at = decode_request_header(frame, is_flexible(api_key, api_version))
        inner = spec.decode_request(api_version, frame[body_at:])
    except Exception as exc:
        log.info("envelope from %s: cannot read api %d v%d: %s", ctx.client_host, api_key, api_version, exc)
        return _answer(ErrorCode.invalid_request)
    forwarded = RequestContext(
        broker=ctx.broker,
        api_key=api_key,
        api_version=api_version,
        correlation_id=header.correlation_id,
        client_id=header.client_id,
        client_host=client_host,
        connection_id=ctx.connection_id,
        listener_name=ctx.listener_name,
        security_protocol=ctx.security_protocol,
        principal=principal,
        token_authenticated=token_authenticated,
        forwarded=True,
        header_version=header.header_version,
    )
    try:
        response = await spec.handler(forwarded, inner)
    except Exception:
        log.exception("forwarded api %d v%d failed", api_key, api_version)
        return _answer(ErrorCode.unknown_server_error)
    return _answer(ErrorCode.none, encode_response(response, header.correlation_id, api_key, api_version))


def envelope_spec() -> ApiSpec:
    return ApiSpec(ENVELOPE, 0, 0, handle_envelope, name="Envelope")
