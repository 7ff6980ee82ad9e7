"""Metadata response encoding: kio's pure-Python writer against the hand-written encoder.

Prints one JSON object with milliseconds per response for a cluster of --topics topics of --partitions
partitions (replication factor 3 over 3 brokers), at Metadata v1 (kafka-go), v9 (first flexible) and
v12 (librdkafka, Java). "build+encode" starts from the same plain data for both paths, as the handler
does: kio needs its dataclasses built first, the hand-written encoder takes NamedTuples. "encode" times
only the serialization of already-built objects. Both outputs are checked equal before timing.

    python benchmarks/metadata_bench.py --topics 100 --partitions 10
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

# run from a checkout without installing: this tree's strom, not another copy on the path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kio.serial import entity_writer
from kio.static.primitive import i32

from strom.apis._build import build, entry_type, no_throttle
from strom.apis.metadata import (
    NO_AUTHORIZED_OPERATIONS,
    MetadataBroker,
    MetadataPartition,
    MetadataTopic,
    encode_response,
)
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import response_type

Cluster = tuple[list[tuple[int, str, int, str | None]], list[tuple[str, uuid.UUID, list[tuple[int, ...]]]]]


def make_cluster(topics: int, partitions: int) -> Cluster:
    brokers = [(i, f"broker-{i}.example.internal", 9092, f"rack-{i}") for i in range(3)]
    topic_rows = []
    for t in range(topics):
        parts = []
        for p in range(partitions):
            replicas = tuple((p + k) % 3 for k in range(3))
            parts.append((p, replicas[0], 7, *replicas))
        topic_rows.append((f"topic-{t:04d}", uuid.UUID(int=t + 1), parts))
    return brokers, topic_rows


def our_rows(cluster: Cluster) -> tuple[list[MetadataBroker], list[MetadataTopic]]:
    brokers, topic_rows = cluster
    topics = [
        MetadataTopic(
            ErrorCode.none,
            name,
            topic_id,
            False,
            tuple(MetadataPartition(ErrorCode.none, p[0], p[1], p[2], p[3:], p[3:]) for p in parts),
        )
        for name, topic_id, parts in topic_rows
    ]
    return [MetadataBroker(*b) for b in brokers], topics


def ours(version: int, cluster: Cluster) -> bytes:
    brokers, topics = our_rows(cluster)
    return encode_response(version, brokers, "bench-cluster", 0, topics)


def kio_object(version: int, cluster: Cluster) -> Any:
    brokers, topic_rows = cluster
    cls = response_type(3, version)
    assert cls is not None
    topic_cls = entry_type(cls, "topics")
    part_cls = entry_type(topic_cls, "partitions")
    broker_cls = entry_type(cls, "brokers")
    return build(
        cls,
        throttle_time=no_throttle(),
        brokers=tuple(
            build(broker_cls, node_id=i32(n), host=h, port=i32(port), rack=r) for n, h, port, r in brokers
        ),
        cluster_id="bench-cluster",
        controller_id=i32(0),
        topics=tuple(
            build(
                topic_cls,
                error_code=ErrorCode.none,
                name=name,
                topic_id=topic_id,
                is_internal=False,
                partitions=tuple(
                    build(
                        part_cls,
                        error_code=ErrorCode.none,
                        partition_index=i32(p[0]),
                        leader_id=i32(p[1]),
                        leader_epoch=i32(p[2]),
                        replica_nodes=tuple(i32(r) for r in p[3:]),
                        isr_nodes=tuple(i32(r) for r in p[3:]),
                        offline_replicas=(),
                    )
                    for p in parts
                ),
                topic_authorized_operations=i32(NO_AUTHORIZED_OPERATIONS),
            )
            for name, topic_id, parts in topic_rows
        ),
        cluster_authorized_operations=i32(NO_AUTHORIZED_OPERATIONS),
    )


def kio_write(obj: Any) -> bytes:
    buf = io.BytesIO()
    entity_writer(type(obj))(buf, obj)
    return buf.getvalue()


def ms_per_call(fn: Callable[[], object], min_seconds: float) -> float:
    """Best of five rounds, each long enough to swamp timer noise."""
    fn()
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - start >= min_seconds / 5:
            break
        n *= 2
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return round(best * 1000, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per measurement")
    args = parser.parse_args()
    cluster = make_cluster(args.topics, args.partitions)
    results: dict[str, Any] = {"topics": args.topics, "partitions_per_topic": args.partitions, "versions": {}}
    for version in (1, 9, 12):
        obj = kio_object(version, cluster)
        body = ours(version, cluster)
        if body != kio_write(obj):
            raise SystemExit(f"v{version}: hand-written bytes differ from kio's")
        kio_full = ms_per_call(lambda v=version: kio_write(kio_object(v, cluster)), args.seconds)
        ours_full = ms_per_call(lambda v=version: ours(v, cluster), args.seconds)
        kio_enc = ms_per_call(lambda o=obj: kio_write(o), args.seconds)
        rows = our_rows(cluster)
        ours_enc = ms_per_call(
            lambda v=version, r=rows: encode_response(v, r[0], "bench-cluster", 0, r[1]), args.seconds
        )
        results["versions"][f"v{version}"] = {
            "bytes": len(body),
            "kio_build_encode_ms": kio_full,
            "hand_build_encode_ms": ours_full,
            "kio_encode_only_ms": kio_enc,
            "hand_encode_only_ms": ours_enc,
            "speedup": round(kio_full / ours_full, 1),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
