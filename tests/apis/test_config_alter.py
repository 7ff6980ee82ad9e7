"""The answer loop AlterConfigs and IncrementalAlterConfigs share: duplicates, order, per-resource errors."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from strom.apis import alter_configs, incremental_alter_configs
from strom.apis._admin_util import kio_module
from strom.protocol.errors import ErrorCode, InvalidConfigError


class RecordingBackend:
    """Topic overrides by name; `alter_topic_configs` refuses the key "bad"."""

    def __init__(self) -> None:
        self.configs: dict[str, dict[str, str]] = {"a": {}, "b": {"retention.ms": "1"}}
        self.calls: list[tuple[str, dict[str, str | None]]] = []

    @property
    def image(self) -> Any:
        return SimpleNamespace(topic=lambda name: SimpleNamespace(configs=self.configs[name]))

    async def alter_topic_configs(
        self, name: str, configs: Mapping[str, str | None], validate_only: bool = False
    ) -> None:
        self.calls.append((name, dict(configs)))
        if "bad" in configs:
            raise InvalidConfigError("bad key")
        self.configs[name] = {k: str(v) for k, v in configs.items()}


def _ctx(api_key: int, version: int, backend: RecordingBackend) -> Any:
    return SimpleNamespace(
        api_key=api_key,
        api_version=version,
        broker=SimpleNamespace(metadata=backend),
        authorize=lambda *_args: True,
    )


async def test_alter_configs_duplicates_answered_once_and_not_applied() -> None:
    backend = RecordingBackend()
    mod = kio_module("alter_configs", 2, "request")

    def resource(name: str, configs: dict[str, str]) -> Any:
        entries = tuple(mod.AlterableConfig(name=k, value=v) for k, v in configs.items())
        return mod.AlterConfigsResource(resource_type=2, resource_name=name, configs=entries)

    request = mod.AlterConfigsRequest(
        resources=(
            resource("b", {"bad": "1"}),
            resource("a", {"segment.bytes": "1"}),
            resource("b", {"retention.ms": "9"}),
            resource("a", {"segment.bytes": "2"}),
        ),
        validate_only=False,
    )
    response = await alter_configs.handle(_ctx(33, 2, backend), request)
    answers = [(r.resource_name, r.error_code) for r in response.responses]
    assert answers == [("b", ErrorCode.invalid_request), ("a", ErrorCode.invalid_request)]
    assert backend.calls == []


async def test_incremental_alter_configs_errors_stay_per_resource() -> None:
    backend = RecordingBackend()
    mod = kio_module("incremental_alter_configs", 1, "request")

    def resource(name: str, key: str, value: str) -> Any:
        op = mod.AlterableConfig(name=key, config_operation=0, value=value)
        return mod.AlterConfigsResource(resource_type=2, resource_name=name, configs=(op,))

    request = mod.IncrementalAlterConfigsRequest(
        resources=(resource("a", "bad", "1"), resource("b", "segment.bytes", "7")), validate_only=False
    )
    response = await incremental_alter_configs.handle(_ctx(44, 1, backend), request)
    answers = [(r.resource_name, r.error_code, r.error_message) for r in response.responses]
    assert answers == [("a", ErrorCode.invalid_config, "bad key"), ("b", ErrorCode.none, None)]
    # SET adds to the current overrides of b
    assert backend.configs["b"] == {"retention.ms": "1", "segment.bytes": "7"}
