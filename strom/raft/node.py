"""The asyncio shell around `strom.raft.core.RaftCore`: timers, outbound connections, parked fetches.

- One loop polls the core whenever something happened (a request, a response, an append) or its next
  deadline arrives, and sends what it asks for, one request in flight per destination (Kafka's
  RequestManager), each bounded by `controller.quorum.request.timeout.ms`. A failed or timed-out request
  closes that connection; the core backs off and retries.
- A Fetch the leader has nothing for waits (Kafka's fetch purgatory) until the log end or the high
  watermark moves, or its max_wait_ms runs out, then is answered.
- AddRaftVoter, RemoveRaftVoter and UpdateRaftVoter (KIP-853) are decided by `strom.raft.voter_changes`;
  here an AddRaftVoter asks the new voter its ApiVersions (its kraft.version range) as Kafka's leader
  does, and Add/Remove wait until their VotersRecord is committed (REQUEST_TIMED_OUT after the request's
  timeout).
- `stop()` resigns a leader first (EndQuorumEpoch) and gives the voters a moment to hear it, so the next
  leader is elected without waiting for a fetch timeout (Kafka's graceful shutdown).

The clock is injected (`clock()` in seconds); everything runs on the event loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from strom.client.connection import BrokerConnection
from strom.metadata.serde import ApiMessageAndVersion
from strom.protocol.errors import ErrorCode
from strom.raft import voter_changes
from strom.raft.core import FETCH, Outbound, RaftCore
from strom.raft.states import Leader, Resigned, Role
from strom.raft.voter_changes import ADD_RAFT_VOTER, REMOVE_RAFT_VOTER, UPDATE_RAFT_VOTER

__all__ = ["RaftNode"]

log = logging.getLogger("strom.raft")


class RaftNode:
    """Runs a RaftCore on the event loop. `start()`, `handle(api_key, request)`, `append(...)`, `stop()`."""

    def __init__(
        self, core: RaftCore, *, clock: Callable[[], float] = time.time, client_id: str = "raft"
    ) -> None:
        self.core = core
        self.clock = clock
        self.client_id = client_id
        self._wake = asyncio.Event()
        self._changed: asyncio.Future[None] | None = None
        self._connections: dict[int, tuple[tuple[str, int], BrokerConnection]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        core.notify = self._on_change

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        self.core.start(self.now_ms())
        self._loop_task = asyncio.create_task(self._run(), name=f"raft-{self.core.node_id}")

    async def stop(self, resign_timeout: float = 1.0) -> None:
        if self._stopping:
            return
        if isinstance(self.core.state, Leader):
            self.core.resign(self.now_ms())
            self._wake.set()
            deadline = time.monotonic() + resign_timeout
            while time.monotonic() < deadline:
                state = self.core.state
                if not isinstance(state, Resigned) or not state.unacked:
                    break
                await asyncio.sleep(0.01)
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for _address, conn in self._connections.values():
            with contextlib.suppress(Exception):
                await conn.close()
        self._connections.clear()
        self._on_change()
        self.core.log.close()

    # -- the poll loop -----------------------------------------------------------------------------
    def _on_change(self) -> None:
        self._wake.set()
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    def _change_future(self) -> asyncio.Future[None]:
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            now = self.now_ms()
            try:
                outbound = self.core.poll(now)
            except Exception:
                log.exception("raft node %d: poll failed", self.core.node_id)
                outbound = []
            for out in outbound:
                self._spawn(self._send(out))
            delay = max(0.0, (self.core.next_wakeup_ms(self.now_ms()) - self.now_ms()) / 1000)
            if outbound:
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.001))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connection(self, destination: int) -> BrokerConnection:
        address = self.core.address_of(destination)
        if address is None:
            raise ConnectionError(f"no address for node {destination}")
        cached = self._connections.get(destination)
        if cached is not None and cached[0] == address and not cached[1].closed:
            return cached[1]
        if cached is not None:
            with contextlib.suppress(Exception):
                await cached[1].close()
        timeout = self.core.config.request_timeout_ms / 1000
        conn = await BrokerConnection.open(
            address[0], address[1], client_id=self.client_id, timeout=timeout, negotiate=False
        )
        self._connections[destination] = (address, conn)
        return conn

    async def _send(self, out: Outbound) -> None:
        timeout = self.core.config.request_timeout_ms / 1000
        if out.api_key == FETCH:
            timeout += self.core.config.fetch_max_wait_ms / 1000
        try:
            conn = await self._connection(out.destination)
            response = await conn.request(out.request, timeout=timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # refused, reset, timed out: the core retries after its backoff
            log.debug(
                "raft node %d: request %d to %d failed: %r",
                self.core.node_id,
                out.api_key,
                out.destination,
                exc,
            )
            cached = self._connections.pop(out.destination, None)
            if cached is not None:
                with contextlib.suppress(Exception):
                    await cached[1].close()
            self.core.handle_failure(out.destination, self.now_ms())
        else:
            try:
                self.core.handle_response(out.destination, response, self.now_ms())
            except Exception:
                log.exception("raft node %d: response from %d failed", self.core.node_id, out.destination)
                self.core.handle_failure(out.destination, self.now_ms())
        self._wake.set()

    # -- inbound requests ----------------------------------------------------------------------------
    async def handle(self, api_key: int, request: Any) -> Any:
        """Answer a Raft request (the response of the request's version)."""
        if api_key in (ADD_RAFT_VOTER, REMOVE_RAFT_VOTER, UPDATE_RAFT_VOTER):
            try:
                return await self._voter_change(api_key, request)
            finally:
                self._wake.set()
        response = self.core.handle_request(api_key, request, self.now_ms(), can_wait=api_key == FETCH)
        if response is None:
            max_wait = request.max_wait.total_seconds()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._change_future()), timeout=max_wait)
            response = self.core.handle_request(api_key, request, self.now_ms(), can_wait=False)
        self._wake.set()
        return response

    async def _voter_change(self, api_key: int, request: Any) -> Any:
        version = int(request.__version__)
        if api_key == UPDATE_RAFT_VOTER:
            return voter_changes.handle_update_voter(self.core, request, self.now_ms())
        timeout = self.core.config.request_timeout_ms / 1000
        if api_key == REMOVE_RAFT_VOTER:
            outcome = voter_changes.handle_remove_voter(self.core, request, self.now_ms())
            if not isinstance(outcome, int):
                return outcome
            return await self._committed(outcome, timeout, voter_changes.remove_voter_response, version)
        timeout = max(timeout, int(request.timeout.total_seconds() * 1000) / 1000)
        plan = voter_changes.handle_add_voter(self.core, request, self.now_ms())
        if not isinstance(plan, voter_changes.AddVoterPlan):
            return plan
        error: ErrorCode | None = None
        kraft_versions: tuple[int, int] | None = None
        try:
            error, kraft_versions = await self._ask_kraft_versions(plan.address, timeout)
        finally:
            s = self.core.state
            if isinstance(s, Leader):
                s.voter_change_pending = False
        outcome = voter_changes.finish_add_voter(
            self.core, plan, version, error, kraft_versions, self.now_ms()
        )
        if not isinstance(outcome, int):
            return outcome
        if version >= 1 and not getattr(request, "ack_when_committed", True):
            return voter_changes.add_voter_response(version, ErrorCode.none)
        return await self._committed(outcome, timeout, voter_changes.add_voter_response, version)

    async def _committed(self, offset: int, timeout: float, respond: Callable[..., Any], version: int) -> Any:
        self._wake.set()
        if await self.wait_committed(offset, timeout):
            return respond(version, ErrorCode.none)
        return respond(
            version, ErrorCode.request_timed_out, "Request timed out waiting for the voters to commit"
        )

    async def _ask_kraft_versions(
        self, address: tuple[str, int], timeout: float
    ) -> tuple[ErrorCode | None, tuple[int, int] | None]:
        """ApiVersions to a would-be voter: (its error, its kraft.version range), (None, None) when it does
        not answer."""
        from kio.schema.api_versions.v4.request import ApiVersionsRequest

        conn: BrokerConnection | None = None
        try:
            conn = await BrokerConnection.open(
                address[0], address[1], client_id=self.client_id, timeout=timeout, negotiate=False
            )
            response = await conn.request(
                ApiVersionsRequest(client_software_name="apache-kafka-java", client_software_version="4.4.0"),
                timeout=timeout,
            )
        except Exception as exc:
            log.info("raft node %d: the new voter at %s did not answer ApiVersions: %r", self.core.node_id,
                     address, exc)
            return None, None
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        error = ErrorCode(int(response.error_code))
        for feature in response.supported_features:
            if feature.name == "kraft.version":
                return error, (int(feature.min_version), int(feature.max_version))
        return error, None

    # -- the client side -----------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self.core.role is Role.LEADER

    async def append(self, records: Sequence[ApiMessageAndVersion]) -> int:
        """Append as leader (NotLeaderError otherwise); returns the last offset written."""
        offset = self.core.append(records, self.now_ms())
        self._wake.set()
        return offset

    async def wait_changed(self, timeout: float) -> None:
        """Wait (at most `timeout` s) until the log end, the high watermark or the state moves."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._change_future()), timeout=timeout)

    async def wait_committed(self, offset: int, timeout: float) -> bool:
        """Wait until the high watermark passes `offset`."""
        deadline = time.monotonic() + timeout
        while self.core.high_watermark <= offset:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._change_future()), timeout=remaining)
        return True
