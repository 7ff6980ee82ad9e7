"""The token bucket and the strict/permissive request quotas of controller_mutation_rate (KIP-599),
with a fake clock: the numbers Kafka's TokenBucket and ControllerMutationQuota give."""

from __future__ import annotations

import pytest

from strom.protocol.errors import ErrorCode
from strom.security.quotas.controller_mutation import MutationQuota, ThrottlingQuotaExceeded, TokenBucket
from strom.security.quotas.entities import QuotaEntity
from strom.security.quotas.manager import QuotaManager, QuotaSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_starts_full_refills_at_the_quota_and_caps_at_the_burst() -> None:
    bucket = TokenBucket(bound=2.0, burst_seconds=5.0)  # burst: 10 tokens
    assert bucket.tokens(1_000_000) == 10.0
    bucket.record(13, 1_000_000)
    assert bucket.tokens(1_000_000) == -3.0
    assert bucket.throttle_ms(1_000_000) == 1500  # 3 tokens at 2 a second
    assert bucket.throttle_ms(1_001_500) == 0
    assert bucket.tokens(1_100_000) == 10.0


def test_strict_quota_refuses_only_once_exhausted() -> None:
    clock = Clock()
    bucket = TokenBucket(bound=1.0, burst_seconds=2.0)
    strict = MutationQuota(bucket, strict=True, clock=clock)
    strict.record(5)  # a request is never refused for its own size
    assert strict.throttle_ms == 0
    with pytest.raises(ThrottlingQuotaExceeded) as refused:
        strict.record(1)
    assert refused.value.code == ErrorCode.throttling_quota_exceeded and refused.value.throttle_ms == 3000
    clock.now += 1.0
    assert strict.throttle_ms == 2000  # what is left of it when the response goes out
    clock.now += 2.0
    MutationQuota(bucket, strict=True, clock=clock).record(1)


def test_permissive_quota_takes_everything_and_throttles() -> None:
    clock = Clock()
    permissive = MutationQuota(TokenBucket(bound=1.0, burst_seconds=2.0), strict=False, clock=clock)
    permissive.record(2)
    assert permissive.throttle_ms == 0
    permissive.record(2)
    assert permissive.throttle_ms == 2000


def test_manager_gives_each_client_its_own_bucket_under_a_default_quota() -> None:
    clock = Clock()
    manager = QuotaManager(QuotaSettings(controller_samples=2, controller_window_ms=1000), clock=clock)
    assert manager.controller_mutation_quota("alice", "a", strict=True)._bucket is None  # no quota: unbounded
    manager.load({QuotaEntity.of(client_id=None): {"controller_mutation_rate": 1.0}})
    manager.controller_mutation_quota("alice", "a", strict=True).record(3)
    with pytest.raises(ThrottlingQuotaExceeded):
        manager.controller_mutation_quota("alice", "a", strict=True).record(1)
    manager.controller_mutation_quota("alice", "b", strict=True).record(1)  # another client id
