"""A kafkajs (npm) consumer group against an embedded broker: two members share the partitions, consume
every message and commit; the committed offsets are visible to the AdminClient."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from strom.testing.embedded import EmbeddedBroker

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

pytestmark = [pytest.mark.compat, pytest.mark.slow]

SCRIPT = r"""
const { Kafka, logLevel } = require('kafkajs');
const [brokers, topic, groupId, expected] = process.argv.slice(2);
const kafka = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING });
const seen = new Set();
const assigned = {};
async function member(name) {
  const consumer = kafka.consumer({ groupId, heartbeatInterval: 300, sessionTimeout: 6000 });
  consumer.on(consumer.events.GROUP_JOIN, e => { assigned[name] = e.payload.memberAssignment[topic] || []; });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => { seen.add(message.value.toString()); } });
  return consumer;
}
(async () => {
  const a = await member('a');
  const b = await member('b');
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    const sizes = Object.values(assigned).map(p => p.length).sort();
    if (seen.size >= Number(expected) && sizes.length === 2 && sizes[0] === 2 && sizes[1] === 2) break;
    await new Promise(r => setTimeout(r, 100));
  }
  const snapshot = JSON.stringify({ seen: [...seen].sort(), assigned });
  await a.disconnect();
  await b.disconnect();
  console.log(snapshot);
})().catch(e => { console.error(e); process.exit(1); });
"""


def kafkajs_modules() -> Path:
    """node_modules holding kafkajs: the tool cache, or an npm install into .cache/node."""
    from benchmarks.peers import tools

    try:
        return tools.node_modules()
    except Exception:
        pass
    prefix = REPO_ROOT / ".cache" / "node"
    if not (prefix / "node_modules" / "kafkajs").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to install kafkajs")
        subprocess.run([npm, "install", "--prefix", str(prefix), "kafkajs"], check=True, timeout=300)
    return prefix / "node_modules"


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker({"group.min.session.timeout.ms": "1000"}) as b:
        yield b


def test_kafkajs_consumer_group(broker: EmbeddedBroker, tmp_path: Path) -> None:
    modules = kafkajs_modules()
    topic = f"t-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(10)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for i in range(20):
        producer.produce(topic, f"m{i:02d}".encode(), partition=i % 4)
    producer.flush(10)
    script = tmp_path / "group.js"
    script.write_text(SCRIPT)
    out = subprocess.run(
        ["node", str(script), broker.bootstrap_servers, topic, group, "20"],
        env={"NODE_PATH": str(modules), "PATH": "/usr/bin:/usr/local/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["seen"] == [f"m{i:02d}" for i in range(20)]
    parts = sorted(p for ps in result["assigned"].values() for p in ps)
    assert parts == [0, 1, 2, 3]
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(10)
    assert sorted((tp.partition, tp.offset) for tp in offsets.topic_partitions) == [(p, 5) for p in range(4)]
