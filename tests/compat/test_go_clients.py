"""The Go Kafka clients against the broker under test: IBM/sarama, segmentio/kafka-go and twmb/franz-go.

Each test runs one scenario of the Go driver in tests/compat/go (built once into .cache/tools/go-bin by
scripts/fetch-tools) and asserts on the JSON it prints. The clients pick protocol versions their own way:
sarama from its configured Kafka version (checked against ApiVersions), kafka-go from a fixed list per
API (Fetch v2/v5/v10, ListOffsets v1, Metadata v1/v6, JoinGroup v1/v2, SyncGroup v0, CreateTopics v0),
franz-go from the broker's ApiVersions maximum, idempotent producer by default (InitProducerId).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from compat_support import BrokerUnderTest, ToolFailed, TopicMaker

from benchmarks.peers import tools

pytestmark = pytest.mark.compat

SARAMA_VERSIONS = ["modern", "default", "1.0.0"]


@pytest.fixture(scope="session")
def gocompat(fetched_tools: None) -> Path:
    binary = tools.CACHE_DIR / "go-bin" / "gocompat"
    if not binary.is_file():
        raise ToolFailed(f"{binary} was not built by scripts/fetch-tools")
    return binary


def _run(binary: Path, mode: str, broker: str, *args: object, timeout: float = 90.0) -> dict:
    proc = subprocess.run([str(binary), mode, broker, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise ToolFailed(f"gocompat {mode} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise ToolFailed(f"gocompat {mode} printed no result:\n{proc.stderr[-3000:]}")
    result: dict = json.loads(lines[-1])
    return result


def _expected(n: int) -> list[dict]:
    """The records every producer scenario writes, as read back from partition 0."""
    return [{"partition": 0, "offset": i, "key": f"k{i}", "value": f"v{i}",
             "headers": [["n", str(i)], ["h", "x"]]} for i in range(n)]


# --- sarama -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", SARAMA_VERSIONS)
def test_sarama_sync_producer_and_partition_consumer(gocompat: Path, broker: str, topic: str,
                                                     version: str) -> None:
    result = _run(gocompat, "sarama-produce-consume", broker, topic, 6, version)
    assert result["acks"] == [[0, i] for i in range(6)]
    assert result["seen"] == _expected(6)
    assert result["high_watermark"] == 6


@pytest.mark.parametrize("version", ["modern", "default"])
def test_sarama_cluster_admin_topics(gocompat: Path, broker: str, unique: Callable[[str], str],
                                     version: str) -> None:
    result = _run(gocompat, "sarama-admin", broker, unique("compat-sarama-admin"), version)
    assert result["listed_partitions"] == 3
    assert result["listed_replication"] == 1
    assert result["listed_retention_ms"] == "3600000"
    assert "already exists" in result["duplicate_error"]
    assert result["describe_error"] == 0
    assert result["described_partitions"] == [0, 1, 2]
    assert all(leader >= 0 for leader in result["leaders"])
    assert result["gone_after_delete"] is True


@pytest.mark.parametrize("version", ["modern", "default"])
def test_sarama_consumer_group_range(request: pytest.FixtureRequest, gocompat: Path,
                                     broker_under_test: BrokerUnderTest, topic: str,
                                     unique: Callable[[str], str], version: str) -> None:
    result = _run(gocompat, "sarama-group", broker_under_test.bootstrap, topic, unique("sarama-grp"), 5,
                  version)
    assert result["seen"] == _expected(5)
    assert (result["committed"], result["commit_error"]) == (5, 0)
    assert result["group_listed"] is True


# --- kafka-go -----------------------------------------------------------------------------------------

def test_kafkago_writer_and_partition_reader(gocompat: Path, broker: str, topic: str) -> None:
    result = _run(gocompat, "kafkago-produce-read", broker, topic, 7)
    assert result["seen"] == _expected(7)
    assert (result["first_offset"], result["last_offset"]) == (0, 7)


def test_kafkago_group_reader_commits(request: pytest.FixtureRequest, gocompat: Path,
                                      broker_under_test: BrokerUnderTest, topic: str,
                                      unique: Callable[[str], str]) -> None:
    result = _run(gocompat, "kafkago-group", broker_under_test.bootstrap, topic, unique("kafkago-grp"), 5)
    assert result["seen"] == _expected(5)
    assert (result["committed"], result["commit_error"]) == (5, "")


def test_kafkago_conn_create_topics(gocompat: Path, broker: str, unique: Callable[[str], str]) -> None:
    result = _run(gocompat, "kafkago-create-topics", broker, unique("compat-kafkago-create"))
    assert result["partitions"] == [0, 1]
    # kafka-go's Conn.CreateTopics treats TOPIC_ALREADY_EXISTS as success.
    assert result["duplicate_error"] == ""
    assert result["controller_id"] >= 0


# --- franz-go -----------------------------------------------------------------------------------------

def test_franz_idempotent_producer_and_partition_consumer(gocompat: Path, broker: str, topic: str) -> None:
    result = _run(gocompat, "franz-produce-consume", broker, topic, 8)
    assert result["produced_offsets"] == list(range(8))
    assert result["seen"] == _expected(8)


def test_franz_consumer_group_commits(request: pytest.FixtureRequest, gocompat: Path,
                                      broker_under_test: BrokerUnderTest, topic: str,
                                      unique: Callable[[str], str]) -> None:
    result = _run(gocompat, "franz-group", broker_under_test.bootstrap, topic, unique("franz-grp"), 5)
    assert result["seen"] == _expected(5)
    assert result["committed"] == 5


def test_franz_kadm_topics_and_configs(gocompat: Path, broker: str, unique: Callable[[str], str]) -> None:
    result = _run(gocompat, "franz-admin", broker, unique("compat-franz-admin"))
    assert result["created_partitions"] == 2
    assert result["duplicate_error"].startswith("TOPIC_ALREADY_EXISTS")
    assert result["partitions"] == [0, 1]
    assert result["in_full_list"] is True
    assert result["configs"]["retention.ms"] == {"value": "7200000", "source": "DYNAMIC_TOPIC_CONFIG"}
    assert result["configs"]["cleanup.policy"] == {"value": "delete", "source": "DEFAULT_CONFIG"}


def test_franz_partitions_removed_and_added_back_are_fetched(gocompat: Path, broker: str,
                                                            make_topic: TopicMaker) -> None:
    """KIP-227 through kgo: removing every partition and adding them back reopens the fetch session (old id,
    epoch 0); a paused partition leaves the session and comes back on resume. Each phase gets its records,
    and kgo never has to reset a session the broker refused."""
    topic = make_topic(partitions=2)
    result = _run(gocompat, "franz-session-readd", broker, topic)

    def seen(phase: str) -> list[tuple[int, int, str]]:
        return sorted((r["partition"], r["offset"], r["value"]) for r in result[phase])

    assert seen("added") == [(0, 0, "v1")]
    assert seen("readded") == [(0, 0, "v1"), (1, 1, "v3")]
    assert seen("while_paused") == [(0, 1, "v4")]
    assert seen("resumed") == [(1, 2, "v5")]
    assert result["session_messages"] == []


# --- sweeps: many calls per run, every step's result or error compared at once ------------------------

def _check(result: dict, expected: dict) -> None:
    """Compare every expected step, then report all mismatches together."""
    wrong = {step: (result.get(step, "<missing>"), want) for step, want in expected.items()
             if result.get(step, "<missing>") != want}
    assert not wrong, "step: (got, expected)\n" + "\n".join(f"{k}: {v}" for k, v in wrong.items())


def _error(result: dict, step: str) -> str:
    value = result.get(step)
    assert isinstance(value, dict) and "error" in value, f"{step} should have failed, got {value!r}"
    return str(value["error"])


@pytest.mark.parametrize("version", ["modern", "default"])
def test_sarama_sweep_codecs_offsets_groups_admin(gocompat: Path, broker: str, topic: str,
                                                   unique: Callable[[str], str], version: str) -> None:
    r = _run(gocompat, "sarama-sweep", broker, topic, unique("sarama-sweep"), version)
    codecs = ["none", "gzip", "snappy", "lz4", "zstd"]
    _check(r, {
        **{f"produce-{c}": 3 * i for i, c in enumerate(codecs)},
        "consume": [f"{3 * i + j}:{c}-v{j}" for i, c in enumerate(codecs) for j in range(3)],
        "get-offset-oldest": 0, "get-offset-newest": 15, "get-offset-time-0": 0, "get-offset-future": -1,
        "offset-manager": {"before": -1, "after": 4, "metadata": "meta"},
        "list-groups": "",
        "describe-groups": {"state": "Empty", "err": 0, "protocol_type": ""},
        "list-group-offsets": {"offset": 4, "metadata": "meta", "err": 0},
        "delete-group-offset": None, "delete-group": None,
        "delete-records": None, "get-offset-oldest-after-delete": 2,
        "describe-config": {"cleanup.policy": "delete default=true source=Default ro=false",
                            "retention.ms": "604800000 default=true source=Default ro=false"},
        "alter-config": None, "incremental-alter-config": None,
        "describe-broker-config": {"num.partitions": "1 source=StaticBroker",
                                   "message.max.bytes": "1048588 source=Default"},
        "create-partitions": None,
        "describe-topic": {"partitions": 3, "err": 0},
        "describe-missing-topic": 3,  # UNKNOWN_TOPIC_OR_PARTITION
        "describe-cluster": {"brokers": 1, "controller": 1},
        "delete-topic": None,
    })
    assert r["admin-list-offsets"]["offset"] == 15
    assert r["describe-config-after"]["retention.ms"] == "86400000"
    assert r["describe-config-after"]["segment.ms"] == "600000"
    assert r["describe-log-dirs"] >= 1  # new partitions may not have a log yet in Kafka
    assert "group id does not exist" in _error(r, "delete-missing-group")
    assert "Number of partitions is invalid" in _error(r, "create-partitions-fewer")
    assert "does not exist" in _error(r, "delete-missing-topic")


def test_kafkago_sweep_codecs_conn_and_client_calls(gocompat: Path, broker: str, topic: str,
                                                    unique: Callable[[str], str]) -> None:
    group = unique("kafkago-sweep")
    r = _run(gocompat, "kafkago-sweep", broker, topic, group)
    codecs = ["uncompressed", "gzip", "snappy", "lz4", "zstd"]
    _check(r, {
        **{f"write-{c}": None for c in codecs},
        "conn-offsets": [0, 15, 0],
        "conn-read-batch": [f"{3 * i + j}:{c}-v{j}" for i, c in enumerate(codecs) for j in range(3)],
        "client-fetch": {"hw": 15, "log_start": 0, "lso": 15, "first": 3, "records": 12},
        "client-list-offsets": {"err": "", "first": 0, "last": 15},
        "client-metadata": {"controller": 1, "err": "", "partitions": 1, "topics": 1},
        "describe-configs": {"cleanup.policy": "delete source=5 default=false",
                             "retention.ms": "604800000 source=5 default=false"},
        "incremental-alter-configs": "", "alter-configs": "", "create-partitions": "",
        "offset-commit-generationless": "", "consumer-offsets": {"0": 7},
        "list-groups": {"coordinator": 1, "protocol_type": ""},
        "describe-groups": {"err": "", "members": 0, "state": "Empty"},
        "offset-delete": {"err": "", "partition_err": ""},
        "api-versions": {"err": "", "some": True},
    })
    assert r["delete-groups"]["existing"] == ""
    assert r["delete-groups"]["missing"].startswith("[69] Group ID Not Found")
    assert r["delete-topics"]["existing"] == ""
    assert r["delete-topics"]["missing"].startswith("[3] Unknown Topic Or Partition")



def test_franz_sweep_codecs_offsets_groups_admin(request: pytest.FixtureRequest, gocompat: Path,
                                                 broker_under_test: BrokerUnderTest, topic: str,
                                                 unique: Callable[[str], str]) -> None:
    r = _run(gocompat, "franz-sweep", broker_under_test.bootstrap, topic, unique("franz-sweep"))
    codecs = ["none", "gzip", "snappy", "lz4", "zstd"]
    epoch0 = {"epoch": 0}
    _check(r, {
        **{f"produce-{c}": [4 * i + j for j in range(4)] for i, c in enumerate(codecs)},
        "consume": [f"{c}-v{j}" for c in codecs for j in range(4)],
        "list-start": {**epoch0, "offset": 0}, "list-end": {**epoch0, "offset": 20},
        "list-after-0": {**epoch0, "offset": 0}, "list-committed": {**epoch0, "offset": 20},
        "commit": None, "fetch-offsets": {"at": 5, "err": ""},
        "list-groups": {"protocol_type": "", "state": "Empty"},
        "describe-groups": {"err": "", "members": 0, "state": "Empty"},
        "lag": {"total": 15}, "delete-offsets": "", "delete-group": "",
        "delete-records": {"err": "", "low_watermark": 3},
        "list-start-after-delete": {**epoch0, "offset": 3},
        "create-partitions": "", "alter-configs": "ok",
        "alter-configs-bad": "INVALID_CONFIG: Configuration is invalid.",
        "list-topics": {"has_id": True, "internal": False, "partitions": 2},
        "broker-configs": {"log.retention.hours": "168 DEFAULT_CONFIG",
                           "message.max.bytes": "1048588 DEFAULT_CONFIG",
                           "num.partitions": "1 STATIC_BROKER_CONFIG"},
        "broker-metadata": {"brokers": 1, "controller": 1, "has_cluster": True},
        "offset-for-leader-epoch": {"end": 20, "epoch": 0, "err": ""},
        "log-dirs": 1, "api-versions": True, "delete-topic": "",
    })
    assert 16 <= r["list-max-ts"]["offset"] <= 19  # within the last (zstd) batch
    configs = r["describe-configs"]
    assert configs["max.message.bytes"] == "2000000 DYNAMIC_TOPIC_CONFIG"
    assert configs["retention.ms"] == "123456 DYNAMIC_TOPIC_CONFIG"
    assert configs["segment.bytes"] == "1073741824 DEFAULT_CONFIG"
    assert r["describe-producers"] == 5  # one idempotent producer per codec
