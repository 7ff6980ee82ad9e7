"""Eligible leader replicas (KIP-966) across kinds: the scenario of tests/cluster_kraft/test_kraft_elr.py
(controllers 1-3, brokers 4-7, a partition on 4, 5, 6 with min.insync.replicas=2; 6 stops, 5 is killed
into the ELR, 4 stops and empties the ISR, 5 comes back out of the ELR after its crash, 4 comes back
after its clean stop and is elected from the ELR) with Strom brokers under Kafka 4.4 controllers (a
Strom broker's clean-shutdown marker carries its broker epoch as Kafka's does, and its
DescribeTopicPartitions answers the ELR Kafka's controllers write), and with a Kafka 4.4 broker as the
returning ELR member under Strom controllers."""

from __future__ import annotations

import pytest

from tests.cluster_kraft.test_kraft_cluster import SETTINGS
from tests.cluster_kraft.test_kraft_elr import elr_scenario
from tests.cluster_mixed.mixed import MixedCluster

pytest.importorskip("confluent_kafka")
pytestmark = [pytest.mark.slow, pytest.mark.cluster]

LAYOUTS = {"kafka-controllers": {1, 2, 3}, "kafka-elr-member": {4}}


@pytest.mark.parametrize("kafka", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_elr_across_kinds(kafka: set[int]) -> None:
    with MixedCluster(controllers=3, brokers=4, kafka=kafka, settings=SETTINGS) as cluster:
        cluster.start_all()
        elr_scenario(cluster)
