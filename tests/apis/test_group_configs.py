"""GROUP config resources (type 32) on a single-node broker: DescribeConfigs, IncrementalAlterConfigs,
AlterConfigs and ListConfigResources answer as Kafka 4.4 does (values, sources, synonyms, types, errors),
the configs survive a restart (cluster-metadata.json), and a principal without DESCRIBE_CONFIGS or
ALTER_CONFIGS on the group is refused with GROUP_AUTHORIZATION_FAILED."""

from __future__ import annotations

import importlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from strom.apis import describe_configs, incremental_alter_configs
from strom.client.connection import BrokerConnection
from strom.config import BrokerConfig, ConfigSource
from strom.protocol.errors import ErrorCode
from strom.security.authorizer import ResourceType
from strom.testing import EmbeddedBroker

GROUP = 32
SET, DELETE, APPEND = 0, 1, 2


def _mod(api: str, version: int) -> Any:
    return importlib.import_module(f"kio.schema.{api}.v{version}.request")


def describe_request(name: str, keys: list[str] | None = None) -> Any:
    m = _mod("describe_configs", 4)
    resource = m.DescribeConfigsResource(resource_type=GROUP, resource_name=name, configuration_keys=keys)
    return m.DescribeConfigsRequest(resources=(resource,), include_synonyms=True, include_documentation=True)


def ialter_request(name: str, ops: list[tuple[str, int, str | None]], validate_only: bool = False) -> Any:
    m = _mod("incremental_alter_configs", 1)
    configs = tuple(m.AlterableConfig(name=k, config_operation=op, value=v) for k, op, v in ops)
    resource = m.AlterConfigsResource(resource_type=GROUP, resource_name=name, configs=configs)
    return m.IncrementalAlterConfigsRequest(resources=(resource,), validate_only=validate_only)


def alter_request(name: str, configs: dict[str, str]) -> Any:
    m = _mod("alter_configs", 2)
    entries = tuple(m.AlterableConfig(name=k, value=v) for k, v in configs.items())
    resource = m.AlterConfigsResource(resource_type=GROUP, resource_name=name, configs=entries)
    return m.AlterConfigsRequest(resources=(resource,), validate_only=False)


async def _connect(broker: EmbeddedBroker) -> BrokerConnection:
    host, port = broker.bootstrap_servers.split(":")
    return await BrokerConnection.open(host, int(port))


async def _describe(conn: BrokerConnection, name: str, keys: list[str] | None = None) -> Any:
    return (await conn.request(describe_request(name, keys))).results[0]


async def _ialter(conn: BrokerConnection, name: str, ops: list[Any], validate_only: bool = False) -> Any:
    response = await conn.request(ialter_request(name, ops, validate_only))
    result = response.responses[0]
    return int(result.error_code), result.error_message


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="strom-group-configs-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_describe_of_a_group_without_configs_lists_the_defaults() -> None:
    async with EmbeddedBroker({"group.consumer.session.timeout.ms": "50000"}) as broker:
        conn = await _connect(broker)
        try:
            result = await _describe(conn, "no-such-group")
        finally:
            await conn.close()
    assert result.error_code == ErrorCode.none
    entries = {c.name: c for c in result.configs}
    assert len(entries) == 21  # Kafka 4.4's group configs less its internal ones
    assert "consumer.assignor.offload.enable" not in entries
    session = entries["consumer.session.timeout.ms"]
    assert (session.value, session.config_source, session.config_type) == (
        "50000",
        ConfigSource.STATIC_BROKER_CONFIG,
        3,
    )
    assert [(s.name, s.value, s.source) for s in session.synonyms] == [
        ("group.consumer.session.timeout.ms", "50000", ConfigSource.STATIC_BROKER_CONFIG),
        ("group.consumer.session.timeout.ms", "45000", ConfigSource.DEFAULT_CONFIG),
    ]
    reset = entries["share.auto.offset.reset"]
    assert (reset.value, reset.config_source, reset.config_type) == ("latest", ConfigSource.DEFAULT_CONFIG, 2)
    assert [(s.name, s.value, s.source) for s in reset.synonyms] == [
        ("share.auto.offset.reset", "latest", ConfigSource.DEFAULT_CONFIG)
    ]
    assert entries["streams.assignor.name"].value == "sticky"
    assert entries["streams.rack.aware.assignment.tags"].config_type == 7
    assert not any(e.read_only or e.is_sensitive for e in entries.values())
    assert all(e.documentation for e in entries.values())


