// Members of one share group (KIP-932) in one JVM, with Kafka's own KafkaShareConsumer in explicit
// acknowledgement mode (share.acknowledgement.mode=explicit), for tests/compat/test_share_consumer_java.py.
//
// usage: ShareWorkers <bootstrap> <group> <topic> <members> <mode> <workMs> <maxPollRecords> <timeoutMs>
//
// Each member (client.id <group>-<i>) polls <topic> on a thread of its own. In mode "ack" it acknowledges
// every record it gets by its value: values starting with "r" are RELEASEd on their first delivery and
// ACCEPTed on a later one, values starting with "x" are always RELEASEd, all others ACCEPTed; it waits
// <workMs> per record (the work), and commits the acknowledgements of each poll with commitSync. In mode
// "hold" a member acknowledges nothing and stops polling once it has records, holding their acquisition
// locks (the test kills the JVM).
//
// Output, one line each: READY (once DescribeShareGroups shows every member of this JVM with <topic>
// assigned); REC <client> <value> <offset> <deliveryCount> <ACCEPT|RELEASE|HOLD> before each
// acknowledgement; COMMITTED <client> <n> after a commitSync without errors (COMMIT-ERROR otherwise);
// HELD <client> <n> in mode hold; ERROR <client> <exception> when a member fails. When standard input
// closes (or <timeoutMs> passes) the members close, then LAG <startOffset> <lag> is printed once
// ListShareGroupOffsets says no record of partition 0 waits (or the last answer after 30 s), then CLOSED.

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListShareGroupOffsetsSpec;
import org.apache.kafka.clients.admin.ShareGroupDescription;
import org.apache.kafka.clients.admin.ShareMemberDescription;
import org.apache.kafka.clients.admin.SharePartitionOffsetInfo;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

public class ShareWorkers {
    static final AtomicBoolean STOP = new AtomicBoolean(false);

    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static AcknowledgeType decide(String value, short deliveryCount) {
        if (value.startsWith("x") || (value.startsWith("r") && deliveryCount <= 1)) {
            return AcknowledgeType.RELEASE;
        }
        return AcknowledgeType.ACCEPT;
    }

    static void member(KafkaShareConsumer<String, String> consumer, String client, String topic, String mode,
                       long workMs) {
        try {
            consumer.subscribe(List.of(topic));
            while (!STOP.get()) {
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(300));
                if (records.isEmpty()) {
                    continue;
                }
                if (mode.equals("hold")) {
                    for (ConsumerRecord<String, String> r : records) {
                        say("REC " + client + " " + r.value() + " " + r.offset() + " " + r.deliveryCount().orElse((short) -1) + " HOLD");
                    }
                    say("HELD " + client + " " + records.count());
                    while (!STOP.get()) {
                        Thread.sleep(100);
                    }
                    return;
                }
                for (ConsumerRecord<String, String> r : records) {
                    short count = r.deliveryCount().orElse((short) -1);
                    AcknowledgeType type = decide(r.value(), count);
                    say("REC " + client + " " + r.value() + " " + r.offset() + " " + count + " " + type.name());
                    if (workMs > 0) {
                        Thread.sleep(workMs);
                    }
                    consumer.acknowledge(r, type);
                }
                Map<TopicIdPartition, Optional<KafkaException>> result = consumer.commitSync(Duration.ofSeconds(15));
                List<String> errors = new ArrayList<>();
                result.forEach((tp, error) -> error.ifPresent(e -> errors.add(tp + ": " + e)));
                say(errors.isEmpty() ? "COMMITTED " + client + " " + records.count()
                                     : "COMMIT-ERROR " + client + " " + errors);
            }
        } catch (Exception e) {
            say("ERROR " + client + " " + e);
        }
    }

    static boolean ready(Admin admin, String group, String topic, List<String> clients) throws Exception {
        ShareGroupDescription description = admin.describeShareGroups(List.of(group)).all()
            .get(10, TimeUnit.SECONDS).get(group);
        int found = 0;
        for (ShareMemberDescription m : description.members()) {
            if (clients.contains(m.clientId()) && m.assignment().topicPartitions().contains(new TopicPartition(topic, 0))) {
                found++;
            }
        }
        return found == clients.size();
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], group = args[1], topic = args[2], mode = args[4];
        int members = Integer.parseInt(args[3]);
        long workMs = Long.parseLong(args[5]);
        String maxPollRecords = args[6];
        long deadline = System.currentTimeMillis() + Long.parseLong(args[7]);

        List<String> clients = new ArrayList<>();
        List<KafkaShareConsumer<String, String>> consumers = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < members; i++) {
            String client = group + "-" + mode + "-" + i + "-" + ProcessHandle.current().pid();
            Properties props = new Properties();
            props.put("bootstrap.servers", bootstrap);
            props.put("group.id", group);
            props.put("client.id", client);
            props.put("share.acknowledgement.mode", "explicit");
            props.put("share.acquire.mode", "record_limit");
            props.put("max.poll.records", maxPollRecords);
            KafkaShareConsumer<String, String> consumer =
                new KafkaShareConsumer<>(props, new StringDeserializer(), new StringDeserializer());
            clients.add(client);
            consumers.add(consumer);
            Thread t = new Thread(() -> member(consumer, client, topic, mode, workMs), client);
            threads.add(t);
            t.start();
        }

        Thread reader = new Thread(() -> {
            try {
                while (System.in.read() >= 0) { }
            } catch (java.io.IOException e) {
                // closed
            }
        });
        reader.setDaemon(true);
        reader.start();

        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            boolean isReady = false;
            while (!isReady && reader.isAlive() && System.currentTimeMillis() < deadline) {
                try {
                    isReady = ready(admin, group, topic, clients);
                } catch (Exception e) {
                    // the group may not exist yet
                }
                if (!isReady) {
                    Thread.sleep(200);
                }
            }
            say(isReady ? "READY" : "NOT-READY");
            reader.join(Math.max(deadline - System.currentTimeMillis(), 1));
            STOP.set(true);
            for (Thread t : threads) {
                t.join(20000);
            }
            for (KafkaShareConsumer<String, String> c : consumers) {
                c.close(Duration.ofSeconds(10));
            }
            TopicPartition partition = new TopicPartition(topic, 0);
            ListShareGroupOffsetsSpec spec = new ListShareGroupOffsetsSpec().topicPartitions(List.of(partition));
            String last = "LAG none";
            long lagDeadline = System.currentTimeMillis() + 30000;
            while (System.currentTimeMillis() < lagDeadline) {
                SharePartitionOffsetInfo info = admin.listShareGroupOffsets(Map.of(group, spec))
                    .partitionsToOffsetInfo(group).get(10, TimeUnit.SECONDS).get(partition);
                if (info != null) {
                    last = "LAG " + info.startOffset() + " " + info.lag().map(String::valueOf).orElse("unknown");
                    if (info.lag().orElse(-1L) == 0L) {
                        break;
                    }
                }
                Thread.sleep(300);
            }
            say(last);
        }
        say("CLOSED");
    }
}
