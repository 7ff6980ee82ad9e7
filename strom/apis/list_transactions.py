"""ListTransactions (api key 66), versions 0-2: the transactional ids this broker coordinates (KIP-664).

Filters: state names (unknown names are echoed in unknown_state_filters), producer ids, from v1 a
minimum running time in ms (KIP-994; -1 none), and from v2 a regular expression the whole transactional
id must match (KIP-1152; null or empty: no filter). Ids whose partitions are still loading are left out.
The expression is compiled with Python's `re`, which agrees with Java's regex on the usual syntax.

Errors: NONE, COORDINATOR_NOT_AVAILABLE, INVALID_REGULAR_EXPRESSION (a pattern that does not compile). Only
the transactional ids the principal may DESCRIBE are listed.
"""

from __future__ import annotations

import re
from typing import Any

from strom.apis._authz import allowed
from strom.apis._build import build, entry_type, no_throttle
from strom.apis._txn_util import coordinator_of
from strom.coordinator.txn.schemas import TxnState
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type
from strom.security.authorizer import AclOperation, ResourceType

API_KEY = 66
_STATE_NAMES = {s.kafka_name for s in TxnState}


async def handle(ctx: Any, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    state_cls = entry_type(cls, "transaction_states")
    coordinator = coordinator_of(ctx)
    wanted = set(request.state_filters)
    unknown = tuple(s for s in request.state_filters if s not in _STATE_NAMES)
    if coordinator is None:
        return _error(cls, ErrorCode.coordinator_not_available, unknown)
    pattern = getattr(request, "transactional_id_pattern", None)
    try:
        matcher = re.compile(pattern).fullmatch if pattern else None
    except re.error:
        return _error(cls, ErrorCode.invalid_regular_expression, unknown)
    listing = coordinator.core.listing(
        wanted or None,
        {int(p) for p in request.producer_id_filters} or None,
        int(getattr(request, "duration_filter", -1)),
        coordinator.now_ms(),
    )
    # only the transactional ids the principal may DESCRIBE are listed (Kafka)
    ids = [m.transactional_id for m in listing]
    visible = allowed(ctx, AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, ids)
    listing = [m for m in listing if m.transactional_id in visible]
    return build(
        cls,
        throttle_time=no_throttle(),
        error_code=ErrorCode.none,
        unknown_state_filters=unknown,
        transaction_states=tuple(
            build(
                state_cls,
                transactional_id=m.transactional_id,
                producer_id=m.producer_id,
                transaction_state=m.state.kafka_name,
            )
            for m in sorted(listing, key=lambda m: m.transactional_id)
            if matcher is None or matcher(m.transactional_id)
        ),
    )


def _error(cls: type, error: ErrorCode, unknown: tuple[str, ...]) -> Any:
    return build(
        cls,
        throttle_time=no_throttle(),
        error_code=error,
        unknown_state_filters=unknown,
        transaction_states=(),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=2, handler=handle, name="ListTransactions")