async def test_alter_describe_list_and_errors() -> None:
    async with EmbeddedBroker() as broker:
        conn = await _connect(broker)
        try:
            ops = [
                ("consumer.session.timeout.ms", SET, "50000"),
                ("share.auto.offset.reset", SET, "earliest"),
            ]
            assert await _ialter(conn, "g1", ops) == (ErrorCode.none, None)
            keys = [
                "consumer.session.timeout.ms",
                "share.auto.offset.reset",
                "consumer.heartbeat.interval.ms",
            ]
            described = await _describe(conn, "g1", keys)
            out_of_range = await _ialter(conn, "g1", [("consumer.session.timeout.ms", SET, "1000")])
            unknown = await _ialter(conn, "g1", [("nope", SET, "1")])
            appended = await _ialter(conn, "g1", [("streams.rack.aware.assignment.tags", APPEND, "a")])
            no_name = await _ialter(conn, "", [("consumer.session.timeout.ms", SET, "50000")])
            no_name_described = await _describe(conn, "")
            checked_only = await _ialter(conn, "g2", [("share.isolation.level", SET, "read_committed")], True)
            internal = await _ialter(conn, "g3", [("consumer.assignor.offload.enable", SET, "false")])
            internal_described = await _describe(conn, "g3", ["consumer.assignor.offload.enable"])
            replaced = (
                await conn.request(alter_request("g3", {"streams.num.standby.replicas": "1"}))
            ).responses
            m = _mod("list_config_resources", 1)
            listed = await conn.request(m.ListConfigResourcesRequest(resource_types=(GROUP,)))
            deleted = await _ialter(
                conn, "g1", [("share.auto.offset.reset", DELETE, None), ("nope", DELETE, None)]
            )
            after_delete = await _describe(conn, "g1", ["share.auto.offset.reset"])
        finally:
            await conn.close()
        image = broker.broker.metadata.image

    entries = {c.name: c for c in described.configs}
    assert sorted(entries) == sorted(keys)
    session = entries["consumer.session.timeout.ms"]
    assert (session.value, session.config_source) == ("50000", ConfigSource.GROUP_CONFIG)
    assert [(s.name, s.value, s.source) for s in session.synonyms] == [
        ("consumer.session.timeout.ms", "50000", ConfigSource.GROUP_CONFIG),
        ("group.consumer.session.timeout.ms", "45000", ConfigSource.DEFAULT_CONFIG),
    ]
    assert entries["consumer.heartbeat.interval.ms"].config_source == ConfigSource.DEFAULT_CONFIG
    assert out_of_range == (
        ErrorCode.invalid_config,
        "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive.",
    )
    assert unknown == (ErrorCode.invalid_config, "Unknown group config name: nope")
    assert appended == (
        ErrorCode.invalid_config,
        "Can't APPEND to key streams.rack.aware.assignment.tags because its type is not LIST.",
    )
    assert no_name == (ErrorCode.invalid_request, "Default group resources are not allowed.")
    assert (no_name_described.error_code, no_name_described.error_message) == (
        ErrorCode.invalid_request,
        "Group name must not be empty",
    )
    assert checked_only == (ErrorCode.none, None)
    assert internal == (ErrorCode.none, None)
    assert [(c.name, c.value) for c in internal_described.configs] == [
        ("consumer.assignor.offload.enable", "false")
    ]
    assert [r.error_code for r in replaced] == [ErrorCode.none]
    assert [(c.resource_name, c.resource_type) for c in listed.config_resources] == [
        ("g1", GROUP),
        ("g3", GROUP),
    ]
    assert deleted == (ErrorCode.none, None)
    assert after_delete.configs[0].config_source == ConfigSource.DEFAULT_CONFIG
    # AlterConfigs replaced g3's whole set; the validate-only change of g2 was not kept
    assert image.group_configs == {
        "g1": {"consumer.session.timeout.ms": "50000"},
        "g3": {"streams.num.standby.replicas": "1"},
    }


async def test_group_configs_survive_a_restart(data_dir: Path) -> None:
    ops = [("share.record.lock.duration.ms", SET, "20000"), ("streams.num.standby.replicas", SET, "1")]
    async with EmbeddedBroker(data_dir=data_dir) as broker:
        conn = await _connect(broker)
        try:
            assert await _ialter(conn, "kept", ops) == (ErrorCode.none, None)
        finally:
            await conn.close()
    stored = json.loads((data_dir / "cluster-metadata.json").read_text())
    assert stored["group_configs"] == {
        "kept": {"share.record.lock.duration.ms": "20000", "streams.num.standby.replicas": "1"}
    }
    async with EmbeddedBroker(data_dir=data_dir) as broker:
        conn = await _connect(broker)
        try:
            result = await _describe(
                conn, "kept", ["share.record.lock.duration.ms", "streams.num.standby.replicas"]
            )
        finally:
            await conn.close()
    assert [(c.name, c.value, c.config_source) for c in result.configs] == [
        ("share.record.lock.duration.ms", "20000", ConfigSource.GROUP_CONFIG),
        ("streams.num.standby.replicas", "1", ConfigSource.GROUP_CONFIG),
    ]


class _Backend:
    def __init__(self) -> None:
        self.image = SimpleNamespace(group_configs={"g": {"consumer.session.timeout.ms": "50000"}})
        self.calls: list[str] = []

    async def alter_group_configs(self, group_id: str, configs: Any, validate_only: bool = False) -> None:
        self.calls.append(group_id)


def _ctx(api_key: int, version: int, backend: _Backend, denied: set[str]) -> Any:
    def authorize(operation: Any, resource_type: Any, name: str, *_rest: Any) -> bool:
        return not (resource_type == ResourceType.GROUP and name in denied)

    return SimpleNamespace(
        api_key=api_key,
        api_version=version,
        broker=SimpleNamespace(metadata=backend, config=BrokerConfig({})),
        authorize=authorize,
    )


async def test_group_resources_need_describe_and_alter_configs_on_the_group() -> None:
    backend = _Backend()
    described = await describe_configs.handle(_ctx(32, 4, backend, {"g"}), describe_request("g"))
    assert described.results[0].error_code == ErrorCode.group_authorization_failed
    assert described.results[0].configs == ()
    request = ialter_request("g", [("consumer.session.timeout.ms", SET, "55000")])
    refused = await incremental_alter_configs.handle(_ctx(44, 1, backend, {"g"}), request)
    assert refused.responses[0].error_code == ErrorCode.group_authorization_failed
    assert backend.calls == []
    allowed = await incremental_alter_configs.handle(_ctx(44, 1, backend, {"other"}), request)
    assert allowed.responses[0].error_code == ErrorCode.none
    assert backend.calls == ["g"]
