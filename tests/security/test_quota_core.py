"""Client quotas without a network: Kafka's sampled rate and throttle time, the precedence of quota
entities and defaults, AlterClientQuotas validation, DescribeClientQuotas filters, the stores' layouts,
and the event-loop timer behind request_percentage."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from strom.protocol.errors import ErrorCode
from strom.security.quotas.entities import (
    AlterEntry,
    QuotaEntity,
    QuotaFilterError,
    alter,
    describe,
    ip_rate,
    resolve,
)
from strom.security.quotas.manager import QuotaManager, QuotaSettings
from strom.security.quotas.rate import Rate
from strom.security.quotas.store import LocalQuotaStore, decode_quotas, encode_quotas
from strom.security.quotas.throttling import OnLoopTimer
from strom.security.quotas.zk_store import entity_path, sanitize

U = QuotaEntity.of


def test_rate_pads_young_windows_and_throttles_back_to_the_bound() -> None:
    rate = Rate(100.0, samples=11, window_ms=1000)
    # a fresh rate counts as if 10 windows had passed: 900 bytes at once is 90/s, within 100/s
    assert rate.record(900, 0) == 0
    assert rate.measure(0) == pytest.approx(90.0)
    # 1100 more: 2000 over a 10 s span is 200/s, twice the bound: silent for another 10 s
    assert rate.record(1100, 0) == 10000
    # windows older than samples x window are forgotten
    assert rate.measure(12_000) == 0.0
    capped = Rate(1.0, samples=2, window_ms=1000)
    assert capped.record(100, 0, max_throttle_ms=1000) == 1000


def test_rate_unrecord_takes_a_value_back() -> None:
    rate = Rate(10.0, samples=3, window_ms=1000)
    assert rate.record(50, 0) > 0
    rate.unrecord(50, 0)
    assert rate.throttle_ms(0) == 0


def test_precedence_of_entities_and_defaults() -> None:
    quotas = {
        U(user=None): {"producer_byte_rate": 1.0},
        U(client_id=None): {"producer_byte_rate": 2.0},
        U(client_id="app"): {"producer_byte_rate": 3.0},
        U(user=None, client_id=None): {"producer_byte_rate": 4.0},
        U(user="alice"): {"producer_byte_rate": 5.0, "consumer_byte_rate": 50.0},
        U(user="alice", client_id=None): {"producer_byte_rate": 6.0},
        U(user="alice", client_id="app"): {"producer_byte_rate": 7.0},
    }
    key = "producer_byte_rate"
    got = resolve(quotas, key, "alice", "app")
    assert got is not None and (got.bound, got.user, got.client_id) == (7.0, "alice", "app")
    got = resolve(quotas, key, "alice", "other")
    assert got is not None and (got.bound, got.user, got.client_id) == (6.0, "alice", "other")
    # the user's own entity is shared by all its clients (client-id tag empty)
    got = resolve(quotas, "consumer_byte_rate", "alice", "x")
    assert got is not None and (got.bound, got.user, got.client_id) == (50.0, "alice", "")
    got = resolve(quotas, key, "bob", "app")
    assert got is not None and (got.bound, got.user, got.client_id) == (4.0, "bob", "app")
    del quotas[U(user=None, client_id=None)]
    got = resolve(quotas, key, "bob", "app")
    assert got is not None and (got.bound, got.user, got.client_id) == (1.0, "bob", "")
    del quotas[U(user=None)]
    got = resolve(quotas, key, "bob", "app")
    assert got is not None and (got.bound, got.user, got.client_id) == (3.0, "", "app")
    got = resolve(quotas, key, "bob", "x")
    assert got is not None and (got.bound, got.user, got.client_id) == (2.0, "", "x")
    assert resolve(quotas, "request_percentage", "bob", "x") is None


def test_alter_validates_as_kafka() -> None:
    entries = [
        AlterEntry((("client-id", "a"),), (("producer_byte_rate", 1024.0),)),
        AlterEntry((("user", None), ("client-id", None)), (("request_percentage", 12.5),)),
        AlterEntry((("user", "b"),), (("producer_byte_rate", 1.5),)),
        AlterEntry((("user", "c"),), (("connection_creation_rate", 5.0),)),
        AlterEntry((("ip", "127.0.0.1"),), (("connection_creation_rate", 5.0),)),
        AlterEntry((("group", "g"),), (("producer_byte_rate", 1.0),)),
        AlterEntry((("user", ""),), (("producer_byte_rate", 1.0),)),
        AlterEntry((), (("producer_byte_rate", 1.0),)),
        AlterEntry((("ip", "1.2.3.4"), ("user", "x")), (("connection_creation_rate", 1.0),)),
        AlterEntry((("client-id", "d"),), (("producer_byte_rate", 1.0), ("producer_byte_rate", 2.0))),
        AlterEntry((("client-id", "a"),), (("consumer_byte_rate", 1.0),)),
    ]
    results, updated = alter({}, entries)
    messages = [m for _parts, m in results]
    assert messages == [
        "Ignoring duplicate entity ClientQuotaEntity(entries={client-id: a})",
        None,
        "producer_byte_rate cannot be a fractional value.",
        "Invalid configuration key connection_creation_rate",
        None,
        "Unhandled client quota entity type: group",
        "Empty user not supported",
        "Invalid empty client quota entity",
        "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId",
        "Ignoring duplicate entity ClientQuotaEntity(entries={client-id: d})",
    ]
    # as in Kafka, the first entry of a duplicated entity still takes effect
    assert updated == {
        U(client_id="a"): {"producer_byte_rate": 1024.0},
        U(user=None, client_id=None): {"request_percentage": 12.5},
        U(ip="127.0.0.1"): {"connection_creation_rate": 5.0},
    }
    results, after = alter(updated, [AlterEntry((("client-id", "a"),), (("producer_byte_rate", None),))])
    assert results == [((("client-id", "a"),), None)] and U(client_id="a") not in after
    assert ip_rate(after, "127.0.0.1") == 5.0 and ip_rate(after, "10.0.0.1") is None


def test_describe_filters_as_kafka() -> None:
    quotas = {
        U(user="alice"): {"producer_byte_rate": 1.0},
        U(user="alice", client_id="app"): {"producer_byte_rate": 2.0},
        U(user=None): {"consumer_byte_rate": 3.0},
        U(client_id="app"): {"request_percentage": 4.0},
    }

    def names(components: list[tuple[str, int, str | None]], strict: bool) -> set[QuotaEntity]:
        return {e for e, _v in describe(quotas, components, strict)}

    assert names([], False) == set(quotas)
    assert names([], True) == set()
    assert names([("user", 0, "alice")], False) == {U(user="alice"), U(user="alice", client_id="app")}
    assert names([("user", 0, "alice")], True) == {U(user="alice")}
    assert names([("user", 1, None)], True) == {U(user=None)}
    assert names([("client-id", 2, None)], False) == {U(client_id="app"), U(user="alice", client_id="app")}
    assert names([("client-id", 2, None), ("user", 2, None)], True) == {U(user="alice", client_id="app")}
    bad = [
        ([("", 0, "x")], ErrorCode.invalid_request, "Invalid empty entity type."),
        ([("user", 0, None)], ErrorCode.invalid_request,
         "Request specified MATCH_TYPE_EXACT, but set match string to null."),
        ([("user", 1, "x")], ErrorCode.invalid_request,
         "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."),
        ([("user", 2, None), ("user", 0, "x")], ErrorCode.invalid_request,
         "Entity type user cannot appear more than once in the filter."),
        ([("group", 2, None)], ErrorCode.unsupported_version, "Unsupported entity type group"),
        ([("ip", 2, None), ("user", 2, None)], ErrorCode.invalid_request,
         "Invalid entity filter component combination. IP filter component should not be used with "
         "user or clientId filter component."),
    ]
    for components, code, message in bad:
        with pytest.raises(QuotaFilterError) as info:
            describe(quotas, components, False)
        assert (info.value.code, info.value.message) == (code, message)


def test_manager_shares_budgets_by_matched_entity() -> None:
    now = [0.0]
    manager = QuotaManager(QuotaSettings(samples=3, window_ms=1000), clock=lambda: now[0])
    manager.load(
        {U(user="alice"): {"producer_byte_rate": 100.0}, U(client_id=None): {"consumer_byte_rate": 10.0}}
    )
    assert manager.record_produce("bob", "x", 10_000) == 0  # no quota names bob
    assert manager.record_produce("alice", "one", 150) == 0  # 150 over the padded 2 s: 75/s
    assert manager.record_produce("alice", "two", 150) == 1000  # the same budget: 150/s, 1 s to pay back
    assert manager.max_bytes_in_window("consumer_byte_rate", "bob", "x") == 20
    assert not manager.enabled("request_percentage")


def test_zookeeper_paths_and_local_file(tmp_path: Path) -> None:
    assert entity_path(U(user="CN=alice,O=x")) == "users/CN%3Dalice%2CO%3Dx"
    assert entity_path(U(user=None, client_id="a b*")) == "users/<default>/clients/a%20b%2A"
    assert entity_path(U(client_id=None)) == "clients/<default>"
    assert entity_path(U(ip="10.0.0.1")) == "ips/10.0.0.1"
    assert sanitize("a.b-c_d") == "a.b-c_d"
    quotas = {
        U(user="alice", client_id=None): {"producer_byte_rate": 1024.0},
        U(client_id=None): {"consumer_byte_rate": 1.0},
        U(client_id="x"): {"consumer_byte_rate": 2.0},
    }
    assert decode_quotas(encode_quotas(quotas)) == quotas

    async def roundtrip() -> None:
        seen: list[object] = []
        store = LocalQuotaStore(tmp_path)
        await store.start(seen.append)
        await store.write(quotas)
        again = LocalQuotaStore(tmp_path)
        await again.start(seen.append)
        assert seen == [{}, quotas, quotas]

    asyncio.run(roundtrip())


def test_on_loop_timer_counts_only_steps_on_the_loop() -> None:
    import time

    async def handler() -> str:
        time.sleep(0.02)  # holds the loop
        await asyncio.sleep(0.2)  # waits: not counted
        time.sleep(0.02)
        return "done"

    async def main() -> tuple[str, float]:
        timer = OnLoopTimer(handler())
        return await timer, timer.elapsed

    result, elapsed = asyncio.run(main())
    assert result == "done" and 0.04 <= elapsed < 0.15
