"""Forwarding on a KRaft broker (KIP-590): the admin requests the controller decides go to the active
controller inside an Envelope (api 58), as Kafka 4.4's ForwardingManager sends them.

The broker does not act on them itself (nor authorize them: the controller checks the client, as Kafka's
KafkaApis hands them over unexamined). For each forwarded API the broker's handler is replaced by one that
- writes the client's request again (header with the client's correlation id and client id, body of the
  client's version) as the Envelope's `request_data`, the client's principal in Kafka's DefaultPrincipalData
  serde and the client's IP address bytes;
- sends it to the active controller over the controller listener (the backend retries NOT_CONTROLLER and
  lost connections until its deadline);
- answers the client with the embedded response body, unchanged. An Envelope error becomes an error
  response of the client's request: UNSUPPORTED_VERSION as such, any other as UNKNOWN_SERVER_ERROR (a
  misconfigured cluster, which a client could not act on), no controller before the deadline as
  REQUEST_TIMED_OUT.
- AlterConfigs and IncrementalAlterConfigs of a BROKER resource naming another broker are answered
  INVALID_REQUEST by the broker itself (Kafka's "Unexpected broker id, expected <this broker>, but
  received <id>"), the other resources forwarded;
- CreateTopics, CreatePartitions and DeleteTopics then wait (a few seconds at most) until this broker's
  metadata shows what the controller did, so a client's next request to this broker finds the topic.

DescribeQuorum (55), UpdateFeatures (57), UnregisterBroker (64), AddRaftVoter (80), RemoveRaftVoter (81)
and UnregisterController (94, written by strom.cluster.kraft.unregister_controller), which a KRaft broker
serves only this way (`kafka-metadata-quorum describe / add-controller / remove-controller [--unregister]`,
`kafka-features`, `kafka-cluster unregister` with --bootstrap-server), go to the
active controller as well. `FORWARDED_APIS` are those a Strom
controller serves (with Create/Renew/ExpireDelegationToken, which the broker refuses itself on the
connections Kafka refuses them on); Kafka 4.4 forwards more (FORWARDABLE_APIS in
strom.cluster.kraft.envelope), which brokers here still answer themselves until their controller side
exists.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from typing import Any

from kio.serial import entity_writer

from strom.client.connection import encode_request_header
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.registry import ApiRegistry, ApiSpec, decode_with_kio, is_flexible, response_type
from strom.protocol.wire import I32, skip_tagged_fields
from strom.raft.messages import build, request_class
from strom.security.principal import KafkaPrincipal
from strom.security.principal_serde import encode_client_address, serialize_principal

__all__ = ["FORWARDED_APIS", "encode_request", "envelope", "forward", "forwarding_registry"]

log = logging.getLogger("strom.kraft.forwarding")

ENVELOPE = 58
CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS = 19, 20, 37
TOKEN_WRITES = frozenset({38, 39, 40})  # Create/Renew/ExpireDelegationToken
FORWARDED_APIS = frozenset(
    {CREATE_TOPICS, DELETE_TOPICS, 30, 31, 33, CREATE_PARTITIONS, 43, 44, 45, 46, 49, 51, 55, 57, 64, 80, 81}
    | TOKEN_WRITES
)
# APIs only a KRaft broker serves, and only by forwarding: (key, min, max, name)
FORWARD_ONLY = (
    (55, 0, 2, "DescribeQuorum"),
    (57, 0, 2, "UpdateFeatures"),
    (64, 0, 0, "UnregisterBroker"),
    (80, 0, 1, "AddRaftVoter"),
    (81, 0, 0, "RemoveRaftVoter"),
)
SETTLE_S = 5.0


def encode_request(request: Any, correlation_id: int, client_id: str | None) -> bytes:
    """A kio request with its header (v1, or v2 for flexible versions), as a client sends it."""
    api_key, version = int(request.__api_key__), int(request.__version__)
    buf = io.BytesIO()
    buf.write(
        encode_request_header(api_key, version, correlation_id, client_id, is_flexible(api_key, version))
    )
    encode_body = getattr(request, "encode_body", None)  # an API kio has no schema for
    if encode_body is not None:
        buf.write(encode_body())
    else:
        entity_writer(type(request))(buf, request)
    return buf.getvalue()


def envelope(
    request: Any,
    correlation_id: int,
    client_id: str | None,
    principal: KafkaPrincipal,
    client_host: str,
    token_authenticated: bool = False,
) -> Any:
    """The EnvelopeRequest a Kafka 4.4 broker sends for a client's request."""
    return build(
        request_class(ENVELOPE, 0),
        request_data=encode_request(request, correlation_id, client_id),
        request_principal=serialize_principal(principal, token_authenticated),
        client_host_address=encode_client_address(client_host),
    )


