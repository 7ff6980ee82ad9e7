"""Group configs in KRaft mode: a broker forwards IncrementalAlterConfigs on a GROUP resource to the
controller, which checks the set against its bounds and writes ConfigRecords of resource type 32 (as Kafka
4.4 writes them); the broker describes them from its replayed image; a restarted node replays them from
its metadata log, and a snapshot carries them."""

from __future__ import annotations

import asyncio
import importlib
import shutil
from typing import Any

from strom.client.connection import BrokerConnection
from strom.config import ConfigSource
from strom.metadata import records as r
from strom.metadata.image import MetadataState
from strom.metadata.image_records import image_records
from strom.protocol.errors import ErrorCode
from strom.testing.kraft_node import EmbeddedKRaftNode

GROUP = 32


class RestartableNode(EmbeddedKRaftNode):
    """An embedded combined node whose directory outlives `stop()` until `remove()`."""

    async def stop(self) -> None:
        if self.broker is not None:
            await self.broker.stop()
        if self.controller is not None:
            await self.controller.stop()
        self.broker = self.controller = None

    def remove(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _request(api: str, version: int) -> Any:
    return importlib.import_module(f"kio.schema.{api}.v{version}.request")


async def _ialter(node: EmbeddedKRaftNode, group: str, configs: dict[str, str]) -> tuple[int, str | None]:
    m = _request("incremental_alter_configs", 1)
    ops = tuple(m.AlterableConfig(name=k, config_operation=0, value=v) for k, v in configs.items())
    request = m.IncrementalAlterConfigsRequest(
        resources=(m.AlterConfigsResource(resource_type=GROUP, resource_name=group, configs=ops),),
        validate_only=False,
    )
    host, port = node.bootstrap_servers.split(":")
    conn = await BrokerConnection.open(host, int(port))
    try:
        result = (await conn.request(request, timeout=20)).responses[0]
    finally:
        await conn.close()
    return int(result.error_code), result.error_message


async def _describe(node: EmbeddedKRaftNode, group: str, keys: list[str]) -> list[tuple[str, str, int]]:
    m = _request("describe_configs", 4)
    resource = m.DescribeConfigsResource(resource_type=GROUP, resource_name=group, configuration_keys=keys)
    host, port = node.bootstrap_servers.split(":")
    conn = await BrokerConnection.open(host, int(port))
    try:
        response = await conn.request(m.DescribeConfigsRequest(resources=(resource,), include_synonyms=False))
    finally:
        await conn.close()
    return [(c.name, c.value, int(c.config_source)) for c in response.results[0].configs]


async def _described_soon(
    node: EmbeddedKRaftNode, group: str, keys: list[str], wanted: list[tuple[str, str, int]]
) -> list[tuple[str, str, int]]:
    """The description once it is `wanted` (the broker replays the controller's records a little after
    the controller answered), or the last one after 15 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        described = sorted(await _describe(node, group, keys))
        if described == wanted or loop.time() > deadline:
            return described
        await asyncio.sleep(0.1)


def _group_records(node: EmbeddedKRaftNode) -> list[r.ConfigRecord]:
    assert node.controller is not None
    log = node.controller.raft.core.log
    return [
        m.message
        for batch in log.iter_batches(0)
        for _offset, m in batch.records
        if isinstance(m.message, r.ConfigRecord) and m.message.resource_type == GROUP
    ]


async def test_group_configs_through_the_controller_and_across_a_restart() -> None:
    node = RestartableNode()
    keys = ["consumer.session.timeout.ms", "share.auto.offset.reset"]
    wanted = [
        ("consumer.session.timeout.ms", "50000", ConfigSource.GROUP_CONFIG),
        ("share.auto.offset.reset", "earliest", ConfigSource.GROUP_CONFIG),
    ]
    try:
        async with node:
            configs = {"consumer.session.timeout.ms": "50000", "share.auto.offset.reset": "earliest"}
            assert await _ialter(node, "kraft-group", configs) == (ErrorCode.none, None)
            assert await _ialter(node, "kraft-group", {"consumer.session.timeout.ms": "1000"}) == (
                ErrorCode.invalid_config,
                "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive.",
            )
            assert await _described_soon(node, "kraft-group", keys, wanted) == wanted
            written = _group_records(node)
            assert sorted((m.resource_name, m.name, m.value) for m in written) == [
                ("kraft-group", "consumer.session.timeout.ms", "50000"),
                ("kraft-group", "share.auto.offset.reset", "earliest"),
            ]
            assert node.controller is not None
            state = node.controller.controller.state
            replayed = MetadataState()
            replayed.load_snapshot(image_records(state), state.last_offset)
            assert replayed.image("c").group_configs == {"kraft-group": configs}
        async with node:
            assert await _described_soon(node, "kraft-group", keys, wanted) == wanted
    finally:
        node.remove()
