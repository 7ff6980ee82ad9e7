"""ListTransactions (api key 66), versions 0-1: the transactional ids this broker coordinates (KIP-664).

Filters: state names (unknown names are echoed in unknown_state_filters), producer ids, and from v1 a
minimum running time in ms (KIP-994; -1 none). Ids whose partitions are still loading are left out.

Errors: NONE, COORDINATOR_NOT_AVAILABLE.
"""

from __future__ import annotations

from typing import Any

from strom.apis._build import build, entry_type, no_throttle
from strom.apis._txn_util import coordinator_of
from strom.coordinator.txn.schemas import TxnState
from strom.protocol.errors import ErrorCode
from strom.protocol.registry import ApiSpec, response_type

API_KEY = 66
_STATE_NAMES = {s.kafka_name for s in TxnState}


async def handle(ctx: Any, request: Any) -> Any:
    cls = response_type(API_KEY, ctx.api_version)
    state_cls = entry_type(cls, "transaction_states")
    coordinator = coordinator_of(ctx)
    wanted = set(request.state_filters)
    unknown = tuple(s for s in request.state_filters if s not in _STATE_NAMES)
    if coordinator is None:
        return build(
            cls,
            throttle_time=no_throttle(),
            error_code=ErrorCode.coordinator_not_available,
            unknown_state_filters=unknown,
            transaction_states=(),
        )
    listing = coordinator.core.listing(
        wanted or None,
        {int(p) for p in request.producer_id_filters} or None,
        int(getattr(request, "duration_filter", -1)),
        coordinator.now_ms(),
    )
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
        ),
    )


SPEC = ApiSpec(api_key=API_KEY, min_version=0, max_version=1, handler=handle, name="ListTransactions")
