"""Clients that write what they do into a `strom.testing.history.History`, for fault tests.

`HistoryProducer` is an acks=all idempotent librdkafka producer in a thread (up to 5 requests in flight
per broker, Kafka's limit for ordered idempotence), writing unique values `p<partition>-<n>` round robin
until stopped; each send, acknowledgement (with its offset) and failure goes into the history.
`read_back` reads every partition from offset 0 to its high watermark and records each record read.
Every wait has a deadline: a run against a broken cluster ends with a verdict, not a hang.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from strom.testing.history import History

__all__ = ["HistoryProducer", "read_back"]


class HistoryProducer(threading.Thread):
    """Writes `p<partition>-<n>` to partitions 0..partitions-1 of `topic`, `pause_s` between records, until
    `stop()`; `stop()` then flushes for at most `flush_timeout` seconds."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        partitions: int,
        history: History,
        *,
        pause_s: float = 0.002,
        flush_timeout: float = 60.0,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        from confluent_kafka import Producer

        super().__init__(daemon=True, name=f"history-producer-{topic}")
        settings: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "max.in.flight.requests.per.connection": 5,
            "linger.ms": 5,
            # long enough to outlive a leader election and a fenced broker, short enough to end the run
            "message.timeout.ms": 60000,
            "retry.backoff.ms": 100,
            **(config or {}),
        }
        self.producer = Producer(settings)
        self.topic = topic
        self.partitions = partitions
        self.history = history
        self.pause_s = pause_s
        self.flush_timeout = flush_timeout
        self.unflushed = 0
        self._stop_flag = threading.Event()
        self._acked = 0
        self._lock = threading.Lock()

    @property
    def acked(self) -> int:
        with self._lock:
            return self._acked

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.history.fail(msg.partition(), msg.value(), str(err))
            return
        self.history.ack(msg.partition(), msg.value(), msg.offset())
        with self._lock:
            self._acked += 1

    def run(self) -> None:
        n = 0
        while not self._stop_flag.is_set():
            partition = n % self.partitions
            value = b"p%d-%d" % (partition, n // self.partitions)
            while True:
                try:
                    self.producer.produce(
                        self.topic, value=value, partition=partition, on_delivery=self._delivered
                    )
                    break
                except BufferError:  # the local queue is full while a leader is away: wait for room
                    self.producer.poll(0.1)
            self.history.send(partition, value)
            n += 1
            self.producer.poll(0)
            time.sleep(self.pause_s)
        self.unflushed = self.producer.flush(self.flush_timeout)

    def stop(self) -> None:
        self._stop_flag.set()
        self.join(self.flush_timeout + 30)


def read_back(
    bootstrap: str, topic: str, partitions: int, history: History, *, timeout: float = 60.0
) -> None:
    """Reads each partition from offset 0 up to its high watermark into `history` (read_uncommitted, so
    exactly what the log holds below the high watermark). Raises TimeoutError past `timeout`."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"history-reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    deadline = time.monotonic() + timeout
    try:
        ends = {}
        for p in range(partitions):
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=timeout, cached=False
            )
            ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions) if ends[p] > 0])
        next_offset = dict.fromkeys(range(partitions), 0)
        while any(next_offset[p] < ends[p] for p in range(partitions)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {next_offset} of {ends} within {timeout} s")
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            p, offset = msg.partition(), msg.offset()
            if offset < ends[p]:
                history.read(p, msg.value(), offset)
            next_offset[p] = max(next_offset[p], offset + 1)
    finally:
        consumer.close()
