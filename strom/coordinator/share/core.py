"""Share groups (KIP-932) in the group coordinator core.

`ShareGroups` combines one module per job, all sharing `base.ShareBase` (and through it the consumer and
classic cores' state: the __consumer_offsets partitions, the append sink, the timers, the topics view):
`heartbeat` (ShareGroupHeartbeat: joining, leaving, the assignment, session timeouts), `admin`
(ShareGroupDescribe, ListGroups/DescribeGroups/DeleteGroups for share groups, the share-group offset
APIs' group checks) and `loading` (replay). It comes first in `GroupCoordinatorCore`'s bases, so its
overrides see every request and hand those for other group types on.
"""

from __future__ import annotations

from strom.coordinator.share.admin import ShareAdmin
from strom.coordinator.share.base import SHARE_SESSION
from strom.coordinator.share.heartbeat import ShareHeartbeats
from strom.coordinator.share.loading import ShareLoader


class ShareGroups(ShareLoader, ShareAdmin, ShareHeartbeats):
    def share_tick(self, key: tuple[str, ...], now_ms: int) -> bool:
        """Fire a share-group deadline; False if `key` is not one."""
        if key[0] != SHARE_SESSION:
            return False
        self._on_share_deadline(key, now_ms)
        return True
