"""kcat (librdkafka's command-line client) against the broker under test: metadata listing (-L),
producing keyed records with headers (-P -K), consuming with a format string (-C -f), and the
beginning/end/relative start offsets (-o)."""

from __future__ import annotations

import json

import pytest
from compat_support import BrokerUnderTest, Kcat, TopicMaker

pytestmark = pytest.mark.compat


def test_metadata_listing(kcat: Kcat, broker: str, make_topic: TopicMaker) -> None:
    topic = make_topic(partitions=3)
    listing = json.loads(kcat.run("-L", "-J", "-t", topic).stdout)
    brokers = listing["brokers"]
    assert len(brokers) == 1
    assert brokers[0]["name"].endswith(broker.rsplit(":", 1)[1])
    [meta] = listing["topics"]
    assert meta["topic"] == topic
    assert sorted(p["partition"] for p in meta["partitions"]) == [0, 1, 2]
    assert all(p["leader"] == brokers[0]["id"] for p in meta["partitions"])

    text = kcat.run("-L", "-t", topic).stdout
    assert f'topic "{topic}" with 3 partitions' in text


def test_produce_keys_and_headers_then_consume(kcat: Kcat, topic: str) -> None:
    lines = "".join(f"key{i}:value {i}\n" for i in range(5))
    kcat.run("-P", "-t", topic, "-p", "0", "-K:", "-H", "origin=kcat", "-H", "n=1", input_text=lines)

    out = kcat.run("-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
                   "-f", "%o|%k|%s|%h|%T\\n").stdout
    rows = [line.split("|") for line in out.splitlines()]
    assert [r[0] for r in rows] == ["0", "1", "2", "3", "4"]
    assert [r[1] for r in rows] == [f"key{i}" for i in range(5)]
    assert [r[2] for r in rows] == [f"value {i}" for i in range(5)]
    assert all(r[3] == "origin=kcat,n=1" for r in rows)
    assert all(int(r[4]) > 1_600_000_000_000 for r in rows)  # CreateTime stamped by librdkafka


def test_offsets_beginning_end_relative(kcat: Kcat, topic: str) -> None:
    kcat.run("-P", "-t", topic, "-p", "0", input_text="".join(f"m{i}\n" for i in range(10)))

    at_end = kcat.run("-C", "-t", topic, "-p", "0", "-o", "end", "-e", "-q", "-f", "%s\\n").stdout
    assert at_end == ""
    last_three = kcat.run("-C", "-t", topic, "-p", "0", "-o", "-3", "-e", "-q", "-f", "%s\\n").stdout
    assert last_three.split() == ["m7", "m8", "m9"]
    from_offset = kcat.run("-C", "-t", topic, "-p", "0", "-o", "8", "-e", "-q", "-f", "%o:%s\\n").stdout
    assert from_offset.split() == ["8:m8", "9:m9"]
    counted = kcat.run("-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", "4", "-q", "-f", "%s\\n").stdout
    assert counted.split() == ["m0", "m1", "m2", "m3"]


def test_balanced_consumer_group(request: pytest.FixtureRequest, kcat: Kcat,
                                 broker_under_test: BrokerUnderTest, make_topic: TopicMaker) -> None:
    topic = make_topic(partitions=2)
    for part in (0, 1):
        kcat.run("-P", "-t", topic, "-p", str(part), input_text="".join(f"p{part}-{i}\n" for i in range(3)))
    group = f"kcat-{topic}"
    out = kcat.run("-G", group, "-X", "auto.offset.reset=earliest", "-e", "-q", "-f", "%p:%o:%s\\n", topic,
                   timeout=60).stdout
    rows = sorted(out.split())
    assert rows == sorted(f"{p}:{i}:p{p}-{i}" for p in (0, 1) for i in range(3))
