"""The classic group coordinator as a sans-io state machine (Kafka's GroupCoordinator semantics).

Inputs are requests (as `results` dataclasses) and the time in milliseconds; outputs are replies through
the callback each request passes, and records for __consumer_offsets through the injected `append` sink,
whose completion callback continues the work (a commit is answered only once its records are written, a
rebalance becomes Stable only once the leader's assignment is written). Nothing here sleeps or does I/O:
the owner calls `tick(now_ms)` at `next_deadline()` to fire heartbeat expiry, delayed joins
(group.initial.rebalance.delay.ms, rebalance timeouts), pending-sync timeouts and offset expiry.

`GroupCoordinatorCore` combines one module per job, all sharing the state in `base.CoreBase`:
`loading` (partition ownership and replay), `rebalance` (the state machine and its deadlines),
`membership` (JoinGroup/SyncGroup/Heartbeat/LeaveGroup; KIP-394, KIP-345, KIP-814), `offsets`
(OffsetCommit/OffsetFetch/OffsetDelete, KIP-496; expiry, KIP-211), `txn_offsets` (TxnOffsetCommit,
KIP-98/KIP-447) and `admin` (ListGroups/DescribeGroups/DeleteGroups). Consumer groups (KIP-848) come from
`strom.coordinator.consumer.core.ConsumerGroups`, first in the bases: it serves their group ids and hands
every other on to the classic modules. Share groups (KIP-932) come from
`strom.coordinator.share.core.ShareGroups`, before the consumer groups, the same way; streams groups
(KIP-1071) from `strom.coordinator.streams.core.StreamsGroups`, first of all.
"""

from __future__ import annotations

from strom.coordinator.consumer.core import ConsumerGroups
from strom.coordinator.group.admin import GroupAdmin
from strom.coordinator.group.base import AppendDone, AppendSink, Record, append_error_code
from strom.coordinator.group.config import GroupConfig
from strom.coordinator.group.group import GroupState
from strom.coordinator.group.loading import GroupLoader
from strom.coordinator.group.membership import MembershipHandlers
from strom.coordinator.group.offsets import OffsetStore
from strom.coordinator.group.txn_offsets import TxnOffsets
from strom.coordinator.share.core import ShareGroups
from strom.coordinator.streams.core import StreamsGroups

__all__ = [
    "AppendDone",
    "AppendSink",
    "GroupConfig",
    "GroupCoordinatorCore",
    "Record",
    "append_error_code",
]

_S = GroupState


class GroupCoordinatorCore(
    StreamsGroups,
    ShareGroups, ConsumerGroups, GroupLoader, MembershipHandlers, OffsetStore, TxnOffsets, GroupAdmin
):
    """Every group of the __consumer_offsets partitions this broker leads. One instance per broker; all
    calls come from one thread (the event loop), so no locking."""

    def next_deadline(self) -> int | None:
        return self.timers.next_deadline()

    def tick(self, now_ms: int) -> None:
        """Fire every deadline at or before `now_ms`."""
        for key in self.timers.pop_expired(now_ms):
            kind = key[0]
            if self.consumer_tick(key, now_ms) or self.share_tick(key, now_ms):
                continue
            if self.streams_tick(key, now_ms):
                continue
            if kind == "expire":
                self.expire_offsets(now_ms)
                self._schedule_expiry(now_ms)
                continue
            group = self.groups.get(key[1])
            if group is None:
                continue
            if kind == "hb":
                self._on_heartbeat_deadline(group, key[2], now_ms)
            elif kind == "join":
                if group.state is _S.PREPARING_REBALANCE:
                    self._on_join_deadline(group, now_ms)
            elif kind == "sync":
                self._on_sync_deadline(group, now_ms)
            elif kind == "pending":
                self._on_pending_deadline(group, key[2], now_ms)
