// Word count with Kafka Streams over the streams rebalance protocol (KIP-1071, group.protocol=streams):
// lines from an input topic are split into words, regrouped by word (a repartition topic) and counted
// (a state store with a changelog topic); the counts go to an output topic. Once it has seen
// `expectedLines` input records it prints PROCESSED (or TIMEOUT when the time limit passes first), keeps
// running until its standard input closes (or the time limit), then closes and prints CLOSED.
//
// usage: StreamsWordCount <bootstrap> <application.id> <input> <output> <expectedLines> <timeoutMs> <stateDir>

import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;

public class StreamsWordCount {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], appId = args[1], input = args[2], output = args[3];
        int expected = Integer.parseInt(args[4]);
        long timeoutMs = Long.parseLong(args[5]);
        Properties props = new Properties();
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        props.put(StreamsConfig.GROUP_PROTOCOL_CONFIG, "streams");
        props.put(StreamsConfig.STATE_DIR_CONFIG, args[6]);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        props.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.String().getClass());
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.String().getClass());

        CountDownLatch seen = new CountDownLatch(expected);
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
            .peek((k, v) -> seen.countDown())
            .flatMapValues(line -> Arrays.asList(line.toLowerCase(Locale.ROOT).split("\\W+")))
            .filter((k, word) -> !word.isEmpty())
            .groupBy((k, word) -> word)
            .count()
            .toStream()
            .to(output, Produced.with(Serdes.String(), Serdes.Long()));

        try (KafkaStreams streams = new KafkaStreams(builder.build(), props)) {
            streams.setStateListener((now, before) -> System.out.println("STATE " + before + " -> " + now));
            streams.start();
            long deadline = System.currentTimeMillis() + timeoutMs;
            boolean all = false;
            while (!all && System.currentTimeMillis() < deadline && streams.state() != KafkaStreams.State.ERROR) {
                all = seen.await(200, TimeUnit.MILLISECONDS);
            }
            System.out.println(all ? "PROCESSED" : "TIMEOUT " + seen.getCount() + " lines left");
            System.out.flush();
            // hold the group (for the tools to describe it) until the test closes our standard input
            Thread reader = new Thread(() -> {
                try {
                    while (System.in.read() >= 0) { }
                } catch (java.io.IOException e) {
                    // closed
                }
            });
            reader.setDaemon(true);
            reader.start();
            reader.join(Math.max(deadline - System.currentTimeMillis(), 1));
            streams.close(Duration.ofSeconds(20));
            System.out.println("CLOSED");
        }
    }
}
