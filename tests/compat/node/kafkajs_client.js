// Drives kafkajs against a broker and prints one JSON object with what it saw.
// Usage: node kafkajs_client.js <mode> <bootstrap> <topic> [count]
//   produce-offsets: produce <count> keyed records with headers (gzip), then fetchTopicOffsets
//   group-consume:   subscribe with a consumer group, fromBeginning, read <count> records
'use strict';
const { Kafka, logLevel, CompressionTypes } = require('kafkajs');

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

async function main() {
  const [mode, bootstrap, topic, countArg] = process.argv.slice(2);
  const count = Number(countArg || 10);
  const kafka = new Kafka({ clientId: 'strom-compat', brokers: [bootstrap], logLevel: logLevel.ERROR,
                            retry: { retries: 8 } });
  const modes = { 'produce-offsets': produceOffsets, 'group-consume': groupConsume };
  const result = await modes[mode](kafka, topic, count);
  process.stdout.write(JSON.stringify(result) + '\n');
}

// A consumer that never gets its records would otherwise leave node idle until the caller's timeout.
setTimeout(() => { console.error('kafkajs_client: timed out'); process.exit(2); }, 60000).unref();

main().then(() => process.exit(0), (err) => { console.error(err && err.stack || err); process.exit(1); });
