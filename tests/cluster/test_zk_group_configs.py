"""Group configs in ZooKeeper mode: /config/groups/<group> ({"version":1,"config":{...}}, the group id
sanitized as Kafka's Sanitizer does) written with a /config/changes notification, seen by every broker,
validated against the writing broker's bounds, and read back by a broker that starts later."""

from __future__ import annotations

import json

import pytest

from strom.protocol.errors import InvalidConfigError


async def test_group_configs_in_zookeeper(trio, zk, converge, make_backend) -> None:
    await trio[1].alter_group_configs("orders app*", {"consumer.session.timeout.ms": "50000"})
    wanted = {"orders app*": {"consumer.session.timeout.ms": "50000"}}
    await converge(trio, lambda im: im.group_configs == wanted)
    data, _stat = zk.get("/config/groups/orders%20app%2A")
    assert json.loads(data) == {"version": 1, "config": {"consumer.session.timeout.ms": "50000"}}
    docs = [json.loads(zk.get(f"/config/changes/{c}")[0]) for c in zk.get_children("/config/changes")]
    assert {"version": 2, "entity_path": "groups/orders%20app%2A"} in docs

    with pytest.raises(InvalidConfigError, match="must be in the range 45000 to 60000 inclusive"):
        await trio[0].alter_group_configs("g", {"consumer.session.timeout.ms": "1000"})
    await trio[0].alter_group_configs("g", {"share.auto.offset.reset": "earliest"}, validate_only=True)

    await trio[2].alter_group_configs("g", {"share.auto.offset.reset": "earliest"})
    await trio[0].alter_group_configs("orders app*", {})
    await converge(trio, lambda im: im.group_configs == {"g": {"share.auto.offset.reset": "earliest"}})

    late = make_backend(4)
    await late.start()
    assert await late.wait_for(
        lambda im: im.group_configs == {"g": {"share.auto.offset.reset": "earliest"}}, 10
    )
