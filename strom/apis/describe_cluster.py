"""DescribeCluster (api key 60), versions 0-2 (KIP-700; endpoint type KIP-919; fenced brokers KIP-1073).

Behaviour: the cluster id, the controller id (this broker on a single node, the elected controller in a
cluster) and every live broker with its advertised host and port on the listener the client connected
through (brokers without that listener are left out), and its rack. v1+ `endpoint_type` must be 1
(brokers); a broker does not describe controller endpoints. v2 reports `is_fenced` false for every listed
broker. With `include_cluster_authorized_operations`, the CLUSTER operations the principal may perform
(every one the cluster supports without an authorizer, as Kafka answers), or none without DESCRIBE on
the cluster.

Errors: NONE; UNSUPPORTED_ENDPOINT_TYPE (endpoint_type other than 1).
"""

from __future__ import annotations

from typing import Any

from strom.apis._admin_util import NO_THROTTLE, build, kio_module
from strom.apis._authz import CLUSTER_NAME, authorized_operations, may
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec
from strom.security.acl import SUPPORTED_OPERATIONS
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 60
MIN_VERSION = 0
MAX_VERSION = 2

ENDPOINT_BROKERS = 1
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)
# the operations the CLUSTER resource supports (Kafka's AclEntry.supportedOperations): CREATE, ALTER,
# DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE; the token operations are the
# USER resource's
_CLUSTER_OPS = SUPPORTED_OPERATIONS[ResourceType.CLUSTER]


async def handle(ctx: Any, request: Any) -> Any:
    mod = kio_module("describe_cluster", ctx.api_version, "response")
    image = ctx.broker.metadata.image
    endpoint_type = int(getattr(request, "endpoint_type", ENDPOINT_BROKERS))
    operations = AUTHORIZED_OPERATIONS_OMITTED
    if request.include_cluster_authorized_operations:
        # Kafka reports the operations only to a principal that may DESCRIBE the cluster, else none
        operations = 0
        if may(ctx, AclOperation.DESCRIBE, ResourceType.CLUSTER):
            operations = authorized_operations(ctx, ResourceType.CLUSTER, CLUSTER_NAME, _CLUSTER_OPS)
    if endpoint_type != ENDPOINT_BROKERS:
        return build(
            mod.DescribeClusterResponse,
            throttle_time=NO_THROTTLE,
            error_code=ErrorCode.unsupported_endpoint_type,
            error_message="The request was sent to an endpoint of the wrong type.",
            endpoint_type=endpoint_type,
            cluster_id=image.cluster_id,
            controller_id=-1,
            brokers=(),
            cluster_authorized_operations=AUTHORIZED_OPERATIONS_OMITTED,
        )
    # the endpoints of the client's listener; brokers without it are left out, as in Kafka
    brokers = tuple(
        build(
            mod.DescribeClusterBroker,
            broker_id=b.node_id,
            host=ep.host,
            port=ep.port,
            rack=b.rack,
            is_fenced=False,
        )
        for b in sorted(image.brokers.values(), key=lambda b: b.node_id)
        if (ep := b.endpoint(ctx.listener_name)) is not None
    )
    return build(
        mod.DescribeClusterResponse,
        throttle_time=NO_THROTTLE,
        error_code=ErrorCode.none,
        error_message=None,
        endpoint_type=ENDPOINT_BROKERS,
        cluster_id=image.cluster_id,
        controller_id=image.controller_id,
        brokers=brokers,
        cluster_authorized_operations=operations,
    )


SPEC = ApiSpec(API_KEY, MIN_VERSION, MAX_VERSION, handle, name="DescribeCluster")
