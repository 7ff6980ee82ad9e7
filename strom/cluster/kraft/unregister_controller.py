"""UnregisterController (api 94, v0), which kio has no schema for: Kafka 4.4's `kafka-metadata-quorum
remove-controller --unregister` (and `kafka-cluster unregister-controller`) send it after RemoveRaftVoter
to forget the removed controller's registration (its RegisterControllerRecord, KIP-919).

The active controller answers it as Kafka 4.4's ControllerApis does: ALTER on the cluster
(CLUSTER_AUTHORIZATION_FAILED), the active controller only (NOT_CONTROLLER), metadata.version 4.4-IV2 or
newer (UNSUPPORTED_VERSION "The current MetadataVersion is too old to support controller unregistration."),
a registered controller (CONTROLLER_ID_NOT_REGISTERED, 136, "Controller ID N is not currently
registered."), then an UnregisterControllerRecord, answered once committed
(strom.cluster.kraft.decisions.ControllerRules.unregister_controller). A KRaft broker forwards it in an
Envelope (KIP-590), as Kafka 4.4's brokers do.

Wire format (flexible from v0): request `controller_id: int32, tagged fields`; response `throttle_time_ms:
int32, error_code: int16, error_message: compact nullable string, tagged fields`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from strom.apis._streams_wire import Reader, Writer
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.frames import RawResponse
from strom.protocol.registry import ApiSpec

if TYPE_CHECKING:
    from strom.cluster.kraft.controller import QuorumController

__all__ = ["API_KEY", "UnregisterControllerRequest", "broker_spec", "controller_spec", "response"]

API_KEY = 94


@dataclass(frozen=True, slots=True)
class UnregisterControllerRequest:
    """The request, with what forwarding needs to write it again (`encode_body`)."""

    controller_id: int
    __api_key__: ClassVar[int] = API_KEY
    __version__: ClassVar[int] = 0
    __flexible__: ClassVar[bool] = True

    def encode_body(self) -> bytes:
        return Writer().i32(self.controller_id).tags().bytes()


def decode(version: int, body: memoryview) -> UnregisterControllerRequest:
    reader = Reader(body)
    controller_id = reader.i32()
    reader.skip_tags()
    return UnregisterControllerRequest(controller_id)


def response(code: int, message: str | None = None) -> RawResponse:
    return RawResponse([Writer().i32(0).i16(int(code)).nstr(message).tags().bytes()])


def controller_spec(controller: QuorumController) -> ApiSpec:
    from strom.cluster.kraft.controller_apis import _cluster_alter_denied, _not_active

    async def handle(ctx: Any, request: UnregisterControllerRequest) -> Any:
        error = _cluster_alter_denied(ctx) or _not_active(controller)
        if error is None:
            try:
                await controller.write(controller.rules.unregister_controller(request.controller_id))
            except KafkaError as exc:
                error = exc
        if error is None:
            return response(ErrorCode.none)
        return response(int(error.code), str(error))

    return ApiSpec(API_KEY, 0, 0, handle, decode=decode, name="UnregisterController")


def broker_spec() -> ApiSpec:
    """A KRaft broker's UnregisterController: forwarded to the active controller."""
    from strom.cluster.kraft.forwarding import _body, envelope

    async def handle(ctx: Any, request: UnregisterControllerRequest) -> Any:
        wrapped = envelope(
            request,
            ctx.correlation_id,
            ctx.client_id,
            ctx.principal,
            ctx.client_host,
            getattr(ctx, "token_authenticated", False),
        )
        try:
            answer = await ctx.broker.metadata.controller_request(wrapped)
        except (KafkaError, OSError, ConnectionError, TimeoutError):
            return response(ErrorCode.request_timed_out)
        code = int(answer.error_code)
        if code != ErrorCode.none or answer.response_data is None:
            refused = code == ErrorCode.unsupported_version
            return response(ErrorCode.unsupported_version if refused else ErrorCode.unknown_server_error)
        return RawResponse([_body(bytes(answer.response_data), ctx)])

    return ApiSpec(API_KEY, 0, 0, handle, decode=decode, name="UnregisterController")
