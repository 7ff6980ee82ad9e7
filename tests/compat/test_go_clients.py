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
from compat_support import JOIN_GROUP, BrokerUnderTest, ToolFailed, xfail_on_strom_without

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
    xfail_on_strom_without(request, broker_under_test, JOIN_GROUP, "consumer groups")
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
    xfail_on_strom_without(request, broker_under_test, JOIN_GROUP, "consumer groups")
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
    xfail_on_strom_without(request, broker_under_test, JOIN_GROUP, "consumer groups")
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