def _body(data: bytes, ctx: Any) -> memoryview:
    """The embedded response without its header (correlation id, and tagged fields when flexible)."""
    (correlation_id,) = I32.unpack_from(data, 0)
    if correlation_id != ctx.correlation_id:
        raise ValueError(f"forwarded response for correlation id {correlation_id}, not {ctx.correlation_id}")
    pos = 4
    if is_flexible(ctx.api_key, ctx.api_version):
        pos = skip_tagged_fields(data, pos)
    return memoryview(data)[pos:]


async def forward(ctx: Any, request: Any) -> Any:
    """Forward one request through `ctx.broker.metadata` (a KRaftBackend) and answer what the controller
    answered."""
    from strom.apis._authz import error_response
    from strom.protocol.frames import RawResponse

    backend = ctx.broker.metadata
    wrapped = envelope(request, ctx.correlation_id, ctx.client_id, ctx.principal, ctx.client_host,
                       getattr(ctx, "token_authenticated", False))
    try:
        answer = await backend.controller_request(wrapped)
    except KafkaError as exc:
        log.info("forwarding api %d: no active controller: %s", ctx.api_key, exc)
        return error_response(ctx.api_key, ctx.api_version, request, ErrorCode.request_timed_out)
    except (OSError, ConnectionError, TimeoutError) as exc:
        log.info("forwarding api %d failed: %r", ctx.api_key, exc)
        return error_response(ctx.api_key, ctx.api_version, request, ErrorCode.request_timed_out)
    code = int(answer.error_code)
    if code != ErrorCode.none or answer.response_data is None:
        log.info("forwarded api %d: envelope error %s", ctx.api_key, ErrorCode(code).name)
        refusal = ErrorCode.unsupported_version if code == ErrorCode.unsupported_version else None
        return error_response(
            ctx.api_key, ctx.api_version, request, refusal or ErrorCode.unknown_server_error
        )
    body = _body(bytes(answer.response_data), ctx)
    await _settle(ctx, request, body)
    return RawResponse([body])


async def _settle(ctx: Any, request: Any, body: memoryview) -> None:
    """Wait (bounded) until this broker's image shows the topics the controller created or deleted."""
    if ctx.api_key not in (CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS):
        return
    if getattr(request, "validate_only", False):
        return
    cls = response_type(ctx.api_key, ctx.api_version)
    if cls is None:
        return
    response = decode_with_kio(cls, body)
    backend = ctx.broker.metadata
    if ctx.api_key == CREATE_TOPICS:
        names = {t.name for t in response.topics if t.error_code == ErrorCode.none}
        await backend.wait_for(lambda image: all(n in image.topics for n in names), SETTLE_S)
    elif ctx.api_key == DELETE_TOPICS:
        done = [r for r in response.responses if r.error_code == ErrorCode.none]
        ids = {i for r in done if (i := getattr(r, "topic_id", None)) is not None and i.int}  # v6+
        names = {r.name for r in done if r.name}
        await backend.wait_for(
            lambda image: not (names & set(image.topics)) and not any(image.topic_by_id(i) for i in ids),
            SETTLE_S,
        )
    else:
        counts = {t.name: int(t.count) for t in request.topics}
        done = {r.name for r in response.results if r.error_code == ErrorCode.none}
        await backend.wait_for(
            lambda image: all(
                (t := image.topics.get(n)) is not None and len(t.partitions) >= counts.get(n, 0) for n in done
            ),
            SETTLE_S,
        )


