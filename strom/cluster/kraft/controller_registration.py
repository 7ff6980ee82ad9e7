"""A controller's own registration (Kafka's ControllerRegistrationManager, KIP-919).

Every controller, once its replay shows a metadata.version that has controller registrations (3.7-IV0 and
later), sends ControllerRegistration v0 to the active controller with a new incarnation id per process,
its CONTROLLER listener and the feature ranges it supports; the active controller writes a
RegisterControllerRecord. The active controller registers itself by writing that record directly. It
registers again whenever the replayed log does not hold its current incarnation (a new process, or a log
that lost the record), and retries every second while refused or unreachable. Kafka's controllers use
these records for DescribeCluster through `--bootstrap-controller` and to check a feature upgrade against
every controller; a Kafka active controller logs nothing about a voter that never registers, but leaves it
out of both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from strom.cluster.kraft.broker import version_refusal
from strom.cluster.kraft.controller import QuorumController
from strom.metadata.features import metadata_version, supported_features
from strom.protocol.errors import ErrorCode, KafkaError
from strom.raft.messages import build, item, request_class

log = logging.getLogger("strom.kraft.controller")

REGISTRATION_LEVEL = metadata_version("3.7-IV0").feature_level
RETRY_S = 1.0


class ControllerRegistrar:
    """`start()` / `stop()`; `registered` once the replayed log holds this process's registration."""

    def __init__(self, controller: QuorumController, listener: tuple[str, str, int]) -> None:
        self.controller = controller
        self.listener = listener  # (name, host, port) of the CONTROLLER listener
        self.incarnation_id = uuid.uuid4()
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        self._conn_address: tuple[str, int] | None = None

    @property
    def node_id(self) -> int:
        return int(self.controller.raft.core.node_id)

    @property
    def registered(self) -> bool:
        existing = self.controller.state.controllers.get(self.node_id)
        return existing is not None and existing.incarnation_id == self.incarnation_id

    def request(self) -> Any:
        cls = request_class(70, 0)
        listener_cls, feature_cls = item(cls, "listeners"), item(cls, "features")
        name, host, port = self.listener
        return build(
            cls,
            controller_id=self.node_id,
            incarnation_id=self.incarnation_id,
            zk_migration_ready=False,
            listeners=(listener_cls(name=name, host=host, port=port, security_protocol=0),),
            features=tuple(
                feature_cls(name=f, min_supported_version=lo, max_supported_version=hi)
                for f, (lo, hi) in supported_features().items()
            ),
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="controller-registration")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()

    async def _run(self) -> None:
        logged: set[str] = set()
        while True:
            state = self.controller.state
            if state.metadata_version >= REGISTRATION_LEVEL and not self.registered:
                try:
                    await self._register()
                except (TimeoutError, KafkaError, OSError, ConnectionError) as exc:
                    message = str(exc) or type(exc).__name__
                    if message not in logged:  # once per distinct refusal: retries must not flood the log
                        logged.add(message)
                        log.warning("controller %d: registration not accepted: %s", self.node_id, message)
            await asyncio.sleep(RETRY_S)

    async def _register(self) -> None:
        controller = self.controller
        request = self.request()
        if controller.is_active:
            await controller.write(controller.rules.register_controller(request))
            return
        core = controller.raft.core
        address = core.address_of(core.leader_id) if core.leader_id >= 0 else None
        if address is None:
            return
        from strom.client.connection import BrokerConnection

        if self._conn is None or self._conn.closed or self._conn_address != address:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    await self._conn.close()
            self._conn = None
            self._conn = await BrokerConnection.open(
                address[0], address[1], client_id=f"controller-{self.node_id}", timeout=5.0
            )
            self._conn_address = address
        refusal = version_refusal(self._conn.api_versions, type(request), address)
        if refusal is not None:
            raise KafkaError(refusal, code=ErrorCode.unsupported_version)
        response = await self._conn.request(request, timeout=5.0)
        code = int(response.error_code)
        if code != ErrorCode.none:
            raise KafkaError(str(response.error_message or ErrorCode(code).name), code=ErrorCode(code))
