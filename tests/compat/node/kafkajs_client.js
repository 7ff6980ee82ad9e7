// Drives kafkajs against a broker and prints one JSON object with what it saw.
// Usage: node kafkajs_client.js <mode> <bootstrap> <topic> [count]
//   produce-offsets: produce <count> keyed records with headers (gzip), then fetchTopicOffsets
//   group-consume:   subscribe with a consumer group, fromBeginning, read <count> records
//   alter-configs:   as kafkajs's own admin test: AlterConfigs on the topic (cleanup.policy=compact) and on
//                    a BROKER resource with a key the broker does not know, then DescribeConfigs of both
// KAFKAJS_SECURITY (optional, JSON) selects an SSL / SASL listener; unset means PLAINTEXT:
//   {"ssl": {"ca": "ca.pem", "cert": "client.pem", "key": "client.key"},
//    "sasl": {"mechanism": "scram-sha-512", "username": "u", "password": "p"}}
// File paths are read here, as kafkajs's `ssl` option wants the PEM contents.
'use strict';
const fs = require('fs');
const { Kafka, logLevel, CompressionTypes, ConfigResourceTypes } = require('kafkajs');

function securityOptions() {
  const raw = process.env.KAFKAJS_SECURITY;
  if (!raw) return {};
  const { ssl, sasl } = JSON.parse(raw);
  const options = {};
  if (ssl) {
    options.ssl = { rejectUnauthorized: true };
    for (const name of ['ca', 'cert', 'key']) {
      if (ssl[name]) options.ssl[name] = fs.readFileSync(ssl[name], 'utf8');
    }
  }
  if (sasl) options.sasl = sasl;
  return options;
}

async function produceOffsets(kafka, topic, count) {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < count; i++) {
    messages.push({ key: `k${i}`, value: `v${i}`, partition: 0, headers: { n: String(i) } });
  }
  const half = Math.floor(count / 2);
  const acks = [];
  acks.push(...await producer.send({ topic, messages: messages.slice(0, half), acks: -1 }));
  acks.push(...await producer.send({
    topic, messages: messages.slice(half), acks: -1, compression: CompressionTypes.GZIP,
  }));
  await producer.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  const topics = await admin.listTopics();
  await admin.disconnect();
  return { acks: acks.map((a) => ({ partition: a.partition, baseOffset: a.baseOffset })), offsets,
           listed: topics.includes(topic) };
}

async function groupConsume(kafka, topic, count) {
  const consumer = kafka.consumer({ groupId: `compat-${topic}`, sessionTimeout: 10000, rebalanceTimeout: 10000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = [];
  await new Promise((resolve, reject) => {
    // kafkajs reports a fatal consumer error as a CRASH event, not through run()'s promise.
    consumer.on(consumer.events.CRASH, (event) => reject(event.payload.error));
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers = {};
        for (const [k, v] of Object.entries(message.headers || {})) headers[k] = v.toString();
        seen.push({ partition, offset: message.offset, key: message.key && message.key.toString(),
                    value: message.value && message.value.toString(), headers });
        if (seen.length >= count) resolve();
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  return { seen };
}

async function alterConfigs(kafka, topic) {
  const admin = kafka.admin();
  await admin.connect();
  const { brokers } = await admin.describeCluster();
  const node = String(brokers[0].nodeId);
  const unknownKey = `kafkajs.compat.${topic}`;
  const altered = await admin.alterConfigs({
    resources: [
      { type: ConfigResourceTypes.TOPIC, name: topic,
        configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
      // kafkajs's test sets a topic key on the broker; this key is unknown to any broker
      { type: ConfigResourceTypes.BROKER, name: node,
        configEntries: [{ name: 'cleanup.policy', value: 'delete' }, { name: unknownKey, value: 'x' }] },
    ],
  });
  const describe = () => admin.describeConfigs({
    includeSynonyms: false,
    resources: [
      { type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['cleanup.policy'] },
      { type: ConfigResourceTypes.BROKER, name: node, configNames: ['cleanup.policy', unknownKey] },
    ],
  });
  // a dynamic broker config reaches Kafka's DescribeConfigs a moment after the alter returns
  let described = await describe();
  for (let i = 0; i < 50; i++) {
    const broker = described.resources.find((r) => r.resourceType === ConfigResourceTypes.BROKER);
    if (broker.configEntries.length === 2) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
    described = await describe();
  }
  // AlterConfigs replaces a resource's whole override set: an empty one restores the broker
  await admin.alterConfigs({ resources: [{ type: ConfigResourceTypes.BROKER, name: node, configEntries: [] }] });
  await admin.disconnect();
  return {
    altered: altered.resources.map((r) => ({ type: r.resourceType, name: r.resourceName, errorCode: r.errorCode })),
    described: described.resources.map((r) => ({
      type: r.resourceType, name: r.resourceName, errorCode: r.errorCode,
      entries: r.configEntries.map((e) => ({ name: e.configName, value: e.configValue, readOnly: e.readOnly,
                                             sensitive: e.isSensitive, source: e.configSource })),
    })),
    unknownKey,
  };
}

async function main() {
  const [mode, bootstrap, topic, countArg] = process.argv.slice(2);
  const count = Number(countArg || 10);
  const kafka = new Kafka({ clientId: 'strom-compat', brokers: [bootstrap], logLevel: logLevel.ERROR,
                            retry: { retries: 8 }, ...securityOptions() });
  const modes = { 'produce-offsets': produceOffsets, 'group-consume': groupConsume, 'alter-configs': alterConfigs };
  const result = await modes[mode](kafka, topic, count);
  process.stdout.write(JSON.stringify(result) + '\n');
}

// A consumer that never gets its records would otherwise leave node idle until the caller's timeout.
setTimeout(() => { console.error('kafkajs_client: timed out'); process.exit(2); }, 60000).unref();

main().then(() => process.exit(0), (err) => { console.error(err && err.stack || err); process.exit(1); });
