"""Shared checks of the delegation-token APIs (KIP-48): Kafka's KafkaApis.allowTokenRequests, the
timestamps of the responses, and the broker's token manager.

Token requests are refused (DELEGATION_TOKEN_REQUEST_NOT_ALLOWED) on PLAINTEXT connections, on SSL
connections without a client certificate (the principal is ANONYMOUS) and on connections authenticated
with a token, so a token can never mint or extend tokens.
"""

from __future__ import annotations

import datetime
from typing import Any

from strom.security.delegation_tokens import TokenManager
from strom.security.principal import ANONYMOUS

__all__ = ["allow_token_requests", "manager_of", "ms_of", "timestamp"]


def allow_token_requests(ctx: Any) -> bool:
    if getattr(ctx, "token_authenticated", False):
        return False
    if getattr(ctx, "forwarded", False):
        return True  # the forwarding broker refused PLAINTEXT and 1-way SSL clients itself
    protocol = ctx.security_protocol
    if protocol == "PLAINTEXT":
        return False
    return not (protocol == "SSL" and ctx.principal == ANONYMOUS)


def manager_of(ctx: Any) -> TokenManager | None:
    return getattr(ctx.broker, "delegation_tokens", None)


def timestamp(ms: int) -> datetime.datetime:
    """A response's timestamp field (kio's TZAware); -1 on errors, as Kafka answers."""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)


def ms_of(period: Any) -> int:
    """A request's period (kio's i64Timedelta, or plain ms) in ms."""
    if isinstance(period, datetime.timedelta):
        return int(period / datetime.timedelta(milliseconds=1))
    return int(period)
