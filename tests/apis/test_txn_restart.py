"""Transactions across a broker restart: the coordinator replays __transaction_state, a new producer with
the same transactional.id aborts the open transaction it finds, and an abandoned one is aborted once its
transaction.timeout.ms passes, so read_committed readers move on."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from test_txn_clients import read_all, txn_producer

from strom.coordinator.txn.schemas import TxnState
from strom.testing.embedded import EmbeddedBroker

pytestmark = pytest.mark.compat

OVERRIDES = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "200"}


def test_open_transactions_survive_a_restart(tmp_path: Path) -> None:
    resumed_tid, abandoned_tid = f"resume-{uuid.uuid4().hex[:6]}", f"abandon-{uuid.uuid4().hex[:6]}"
    resumed_topic, abandoned_topic = "t-resume", "t-abandon"
    with EmbeddedBroker(OVERRIDES, data_dir=tmp_path) as first:
        port = first.port
        admin = AdminClient({"bootstrap.servers": first.bootstrap_servers})
        for name in (resumed_topic, abandoned_topic):
            admin.create_topics([NewTopic(name, 1, 1)])[name].result(10)
        producers = []
        for tid, topic, timeout in (
            (resumed_tid, resumed_topic, 60000),
            (abandoned_tid, abandoned_topic, 3000),
        ):
            producer = txn_producer(first, tid, **{"transaction.timeout.ms": timeout})
            producer.begin_transaction()
            producer.produce(topic, b"open", partition=0)
            producer.flush(10)
            producers.append(producer)
        abandoned_started = time.monotonic()
    for producer in producers:
        producer.purge()
    del producers

    with EmbeddedBroker(OVERRIDES, data_dir=tmp_path, port=port) as second:
        plain = Producer({"bootstrap.servers": second.bootstrap_servers})
        plain.produce(abandoned_topic, b"plain", partition=0)
        plain.flush(10)
        # the same id again: InitProducerId finds the replayed Ongoing transaction and aborts it first
        successor = txn_producer(second, resumed_tid)
        successor.begin_transaction()
        successor.produce(resumed_topic, b"after", partition=0)
        successor.commit_transaction(20)
        assert [v for _, _, v in read_all(second, resumed_topic, "read_committed")] == [b"after"]
        assert [v for _, _, v in read_all(second, resumed_topic, "read_uncommitted")] == [b"open", b"after"]

        # nobody comes back for the other one: its timeout aborts it and the LSO moves past it
        assert second.broker is not None
        core = second.broker.txn_coordinator.core
        deadline = time.monotonic() + 20
        while core.describe(abandoned_tid)[1] is None or core.describe(abandoned_tid)[1].state != (
            TxnState.COMPLETE_ABORT
        ):
            assert time.monotonic() < deadline, core.describe(abandoned_tid)
            time.sleep(0.1)
        assert time.monotonic() - abandoned_started >= 2.5  # not before its timeout
        assert [v for _, _, v in read_all(second, abandoned_topic, "read_committed")] == [b"plain"]
