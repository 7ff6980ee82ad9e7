"""metadata.version and the other finalized features a cluster starts with (KIP-584, KIP-778, KIP-1022).

`kafka-storage format` picks a release (`--release-version`, default the latest production
metadata.version), gives every production feature its default level for that release unless `--feature
NAME=LEVEL` says otherwise, checks each level exists and that its dependencies hold, and turns the result
into the bootstrap records: a FeatureLevelRecord for metadata.version first, then one per other feature
whose level is above 0, by name, and none for kraft.version (it lives in the KRaftVersion control record).
The tables come from Kafka's own classes (`strom.metadata.release_versions`, generated).
"""

from __future__ import annotations

from collections.abc import Mapping

from strom.metadata.records import FeatureLevelRecord
from strom.metadata.release_versions import (
    FEATURES,
    LATEST_PRODUCTION,
    METADATA_VERSIONS,
    FeatureInfo,
    MetadataVersionInfo,
)
from strom.metadata.serde import ApiMessageAndVersion

__all__ = [
    "KRAFT_VERSION",
    "METADATA_VERSION",
    "FeatureError",
    "bootstrap_records",
    "effective_feature_levels",
    "feature",
    "finalized_features",
    "metadata_version",
    "metadata_version_from_level",
    "supported_features",
]

METADATA_VERSION = "metadata.version"
KRAFT_VERSION = "kraft.version"


class FeatureError(ValueError):
    """A release version or feature level that Kafka would refuse; the message is Kafka's."""


def _available(unstable: bool) -> list[MetadataVersionInfo]:
    return [mv for mv in METADATA_VERSIONS if unstable or mv.production]


def metadata_version(text: str, *, unstable: bool = False) -> MetadataVersionInfo:
    """A release version as `--release-version` takes it: "4.4-IV2", or "4.4" for that release's last
    metadata.version."""
    wanted = text.strip()
    available = _available(unstable)
    for mv in available:
        if mv.version == wanted:
            return mv
    same_release = [mv for mv in available if mv.version.split("-", 1)[0] == wanted]
    if same_release:
        return same_release[-1]
    names = ", ".join(mv.version for mv in available)
    raise FeatureError(f"Unknown metadata.version '{text}'. Supported metadata.version are: {names}")


def metadata_version_from_level(level: int) -> MetadataVersionInfo:
    for mv in METADATA_VERSIONS:
        if mv.feature_level == level:
            return mv
    raise FeatureError(f"No MetadataVersion with feature level {level}")


def latest_production() -> MetadataVersionInfo:
    return metadata_version(LATEST_PRODUCTION)


def feature(name: str) -> FeatureInfo | None:
    return next((f for f in FEATURES if f.name == name), None)


def _check_level(info: FeatureInfo, level: int, levels: Mapping[str, int], unstable: bool) -> None:
    known = next((fl for fl in info.levels if fl.level == level), None)
    if known is None or (level > info.latest_production and not unstable):
        raise FeatureError(f"No feature:{info.name} with feature level {level}")
    for dependency, needed in known.dependencies.items():
        if levels.get(dependency, 0) < needed:
            raise FeatureError(
                f"{info.name} could not be set to {level} because it depends on {dependency} level {needed}"
            )


def effective_feature_levels(
    release: MetadataVersionInfo,
    requested: Mapping[str, int],
    *,
    dynamic_quorum: bool,
    unstable: bool = False,
) -> dict[str, int]:
    """Every production feature's starting level, metadata.version and kraft.version included.

    kraft.version defaults to 1 when the quorum is dynamic (KIP-853: controller.quorum.voters empty and
    one of --standalone, --initial-controllers, --no-initial-controllers given) and to 0 otherwise, and
    may not be set against that.
    """
    names = sorted(f.name for f in FEATURES)
    levels: dict[str, int] = {}
    for name, level in requested.items():
        if name != METADATA_VERSION and feature(name) is None:
            raise FeatureError(f"Unsupported feature: {name}. Supported features are: {', '.join(names)}")
        levels[name] = level
    levels[METADATA_VERSION] = release.feature_level
    for info in FEATURES:
        if info.name == KRAFT_VERSION:
            levels[KRAFT_VERSION] = _kraft_version(levels.get(KRAFT_VERSION), dynamic_quorum)
        elif info.name not in levels:
            levels[info.name] = info.default_levels.get(release.version, 0)
    for name, level in sorted(levels.items()):
        info = feature(name)
        if info is not None:
            _check_level(info, level, levels, unstable)
    return dict(sorted(levels.items()))


def _kraft_version(configured: int | None, dynamic_quorum: bool) -> int:
    if configured is None:
        return 1 if dynamic_quorum else 0
    if configured == 0 and dynamic_quorum:
        raise FeatureError(
            "Cannot set kraft.version to 0 if controller.quorum.voters is empty and one of the flags "
            "--standalone, --initial-controllers, or --no-initial-controllers is used. For dynamic "
            "controllers support, try removing the --feature flag for kraft.version."
        )
    if configured != 0 and not dynamic_quorum:
        raise FeatureError(
            f"Cannot set kraft.version to {configured} unless controller.quorum.voters is empty and one of "
            "the flags --standalone, --initial-controllers, or --no-initial-controllers is used. For dynamic "
            "controllers support, try using one of --standalone, --initial-controllers, or "
            "--no-initial-controllers and removing controller.quorum.voters."
        )
    return configured


def bootstrap_records(release: MetadataVersionInfo, levels: Mapping[str, int]) -> list[ApiMessageAndVersion]:
    """Kafka's BootstrapMetadata.fromVersions: metadata.version first, then the other features above
    level 0 by name; kraft.version has no FeatureLevelRecord."""
    records = [
        ApiMessageAndVersion(
            FeatureLevelRecord(name=METADATA_VERSION, feature_level=release.feature_level), 0
        )
    ]
    for name in sorted(levels):
        if name in (METADATA_VERSION, KRAFT_VERSION) or levels[name] <= 0:
            continue
        records.append(ApiMessageAndVersion(FeatureLevelRecord(name=name, feature_level=levels[name]), 0))
    return records


def supported_features() -> dict[str, tuple[int, int]]:
    """The feature ranges a KRaft node of this release supports (what it registers and ApiVersions lists):
    metadata.version from 3.3-IV3 to the latest production level, every other feature from 0 to its
    latest production level."""
    ranges = {
        METADATA_VERSION: (metadata_version("3.3-IV3").feature_level, latest_production().feature_level)
    }
    for info in FEATURES:
        ranges[info.name] = (0, info.latest_production)
    return ranges


def finalized_features(levels: Mapping[str, int], kraft_version: int) -> dict[str, int]:
    """The finalized levels a KRaft node reports: the FeatureLevelRecords replayed (`levels`) and
    kraft.version from the quorum's KRaftVersion record, each only when above 0 (as Kafka's FeaturesImage
    reports them)."""
    finalized = {name: level for name, level in levels.items() if level > 0}
    if kraft_version > 0:
        finalized[KRAFT_VERSION] = kraft_version
    return dict(sorted(finalized.items()))
