"""The leader and follower rules of `Partition` on real logs, without a network: the high watermark waits
for the ISR within the current epoch, the ISR shrinks after the lag time and grows at the high watermark,
followers keep the leader's offsets and truncate by epoch, and losing leadership fails acks=all waiters."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from strom.cluster.metadata import PartitionState
from strom.config import BrokerConfig
from strom.protocol.errors import NotLeaderOrFollowerError
from strom.protocol.records import Record, build_batch
from strom.replication.fetcher import ReplicaFetcher
from strom.replication.partition import (
    NotEnoughReplicasAfterAppendError,
    NotEnoughReplicasError,
    Partition,
)
from strom.storage.log import Log

NOW_MS = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _partition(tmp_path: Path, name: str, node: int, clock: Clock, **overrides: str) -> Partition:
    config = BrokerConfig({"log.dirs": str(tmp_path)}).log_config(
        {k.replace("_", "."): v for k, v in overrides.items()}
    )
    log = Log.open(tmp_path / f"{name}-0", config, clock=clock)
    part = Partition("t", 0, log, node_id=node, leader_id=-1, leader_epoch=-1, clock=clock)
    part.load_producer_state()
    return part


def _batch(n: int) -> bytes:
    return build_batch(
        [Record(i, 0, None, b"v%d" % i, []) for i in range(n)], base_timestamp=1_700_000_000_000
    )


def test_high_watermark_waits_for_isr_in_current_epoch(tmp_path: Path) -> None:
    clock = Clock()
    proposals: list[tuple[int, ...]] = []
    leader = _partition(tmp_path, "a", 1, clock)
    leader.isr_proposer = lambda part, isr: proposals.append(isr)
    leader.become_leader(PartitionState(0, 1, 3, (1, 2, 3), (1, 2, 3), 7))
    leader.append_as_leader(_batch(5), acks=-1)
    assert leader.high_watermark == 0  # no follower has fetched in epoch 3 yet
    leader.update_follower_fetch(2, 5, NOW_MS)
    assert leader.high_watermark == 0  # follower 3 is in the ISR and has not fetched
    leader.update_follower_fetch(3, 3, NOW_MS)
    assert leader.high_watermark == 3
    leader.update_follower_fetch(3, 5, NOW_MS)
    assert leader.high_watermark == 5
    assert proposals == []
    assert leader.log.leader_epoch_cache.entries() == [(3, 0)]


def test_isr_shrinks_after_lag_and_grows_at_high_watermark(tmp_path: Path) -> None:
    clock = Clock()
    proposals: list[tuple[int, ...]] = []
    leader = _partition(tmp_path, "a", 1, clock, min_insync_replicas="2")
    leader.isr_proposer = lambda part, isr: proposals.append(isr)
    leader.become_leader(PartitionState(0, 1, 0, (1, 2, 3), (1, 2, 3), 0))
    leader.append_as_leader(_batch(4), acks=1)
    now = int(clock() * 1000)
    leader.update_follower_fetch(2, 4, now)
    leader.maybe_shrink_isr(now + 3000, 4000)
    assert proposals == []  # 3 got a full lag period from the election
    leader.update_follower_fetch(2, 4, now + 4500)  # 2 keeps fetching at the end, 3 never shows up
    leader.maybe_shrink_isr(now + 5000, 4000)
    assert proposals == [(1, 2)]
    leader.isr_change_done(PartitionState(0, 1, 0, (1, 2, 3), (1, 2), 1))
    assert leader.isr == (1, 2) and leader.partition_epoch == 1
    assert leader.high_watermark == 4  # 3 left the ISR: the ISR {1, 2} is at 4
    leader.update_follower_fetch(3, 2, now + 6000)  # behind the high watermark: not yet
    assert proposals == [(1, 2)]
    leader.update_follower_fetch(3, 4, now + 6100)
    assert proposals == [(1, 2), (1, 2, 3)]
    leader.isr_change_done(None)  # a lost compare-and-set changes nothing
    assert leader.isr == (1, 2)


def test_stale_state_does_not_undo_the_leaders_newer_isr(tmp_path: Path) -> None:
    """A metadata image read before the leader's own ISR change was written can be published after the
    change's answer. Applying it would shrink the leader's ISR back below what ZooKeeper holds, and
    acks=all would be answered without a follower the controller may still elect (Kafka skips a state
    whose partition epoch is older than the leader's)."""
    clock = Clock()
    proposals: list[tuple[int, ...]] = []
    leader = _partition(tmp_path, "a", 1, clock)
    leader.isr_proposer = lambda part, isr: proposals.append(isr)
    leader.become_leader(PartitionState(0, 1, 0, (1, 2, 3), (1, 2), 5))
    leader.append_as_leader(_batch(4), acks=-1)
    now = int(clock() * 1000)
    leader.update_follower_fetch(2, 4, now)
    leader.update_follower_fetch(3, 4, now)
    assert proposals == [(1, 2, 3)]
    leader.isr_change_done(PartitionState(0, 1, 0, (1, 2, 3), (1, 2, 3), 6))
    leader.become_leader(PartitionState(0, 1, 0, (1, 2, 3), (1, 2), 5))  # the stale image
    assert leader.isr == (1, 2, 3) and leader.partition_epoch == 6
    leader.append_as_leader(_batch(2), acks=-1)
    leader.update_follower_fetch(2, 6, now + 100)
    assert leader.high_watermark == 4, "acknowledged without ISR member 3"
    leader.update_follower_fetch(3, 6, now + 100)
    assert leader.high_watermark == 6
    assert proposals == [(1, 2, 3)]  # and no proposal from the stale partition epoch
    leader.become_leader(PartitionState(0, 1, 0, (1, 2, 3), (1, 3), 7))  # a newer state applies
    assert leader.isr == (1, 3) and leader.partition_epoch == 7


def test_min_isr_refuses_acks_all_before_append(tmp_path: Path) -> None:
    clock = Clock()
    leader = _partition(tmp_path, "a", 1, clock, min_insync_replicas="2")
    leader.become_leader(PartitionState(0, 1, 0, (1, 2), (1,), 0))
    with pytest.raises(NotEnoughReplicasError):
        leader.append_as_leader(_batch(1), acks=-1)
    assert leader.log_end_offset == 0
    assert leader.append_as_leader(_batch(1), acks=1).first_offset == 0


def test_follower_keeps_offsets_and_truncates_by_epoch(tmp_path: Path) -> None:
    clock = Clock()
    leader = _partition(tmp_path, "a", 1, clock)
    follower = _partition(tmp_path, "b", 2, clock)
    leader.become_leader(PartitionState(0, 1, 1, (1, 2), (1, 2), 0))
    follower.become_follower(PartitionState(0, 1, 1, (1, 2), (1, 2), 0))
    leader.append_as_leader(_batch(3), acks=1)
    leader.append_as_leader(_batch(2), acks=1)
    data = leader.log.read(0, 1 << 20).read_bytes()
    follower.append_as_follower(data)
    follower.set_follower_high_watermark(4)
    assert follower.log_end_offset == 5 and follower.high_watermark == 4
    assert follower.log.read(0, 1 << 20).read_bytes() == data
    # the follower wrote 2 more records as leader of epoch 2 that nobody else has
    follower.become_leader(PartitionState(0, 2, 2, (1, 2), (2,), 1))
    follower.append_as_leader(_batch(2), acks=1)
    follower.become_follower(PartitionState(0, 1, 3, (1, 2), (1, 2), 2))
    # the new leader (1) answers OffsetForLeaderEpoch(2) with its largest epoch <= 2: epoch 1 ending at 5
    ReplicaFetcher._apply_epoch_end(follower, 1, leader.log_end_offset)
    assert follower.log_end_offset == 5
    assert follower.log.read(0, 1 << 20).read_bytes() == data


async def test_losing_leadership_fails_acks_all_waiters(tmp_path: Path) -> None:
    clock = Clock()
    leader = _partition(tmp_path, "a", 1, clock)
    leader.become_leader(PartitionState(0, 1, 0, (1, 2), (1, 2), 0))
    result = leader.append_as_leader(_batch(1), acks=-1)
    waiting = asyncio.create_task(leader.wait_for_acks_all(result.last_offset, 5))
    await asyncio.sleep(0)
    leader.become_follower(PartitionState(0, 2, 1, (1, 2), (2,), 1))
    with pytest.raises(NotLeaderOrFollowerError):
        await waiting
    with pytest.raises(NotLeaderOrFollowerError):
        leader.append_as_leader(_batch(1), acks=1)


async def test_isr_shrinking_below_min_isr_while_acks_all_waits(tmp_path: Path) -> None:
    """Kafka's DelayedProduce: the high watermark passes the append once the laggards leave the ISR, but
    an ISR below min.insync.replicas answers NOT_ENOUGH_REPLICAS_AFTER_APPEND (the records stay written)."""
    clock = Clock()
    leader = _partition(tmp_path, "a", 1, clock, min_insync_replicas="2")
    leader.isr_proposer = lambda part, isr: None
    leader.become_leader(PartitionState(0, 1, 0, (1, 2, 3), (1, 2, 3), 0))
    result = leader.append_as_leader(_batch(2), acks=-1)
    waiting = asyncio.create_task(leader.wait_for_acks_all(result.last_offset, 5))
    await asyncio.sleep(0)
    assert not waiting.done()
    now = int(clock() * 1000)
    leader.maybe_shrink_isr(now + 20_000, 10_000)  # neither follower has fetched
    assert leader.pending_isr == (1,)
    leader.isr_change_done(PartitionState(0, 1, 0, (1, 2, 3), (1,), 1))
    with pytest.raises(NotEnoughReplicasAfterAppendError) as caught:
        await waiting
    assert caught.value.code == ErrorCode.not_enough_replicas_after_append
    assert leader.high_watermark == 2 and leader.log_end_offset == 2


async def test_isr_shrinking_to_min_isr_while_acks_all_waits_succeeds(tmp_path: Path) -> None:
    clock = Clock()
    leader = _partition(tmp_path, "a", 1, clock, min_insync_replicas="2")
    leader.isr_proposer = lambda part, isr: None
    leader.become_leader(PartitionState(0, 1, 0, (1, 2, 3), (1, 2, 3), 0))
    result = leader.append_as_leader(_batch(2), acks=-1)
    waiting = asyncio.create_task(leader.wait_for_acks_all(result.last_offset, 5))
    now = int(clock() * 1000)
    leader.update_follower_fetch(2, 2, now + 9_000)  # 2 caught up, 3 never fetched
    await asyncio.sleep(0)
    assert not waiting.done()
    leader.maybe_shrink_isr(now + 20_000, 15_000)
    assert leader.pending_isr == (1, 2)
    leader.isr_change_done(PartitionState(0, 1, 0, (1, 2, 3), (1, 2), 1))
    assert await waiting is True
