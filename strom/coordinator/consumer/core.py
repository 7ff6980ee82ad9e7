"""Consumer groups (KIP-848, the consumer rebalance protocol) in the group coordinator core.

`ConsumerGroups` combines one module per job, all sharing `base.ConsumerBase` (and through it the classic
core's `CoreBase`: the __consumer_offsets partitions, the append sink and the timers): `heartbeat`
(ConsumerGroupHeartbeat: joining, epochs, target assignment, reconciliation), `departures` (leaving,
session and rebalance timeouts), `migration` (KIP-848's online upgrade of classic groups and downgrade
back), `classic_members` (JoinGroup/SyncGroup/Heartbeat/LeaveGroup of classic members in a consumer
group, first of all), `offsets` (commits and fetches with member epochs, expiry), `admin`
(ConsumerGroupDescribe, ListGroups/DescribeGroups/DeleteGroups for both group types) and `loading`
(replay). It comes first in `GroupCoordinatorCore`'s bases, so its overrides see every request and hand
those for classic groups on to the classic modules.
"""

from __future__ import annotations

from strom.coordinator.consumer.admin import ConsumerAdmin
from strom.coordinator.consumer.base import REBALANCE, SESSION
from strom.coordinator.consumer.classic_members import ClassicMembers
from strom.coordinator.consumer.loading import ConsumerLoader
from strom.coordinator.consumer.offsets import ConsumerOffsets

CONSUMER_TIMERS = frozenset({SESSION, REBALANCE})


class ConsumerGroups(ClassicMembers, ConsumerLoader, ConsumerAdmin, ConsumerOffsets):
    def consumer_tick(self, key: tuple[str, ...], now_ms: int) -> bool:
        """Fire a consumer-group deadline; False if `key` is not one."""
        if key[0] not in CONSUMER_TIMERS:
            return False
        self._on_consumer_deadline(key, now_ms)
        return True
