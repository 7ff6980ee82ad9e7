"""ControllerRegistration (KIP-919), which Kafka 4.4's controllers send to the active controller: the rule
writes a RegisterControllerRecord v0 that replays into the state's controllers, and refuses a controller
that cannot run the finalized metadata.version as Kafka's ClusterControlManager does."""

from __future__ import annotations

import random
import uuid
from types import SimpleNamespace

import pytest

from strom.cluster.kraft.decisions import ControllerRules
from strom.config import BrokerConfig
from strom.metadata import records as r
from strom.metadata.image import MetadataState
from strom.protocol.errors import ErrorCode, KafkaError


def controller_registration(node_id: int, mv: tuple[int, int] = (7, 33)) -> SimpleNamespace:
    low, high = mv
    return SimpleNamespace(
        controller_id=node_id,
        incarnation_id=uuid.UUID(int=node_id),
        zk_migration_ready=False,
        listeners=(SimpleNamespace(name="CONTROLLER", host="127.0.0.1", port=9093, security_protocol=0),),
        features=(
            SimpleNamespace(name="kraft.version", min_supported_version=0, max_supported_version=1),
            SimpleNamespace(name="metadata.version", min_supported_version=low, max_supported_version=high),
        ),
    )


@pytest.fixture
def state() -> MetadataState:
    state = MetadataState()
    feature = r.FeatureLevelRecord(name="metadata.version", feature_level=33)
    state.replay(SimpleNamespace(message=feature), 0)  # type: ignore[arg-type]
    return state


def test_a_registration_is_one_register_controller_record(state: MetadataState) -> None:
    rules = ControllerRules(state, BrokerConfig({}), random.Random(1))
    change = rules.register_controller(controller_registration(2))
    [record] = change.records
    assert record.version == 0 and isinstance(record.message, r.RegisterControllerRecord)
    assert record.message.controller_id == 2 and record.message.incarnation_id == uuid.UUID(int=2)
    assert [(e.name, e.port) for e in record.message.end_points] == [("CONTROLLER", 9093)]
    assert [f.name for f in record.message.features] == ["kraft.version", "metadata.version"]
    state.replay(record, 1)
    assert 2 in state.controllers


def test_a_controller_that_cannot_run_the_metadata_version_is_refused(state: MetadataState) -> None:
    rules = ControllerRules(state, BrokerConfig({}), random.Random(1))
    with pytest.raises(KafkaError) as refused:
        rules.register_controller(controller_registration(2, mv=(7, 30)))
    assert refused.value.code == ErrorCode.unsupported_version
    assert "finalized version 33 of metadata.version" in refused.value.message
