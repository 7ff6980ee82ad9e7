"""The follower fetch loop's shutdown, without a network: `ReplicaFetcher.stop` returns even when the
cancellation it sends is lost because the fetch response landed in the same loop iteration (Python
< 3.12's asyncio.wait_for then returns the result instead of raising). The replica manager stops a
leader's fetcher while it applies a metadata image, so a lost cancellation froze that broker's metadata
for good."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from strom.cluster.metadata import PartitionState
from strom.config import BrokerConfig
from strom.protocol.errors import ErrorCode
from strom.replication.fetcher import FetcherConfig, ReplicaFetcher
from strom.replication.partition import Partition
from strom.storage.log import Log


class RacingConnection:
    """Answers each Fetch through asyncio.wait_for, with the response set by the test."""

    def __init__(self) -> None:
        self.response: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent = asyncio.Event()
        self.closed = False
        self.requests = 0

    async def request(self, request: object, *, timeout: float) -> Any:
        self.requests += 1
        self.sent.set()
        return await asyncio.wait_for(self.response, timeout)

    async def close(self) -> None:
        self.closed = True


def _follower(tmp_path: Path) -> Partition:
    config = BrokerConfig({"log.dirs": str(tmp_path)}).log_config({})
    log = Log.open(tmp_path / "t-0", config, clock=time.time)
    part = Partition("t", 0, log, node_id=2, leader_id=-1, leader_epoch=-1, clock=time.time)
    part.become_follower(PartitionState(0, 1, 0, (1, 2), (1, 2), 0))
    return part


async def test_stop_returns_when_the_response_races_the_cancellation(tmp_path: Path) -> None:
    conn = RacingConnection()
    fetcher = ReplicaFetcher(1, lambda _node: ("127.0.0.1", 9), FetcherConfig(2, backoff_s=0.01))

    async def connection() -> RacingConnection:
        fetcher._conn = conn  # type: ignore[assignment]
        return conn

    fetcher._connection = connection  # type: ignore[method-assign]
    part = _follower(tmp_path)
    fetcher.add(part)
    fetcher.start()
    task = fetcher._task
    assert task is not None
    await asyncio.wait_for(conn.sent.wait(), 5)
    # the replica manager's order: the partition leaves, then the now idle fetcher is stopped, while
    # the Fetch response is already on its way
    fetcher.remove(("t", 0))
    conn.response.set_result(SimpleNamespace(error_code=ErrorCode.none, responses=()))
    # (not asyncio.wait_for: a stop() that swallowed its own cancellation would look like a success)
    stopping = asyncio.create_task(fetcher.stop())
    await asyncio.wait({stopping}, timeout=2)
    assert stopping.done() and task.done(), "stop() hangs on a fetch loop that lost its cancellation"
    await stopping
    assert conn.closed
    assert conn.requests == 1
    part.log.close()
