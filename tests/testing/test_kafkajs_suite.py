"""strom.testing.kafkajs_suite without kafkajs: the tally of jest-junit's XML (kafkajs repeats test titles
across SASL mechanisms, and each repeat counts) and the broker settings of its two docker-compose files."""

from __future__ import annotations

from pathlib import Path

from strom.testing.kafkajs_suite import broker_settings, read_jest_junit

JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="5" failures="2">
  <testsuite name="Broker &gt; connect" tests="3" failures="1" skipped="0">
    <testcase classname="Broker &gt; connect ok" name="Broker &gt; connect ok" time="0.1"></testcase>
    <testcase classname="Broker &gt; connect ok" name="Broker &gt; connect ok" time="0.1">
      <failure>Error: boom</failure>
    </testcase>
    <testcase classname="Broker &gt; connect later" name="Broker &gt; connect later" time="0">
      <skipped/>
    </testcase>
  </testsuite>
  <testsuite name="Broker &gt; Metadata" tests="2" failures="1" skipped="0">
    <testcase classname="Broker &gt; Metadata request" name="Broker &gt; Metadata request" time="0.1">
      <failure>Error: host</failure>
    </testcase>
    <testcase classname="Broker &gt; connect ok" name="Broker &gt; connect ok" time="0.1"></testcase>
  </testsuite>
</testsuites>
"""


def test_every_test_case_counts_once_with_repeated_titles_numbered(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    tally = read_jest_junit(path)
    assert tally.outcomes == {
        "Broker > connect ok": "passed",
        "Broker > connect ok #2": "failed",
        "Broker > connect later": "skipped",
        "Broker > Metadata request": "failed",
        "Broker > connect ok #3": "passed",
    }
    assert tally.text() == "2 passed, 2 failed, 1 skipped"


def test_broker_settings_follow_the_compose_files(tmp_path: Path) -> None:
    keystore, ca = tmp_path / "keystore.pem", tmp_path / "ca.crt"
    plain = broker_settings(keystore, ca, oauthbearer=False)
    assert plain["sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    assert 'user_alice="alicealice"' in plain["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    assert plain["num.partitions"] == plain["default.replication.factor"] == "2"
    assert (plain["ssl.keystore.location"], plain["ssl.truststore.location"]) == (str(keystore), str(ca))
    assert "connections.max.reauth.ms" not in plain
    oauth = broker_settings(keystore, ca, oauthbearer=True)
    assert oauth["sasl.enabled.mechanisms"] == "OAUTHBEARER"
    assert oauth["connections.max.reauth.ms"] == "15000"
    assert not any(".plain." in key or ".scram-" in key for key in oauth)
