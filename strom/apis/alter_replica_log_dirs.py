"""AlterReplicaLogDirs (api key 34), versions 1-2: move partitions between this broker's log dirs (JBOD,
KIP-113). Kafka 4.0 removed v0 (KIP-896); v2 is the flexible version.

Behaviour (Kafka's ReplicaManager.alterReplicaLogDirs): for each (log dir, partition) the partition's log
is copied into a future replica in that dir (`<topic>-<p>.<id>-future`) by a background mover while the
partition keeps serving, then swapped in; DescribeLogDirs shows the future replica (`is_future_key`) and
its offset lag meanwhile. Naming the dir the log is in already answers NONE and cancels a move elsewhere.
For a partition this broker does not host (yet), the dir is remembered as where its log will be created
and the answer is REPLICA_NOT_AVAILABLE, which tools such as kafka-reassign-partitions retry until the
replica exists. The dir must be one of `log.dirs`, compared as an absolute path.

Errors per partition: NONE, LOG_DIR_NOT_FOUND (not a configured log dir), KAFKA_STORAGE_ERROR (the dir or
the partition is offline, or some log dir is offline: no future replica is made then, as in Kafka),
REPLICA_NOT_AVAILABLE, INVALID_TOPIC_EXCEPTION (the future directory's name would pass 255 bytes),
CLUSTER_AUTHORIZATION_FAILED (no ALTER on the cluster: every partition).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from strom.apis._admin_util import NO_THROTTLE, build, kio_module
from strom.apis._authz import Op, Rt, may
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.registry import ApiSpec
from strom.server.context import RequestContext

API_KEY = 34
MIN_VERSION = 1
MAX_VERSION = 2

log = logging.getLogger("strom.apis.alter_replica_log_dirs")


async def handle(ctx: RequestContext, request: Any) -> Any:
    mod = kio_module("alter_replica_log_dirs", ctx.api_version, "response")
    allowed = may(ctx, Op.ALTER, Rt.CLUSTER)
    results: dict[str, dict[int, ErrorCode]] = defaultdict(dict)
    replica_manager = ctx.broker.replica_manager
    for entry in request.dirs:
        for topic in entry.topics:
            for p in topic.partitions:
                index = int(p)
                if not allowed:
                    results[topic.name][index] = ErrorCode.cluster_authorization_failed
                    continue
                try:
                    code = await replica_manager.alter_log_dir(topic.name, index, entry.path)
                except KafkaError as exc:
                    log.warning("cannot move %s-%d to %s: %s", topic.name, index, entry.path, exc)
                    code = exc.code
                results[topic.name][index] = code
    return build(
        mod.AlterReplicaLogDirsResponse,
        throttle_time=NO_THROTTLE,
        results=tuple(
            mod.AlterReplicaLogDirTopicResult(
                topic_name=name,
                partitions=tuple(
                    mod.AlterReplicaLogDirPartitionResult(partition_index=i, error_code=code)
                    for i, code in parts.items()
                ),
            )
            for name, parts in results.items()
        ),
    )


SPEC = ApiSpec(API_KEY, MIN_VERSION, MAX_VERSION, handle, name="AlterReplicaLogDirs")
