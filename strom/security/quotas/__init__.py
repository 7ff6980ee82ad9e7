"""Client quotas (KIP-13, KIP-55, KIP-124, KIP-219, KIP-546, KIP-599, KIP-612): user, client-id and
(user, client-id) quotas on produce and fetch bytes and on request time, per-IP connection creation rates,
stored where each mode keeps its metadata and enforced by muting the client's connection.

- `entities`: quota entities, keys, Kafka's validation of AlterClientQuotas, DescribeClientQuotas
  filters and the precedence of matching entities and defaults.
- `rate`: Kafka's sampled rate with an upper bound and its throttle time.
- `manager`: `QuotaManager`, the broker's budgets (`broker.quotas`).
- `store`, `zk_store`: where quotas live (single node, ZooKeeper; KRaft plugs in with `quota_store()`).
- `throttling`: what Produce, Fetch and the connection call.
"""

from strom.security.quotas.entities import QuotaEntity, Quotas
from strom.security.quotas.manager import QuotaManager, QuotaSettings

__all__ = ["QuotaEntity", "QuotaManager", "QuotaSettings", "Quotas"]
