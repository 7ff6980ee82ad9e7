"""Shared pieces of the transaction API handlers: the coordinator lookup and KIP-588's error mapping."""

from __future__ import annotations

from typing import Any

from strom.protocol.errors import ErrorCode


def coordinator_of(ctx: Any) -> Any:
    """The broker's transaction coordinator, or None (answered COORDINATOR_NOT_AVAILABLE)."""
    return getattr(ctx.broker, "txn_coordinator", None)


def fenced_for_version(error: ErrorCode, version: int, fenced_from: int) -> ErrorCode:
    """PRODUCER_FENCED exists from `fenced_from` on (KIP-588); older versions get INVALID_PRODUCER_EPOCH."""
    if error == ErrorCode.producer_fenced and version < fenced_from:
        return ErrorCode.invalid_producer_epoch
    return error
