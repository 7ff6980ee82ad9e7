"""MixedCluster for the tests (benchmarks.peers.mixed_cluster): a KRaft cluster of Strom and Apache Kafka
4.4 nodes, which skips the test where Java or Kafka's jars cannot be had.

    with MixedCluster(controllers=3, brokers=2, kafka={1, 2, 3}) as cluster:   # Kafka quorum, Strom brokers
        cluster.start_all()
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.peers import mixed_cluster
from benchmarks.peers.tools import ToolUnavailable


class MixedCluster(mixed_cluster.MixedCluster):
    def __init__(self, **kwargs: Any) -> None:
        try:
            super().__init__(**kwargs)
        except ToolUnavailable as exc:
            pytest.skip(str(exc))
