"""UpdateFeatures and UnregisterBroker through Kafka 4.4's own tools, kafka-features and kafka-cluster, sent
to a broker that forwards them to its KRaft controller: a downgrade and an upgrade of a feature (and their
--dry-run), refusals with Kafka's messages (a level the controller does not support, an unknown feature, a
downgrade without the downgrade flag, a metadata.version downgrade, one bad update failing the whole
request), and unregistering a broker id that is not registered. Strom runs as one KRaft node
(broker,controller; the default `strom serve` has no controller to forward to); with --kafka-reference the
same steps run against Kafka 4.4 and print the same lines."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
from compat_support import BrokerUnderTest

from benchmarks.peers import tools
from strom.testing.kraft_node import EmbeddedKRaftNode

pytestmark = pytest.mark.compat

FEATURES = "org.apache.kafka.tools.FeatureCommand"
CLUSTER = "org.apache.kafka.tools.ClusterTool"
ALL_FAILED = "The update failed for all features since the following feature had an error: "


@pytest.fixture(scope="module")
def kraft_bootstrap(broker_under_test: BrokerUnderTest, fetched_tools: None) -> Iterator[str]:
    if broker_under_test.kind == "kafka":
        yield broker_under_test.bootstrap
    elif broker_under_test.kind == "external":
        pytest.skip("changes cluster features: needs a broker this module starts")
    else:
        with EmbeddedKRaftNode() as node:
            yield node.bootstrap_servers


def _run(main_class: str, *args: str) -> tuple[int, str, str]:
    done = subprocess.run(tools.java_command(main_class, *args), capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout.strip(), done.stderr.strip()


def features(bootstrap: str, *args: str) -> tuple[int, str]:
    code, out, _err = _run(FEATURES, "--bootstrap-server", bootstrap, *args)
    return code, out


def finalized(bootstrap: str, name: str) -> str:
    code, out = features(bootstrap, "describe")
    assert code == 0, out
    match = re.search(rf"Feature: {re.escape(name)}\s.*FinalizedVersionLevel: (\S+)", out)
    assert match, out
    return match.group(1)


def test_kafka_features_downgrade_and_upgrade(kraft_bootstrap: str) -> None:
    assert finalized(kraft_bootstrap, "streams.version") == "1"
    assert features(kraft_bootstrap, "downgrade", "--feature", "streams.version=0", "--dry-run") == (
        0, "streams.version can be downgraded to 0.")
    assert finalized(kraft_bootstrap, "streams.version") == "1"
    try:
        assert features(kraft_bootstrap, "downgrade", "--feature", "streams.version=0") == (
            0, "streams.version was downgraded to 0.")
        assert finalized(kraft_bootstrap, "streams.version") == "0"
    finally:
        assert features(kraft_bootstrap, "upgrade", "--feature", "streams.version=1") == (
            0, "streams.version was upgraded to 1.")
    assert finalized(kraft_bootstrap, "streams.version") == "1"


def test_kafka_features_refusals(kraft_bootstrap: str) -> None:
    # the controller's node id differs between the two runs; the rest of each line is Kafka's
    def refused(*args: str) -> str:
        code, out = features(kraft_bootstrap, *args)
        assert code == 1, out
        return re.sub(r"Local controller \d+", "Local controller N", out)

    assert refused("upgrade", "--feature", "group.version=5") == (
        f"Could not upgrade group.version to 5. {ALL_FAILED}Invalid update version 5 for feature "
        "group.version. Local controller N only supports versions 0-1")
    assert refused("upgrade", "--feature", "foo.version=1") == (
        f"Could not upgrade foo.version to 1. {ALL_FAILED}Invalid update version 1 for feature "
        "foo.version. Local controller N does not support this feature.")
    # one bad update fails both, and nothing changes
    both = refused("upgrade", "--feature", "group.version=1", "--feature", "streams.version=3")
    reason = f"{ALL_FAILED}Invalid update version 3 for feature streams.version. Local controller N only " \
             "supports versions 0-1"
    assert both.splitlines() == [f"Could not upgrade group.version to 1. {reason}",
                                 f"Could not upgrade streams.version to 3. {reason}"]
    assert refused("downgrade", "--metadata", "3.9").splitlines()[-1] == (
        f"Could not downgrade metadata.version to 21. {ALL_FAILED}Unsupported metadata.version downgrade "
        "from 33 to 21. Refusing to perform the requested downgrade because it might delete metadata "
        "information.")
    code, _out, err = _run(FEATURES, "--bootstrap-server", kraft_bootstrap, "upgrade",
                           "--feature", "streams.version=0")
    assert code == 1 and "should be set to SAFE_DOWNGRADE or UNSAFE_DOWNGRADE" in err, err
    assert finalized(kraft_bootstrap, "group.version") == "1"
    assert finalized(kraft_bootstrap, "streams.version") == "1"


def test_kafka_cluster_unregister_unknown_broker(kraft_bootstrap: str) -> None:
    code, _out, err = _run(CLUSTER, "unregister", "--bootstrap-server", kraft_bootstrap, "--id", "7")
    assert code == 1
    assert "BrokerIdNotRegisteredException: Broker ID 7 is not currently registered" in err, err
