"""Streams groups (KIP-1071) in the group coordinator core.

`StreamsGroups` combines one module per job, all sharing `base.StreamsBase` (and through it the other
cores' state: the __consumer_offsets partitions, the append sink, the timers, the topics view):
`heartbeat` (StreamsGroupHeartbeat: joining with a topology, epochs, the task assignment,
reconciliation), `departures` (leaving, session and rebalance timeouts), `offsets` (commits and fetches
with member epochs), `admin` (StreamsGroupDescribe and the other types' views of streams groups) and
`loading` (replay). It comes first in `GroupCoordinatorCore`'s bases, so its overrides see every request
and hand those for other group types on.
"""

from __future__ import annotations

from strom.coordinator.streams.admin import StreamsAdmin
from strom.coordinator.streams.base import STREAMS_INITIAL_REBALANCE, STREAMS_REBALANCE, STREAMS_SESSION
from strom.coordinator.streams.departures import StreamsDepartures
from strom.coordinator.streams.heartbeat import StreamsHeartbeats
from strom.coordinator.streams.loading import StreamsLoader
from strom.coordinator.streams.offsets import StreamsOffsets

STREAMS_TIMERS = frozenset({STREAMS_SESSION, STREAMS_REBALANCE, STREAMS_INITIAL_REBALANCE})


class StreamsGroups(StreamsLoader, StreamsAdmin, StreamsOffsets, StreamsDepartures, StreamsHeartbeats):
    def streams_tick(self, key: tuple[str, ...], now_ms: int) -> bool:
        """Fire a streams-group deadline; False if `key` is not one."""
        if key[0] not in STREAMS_TIMERS:
            return False
        if key[0] == STREAMS_INITIAL_REBALANCE:
            self._streams_initial_delay_ended(key[1], now_ms)
        else:
            self._on_streams_deadline(key, now_ms)
        return True
