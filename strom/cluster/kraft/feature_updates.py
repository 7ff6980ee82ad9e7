"""UpdateFeatures on the active controller (KIP-584, KIP-778, KIP-1022), decided as Kafka 4.4's
FeatureControlManager decides: `kafka-features upgrade | downgrade | disable` end here.

Each update names a feature, a new level and an upgrade type (UPGRADE, SAFE_DOWNGRADE, UNSAFE_DOWNGRADE;
v0's `allow_downgrade` is SAFE_DOWNGRADE). The updates are checked one after the other and the first that
fails fails the whole request (nothing is written), with INVALID_UPDATE_VERSION and Kafka's message
"Invalid update version <level> for feature <name>. <reason>":
- a level below 0; an unknown upgrade type;
- a level outside what this controller supports ("Local controller <id> only supports versions <a>-<b>",
  "... does not support this feature.") or outside a registered broker's range ("broker<id> ...");
- a lower level with UPGRADE, or a higher one with a downgrade type;
- a level whose dependencies (other features' levels, metadata.version's) do not hold in the levels the
  request would leave ("<name> could not be set to <level> because it depends on <dep> level <n>").
metadata.version has its own checks ("Invalid metadata.version <level>. ..."): an unknown level, one below
3.3-IV3, and a downgrade ("Unsupported metadata.version downgrade from <a> to <b>. ..."; Kafka lets through
downgrades across metadata.versions that changed no metadata format, Strom refuses every one).
The error message starts with Kafka's "The update failed for all features since the following feature
had an error: ".
kraft.version lives in the Raft layer (KIP-853), not in a FeatureLevelRecord: an UPGRADE of it goes to
the Raft leader (strom.raft.voter_changes.upgrade_kraft_version, which writes the KRaftVersionRecord and the
first VotersRecord) and adds a NoOpRecord to the request's records, as Kafka's FeatureControlManager does;
a downgrade type is refused unless it names the current level ("Can't downgrade the version of this
feature.").
Each other accepted update becomes one FeatureLevelRecord; level 0 removes the feature from the finalized
set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from strom.metadata.features import KRAFT_VERSION, METADATA_VERSION, feature, supported_features
from strom.metadata.image import MetadataState
from strom.metadata.records import FeatureLevelRecord, NoOpRecord
from strom.metadata.release_versions import METADATA_VERSIONS, MINIMUM_VERSION
from strom.metadata.serde import ApiMessageAndVersion
from strom.protocol.errors import ErrorCode, KafkaError

__all__ = ["UPGRADE", "FeatureUpdate", "update_features"]

UPGRADE, SAFE_DOWNGRADE, UNSAFE_DOWNGRADE = 1, 2, 3
ALL_FAILED = "The update failed for all features since the following feature had an error: "


@dataclass(frozen=True, slots=True)
class FeatureUpdate:
    name: str
    level: int
    upgrade_type: int = UPGRADE


def _range_text(low: int, high: int) -> str:
    # Kafka's VersionRange.toString
    return str(low) if low == high else f"{low}-{high}"


def _not_supported(level: int, what: str, supported: tuple[int, int] | None) -> str | None:
    low, high = supported or (0, 0)
    if low <= level <= high:
        return None
    if high == 0:
        return f"{what} does not support this feature."
    return f"{what} only supports versions {_range_text(low, high)}"


def _invalid(update: FeatureUpdate, reason: str) -> KafkaError:
    return KafkaError(
        f"Invalid update version {update.level} for feature {update.name}. {reason}",
        code=ErrorCode.invalid_update_version,
    )


def _invalid_metadata_version(level: int, reason: str) -> KafkaError:
    return KafkaError(f"Invalid metadata.version {level}. {reason}", code=ErrorCode.invalid_update_version)


def _current_levels(state: MetadataState) -> dict[str, int]:
    levels = dict(state.features)
    levels[METADATA_VERSION] = state.metadata_version
    return levels


def _check_support(update: FeatureUpdate, state: MetadataState, node_id: int) -> None:
    local = supported_features().get(update.name)
    reason = _not_supported(update.level, f"Local controller {node_id}", local)
    for broker_id, reg in sorted(state.brokers.items()):
        if reason is None:
            reason = _not_supported(update.level, f"broker{broker_id}", reg.features.get(update.name))
    if reason is not None:
        raise _invalid(update, reason)


def _check_direction(update: FeatureUpdate, current: int) -> None:
    if update.level < current and update.upgrade_type == UPGRADE:
        raise _invalid(
            update,
            "Can't downgrade the version of this feature without setting the upgrade type "
            "to either safe or unsafe downgrade.",
        )
    if update.level > current and update.upgrade_type != UPGRADE:
        raise _invalid(update, "Can't downgrade to a newer version.")


def _check_metadata_version(level: int, current: int) -> None:
    known = {mv.feature_level: mv for mv in METADATA_VERSIONS}
    if level not in known:
        raise _invalid_metadata_version(level, "Unknown metadata.version.")
    minimum = next(mv for mv in METADATA_VERSIONS if mv.version == MINIMUM_VERSION)
    if level < minimum.feature_level:
        raise _invalid_metadata_version(
            level, f"Unable to set a metadata.version less than {MINIMUM_VERSION}"
        )
    if level < current:
        raise KafkaError(
            f"Unsupported metadata.version downgrade from {current} to {level}. Refusing to perform the "
            "requested downgrade because it might delete metadata information.",
            code=ErrorCode.invalid_update_version,
        )


def _kraft_version_records(
    update: FeatureUpdate, current: int, upgrade_kraft: KRaftUpgrade | None
) -> list[ApiMessageAndVersion]:
    if update.upgrade_type != UPGRADE:
        if update.level != current:
            raise _invalid(update, "Can't downgrade the version of this feature.")
        return []
    if upgrade_kraft is None:
        raise _invalid(update, "The controller cannot change kraft.version.")
    upgrade_kraft(update.level)
    return [ApiMessageAndVersion(NoOpRecord(), 0)]


def _check_dependencies(update: FeatureUpdate, proposed: Mapping[str, int]) -> None:
    info = feature(update.name)
    known = next((fl for fl in info.levels if fl.level == update.level), None) if info else None
    for dependency, needed in (known.dependencies if known else {}).items():
        if proposed.get(dependency, 0) < needed:
            raise _invalid(
                update,
                f"{update.name} could not be set to {update.level} because it depends on "
                f"{dependency} level {needed}",
            )


KRaftUpgrade = Callable[[int], object]
"""Raises kraft.version to a level through the Raft leader (KafkaError when refused)."""


def update_features(
    state: MetadataState,
    node_id: int,
    updates: Sequence[FeatureUpdate],
    kraft_version: int = 0,
    upgrade_kraft: KRaftUpgrade | None = None,
) -> list[ApiMessageAndVersion]:
    """The records of `updates`, or KafkaError (INVALID_UPDATE_VERSION mostly) for the first refused, its
    message prefixed as Kafka's QuorumController prefixes it. `kraft_version` is the quorum's level and
    `upgrade_kraft` raises it (None: refused, as on a node without a Raft leader)."""
    try:
        return _records(state, node_id, updates, kraft_version, upgrade_kraft)
    except KafkaError as exc:
        raise KafkaError(f"{ALL_FAILED}{exc.message}", code=exc.code) from None


def _records(
    state: MetadataState,
    node_id: int,
    updates: Sequence[FeatureUpdate],
    kraft_version: int,
    upgrade_kraft: KRaftUpgrade | None,
) -> list[ApiMessageAndVersion]:
    current = {**_current_levels(state), KRAFT_VERSION: kraft_version}
    proposed = {**current, **{u.name: u.level for u in updates}}
    records = []
    for update in updates:
        if update.upgrade_type not in (UPGRADE, SAFE_DOWNGRADE, UNSAFE_DOWNGRADE):
            raise _invalid(update, "The controller does not support the given upgrade type.")
        if update.level < 0:
            raise _invalid(update, "A feature version cannot be less than 0.")
        _check_support(update, state, node_id)
        _check_direction(update, current.get(update.name, 0))
        if update.name == KRAFT_VERSION:
            records.extend(_kraft_version_records(update, kraft_version, upgrade_kraft))
            continue
        if update.name == METADATA_VERSION:
            _check_metadata_version(update.level, current[METADATA_VERSION])
        else:
            _check_dependencies(update, proposed)
        record = FeatureLevelRecord(name=update.name, feature_level=update.level)
        records.append(ApiMessageAndVersion(record, 0))
    return records