def _token_forward(local: Any) -> Any:
    """The token APIs: only the broker knows the client's connection, so it answers
    DELEGATION_TOKEN_REQUEST_NOT_ALLOWED itself (PLAINTEXT, 1-way SSL, token-authenticated clients) with
    its own handler, which touches no token then; everything else goes to the controller."""
    from strom.apis._token_util import allow_token_requests

    async def handle(ctx: Any, request: Any) -> Any:
        if not allow_token_requests(ctx):
            return await local(ctx, request)
        return await forward(ctx, request)

    return handle


BROKER_RESOURCE = 4
CONFIG_WRITES = frozenset({33, 44})  # AlterConfigs, IncrementalAlterConfigs


def _other_broker(resource_name: str, node_id: int) -> str | None:
    """Why a BROKER config resource is not this broker's (Kafka's validateResourceNameIsCurrentNodeId);
    None for this broker's id or the cluster default ("")."""
    if resource_name == "":
        return None
    try:
        value = int(resource_name)
    except ValueError:
        return f"Node id must be an integer, but it is: {resource_name}"
    if value == node_id:
        return None
    return f"Unexpected broker id, expected {node_id}, but received {resource_name}"


async def _config_forward(ctx: Any, request: Any) -> Any:
    """AlterConfigs and IncrementalAlterConfigs: a BROKER resource naming another broker is answered
    INVALID_REQUEST here and the rest forwarded, the answers in the request's order, as Kafka's broker
    preprocesses them (ConfigAdminManager) before forwarding."""
    from strom.apis._build import build as build_response
    from strom.apis._build import entry_type, no_throttle
    from strom.protocol.frames import RawResponse

    node_id = int(ctx.broker.node_id)
    refused: dict[int, str] = {}
    for i, resource in enumerate(request.resources):
        if int(resource.resource_type) == BROKER_RESOURCE:
            reason = _other_broker(str(resource.resource_name), node_id)
            if reason is not None:
                refused[i] = reason
    if not refused:
        return await forward(ctx, request)
    cls = response_type(ctx.api_key, ctx.api_version)
    assert cls is not None
    kept = tuple(r for i, r in enumerate(request.resources) if i not in refused)
    forwarded: list[Any] = []
    throttle = no_throttle()
    if kept:
        answer = await forward(ctx, dataclasses.replace(request, resources=kept))
        if isinstance(answer, RawResponse):
            answer = decode_with_kio(cls, b"".join(bytes(c) for c in answer.chunks))  # type: ignore[arg-type]
        forwarded = list(answer.responses)
        throttle = answer.throttle_time
    entry = entry_type(cls, "responses")
    rest = iter(forwarded)
    responses = [
        build_response(
            entry,
            error_code=ErrorCode.invalid_request,
            error_message=refused[i],
            resource_type=resource.resource_type,
            resource_name=resource.resource_name,
        )
        if i in refused
        else next(rest)
        for i, resource in enumerate(request.resources)
    ]
    return build_response(cls, throttle_time=throttle, responses=tuple(responses))


def forwarding_registry(registry: ApiRegistry) -> ApiRegistry:
    """`registry` with the handlers of `FORWARDED_APIS` replaced by forwarding (same version ranges), and
    the `FORWARD_ONLY` APIs added."""
    specs: list[ApiSpec] = []
    for spec in registry.specs():
        if spec.api_key in TOKEN_WRITES:
            spec = dataclasses.replace(spec, handler=_token_forward(spec.handler))
        elif spec.api_key in CONFIG_WRITES:
            spec = dataclasses.replace(spec, handler=_config_forward)
        elif spec.api_key in FORWARDED_APIS:
            spec = dataclasses.replace(spec, handler=forward)
        specs.append(spec)
    for key, low, high, name in FORWARD_ONLY:
        if registry.get(key) is None:
            specs.append(ApiSpec(key, low, high, forward, name=name))
    if registry.get(94) is None:
        from strom.cluster.kraft.unregister_controller import broker_spec

        specs.append(broker_spec())  # UnregisterController: kio has no schema; its own forwarding
    return ApiRegistry(specs)
