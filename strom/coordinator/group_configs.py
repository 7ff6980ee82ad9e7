"""The group configs the coordinators honour (KIP-848, KIP-932, KIP-1071), Kafka's GroupConfigManager: a
group id's GROUP config resource from the newest metadata image, typed and clamped into the broker's
current bounds (strom.group_config.evaluate), so a change takes effect at the group's next heartbeat,
acquisition or share-partition load without a restart. Cached per group until the image changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from strom.group_config import evaluate

if TYPE_CHECKING:
    from strom.cluster.metadata import MetadataImage
    from strom.config import BrokerConfig

__all__ = ["GroupConfigLookup", "GroupConfigView"]

GroupConfigLookup = Callable[[str], Mapping[str, Any]]
"""group id -> {group config name: typed value} of the keys the group sets."""


class GroupConfigView:
    """`view(group_id) -> {group config name: typed value}` for the keys the group sets."""

    def __init__(self, image: Callable[[], MetadataImage], config: BrokerConfig) -> None:
        self._image = image
        self._config = config
        self._seen: object = None
        self._cache: dict[str, Mapping[str, Any]] = {}

    def __call__(self, group_id: str) -> Mapping[str, Any]:
        image = self._image()
        if image is not self._seen:
            self._seen, self._cache = image, {}
        values = self._cache.get(group_id)
        if values is None:
            overrides = image.group_configs.get(group_id)
            values = evaluate(overrides, self._config, group_id) if overrides else {}
            self._cache[group_id] = values
        return values
