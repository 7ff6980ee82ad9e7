package main

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

func kafkagoHeaders(hs []kafka.Header) [][2]string {
	out := [][2]string{}
	for _, h := range hs {
		out = append(out, [2]string{h.Key, string(h.Value)})
	}
	return out
}

// kafkagoWrite sends n test records with a kafka.Writer (Produce through kafka-go's Transport).
func kafkagoWrite(ctx context.Context, bootstrap, topic string, n int) error {
	w := &kafka.Writer{Addr: kafka.TCP(bootstrap), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 10 * time.Millisecond, BatchSize: n}
	defer w.Close()
	msgs := make([]kafka.Message, 0, n)
	for i := 0; i < n; i++ {
		key, value, headers := testRecord(i)
		m := kafka.Message{Key: []byte(key), Value: []byte(value)}
		for _, h := range headers {
			m.Headers = append(m.Headers, kafka.Header{Key: h[0], Value: []byte(h[1])})
		}
		msgs = append(msgs, m)
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("WriteMessages: %w", err)
	}
	return nil
}

// kafkagoProduceRead: args topic n. Writer, then a partition Reader (kafka.Conn: ListOffsets, Fetch)
// from the first offset, then the partition's first/last offsets through kafka.Conn.
func kafkagoProduceRead(bootstrap string, args []string) (any, error) {
	topic, _ := argStr(args, 0)
	n, err := argInt(args, 1)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	if err := kafkagoWrite(ctx, bootstrap, topic, n); err != nil {
		return nil, err
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bootstrap}, Topic: topic, Partition: 0,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		return nil, fmt.Errorf("SetOffset: %w", err)
	}
	seen := []record{}
	for len(seen) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ReadMessage after %d records: %w", len(seen), err)
		}
		seen = append(seen, record{int32(m.Partition), m.Offset, string(m.Key), string(m.Value), kafkagoHeaders(m.Headers)})
	}
	conn, err := kafka.DialLeader(ctx, "tcp", bootstrap, topic, 0)
	if err != nil {
		return nil, fmt.Errorf("DialLeader: %w", err)
	}
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return nil, fmt.Errorf("ReadOffsets: %w", err)
	}
	return map[string]any{"seen": seen, "first_offset": first, "last_offset": last}, nil
}

// kafkagoGroup: args topic group n. Writer, then a Reader with GroupID (JoinGroup, SyncGroup,
// OffsetFetch) that fetches and commits synchronously, then the committed offset via Client.OffsetFetch.
func kafkagoGroup(bootstrap string, args []string) (any, error) {
	topic, _ := argStr(args, 0)
	group, _ := argStr(args, 1)
	n, err := argInt(args, 2)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	if err := kafkagoWrite(ctx, bootstrap, topic, n); err != nil {
		return nil, err
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bootstrap}, Topic: topic, GroupID: group,
		StartOffset: kafka.FirstOffset, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond,
		HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second})
	seen := []record{}
	for len(seen) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("FetchMessage after %d records: %w", len(seen), err)
		}
		seen = append(seen, record{int32(m.Partition), m.Offset, string(m.Key), string(m.Value), kafkagoHeaders(m.Headers)})
		if err := r.CommitMessages(ctx, m); err != nil {
			r.Close()
			return nil, fmt.Errorf("CommitMessages: %w", err)
		}
	}
	if err := r.Close(); err != nil {
		return nil, fmt.Errorf("Reader.Close: %w", err)
	}
	client := &kafka.Client{Addr: kafka.TCP(bootstrap), Timeout: 10 * time.Second}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0}}})
	if err != nil {
		return nil, fmt.Errorf("OffsetFetch: %w", err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("OffsetFetch error: %w", resp.Error)
	}
	parts := resp.Topics[topic]
	if len(parts) != 1 {
		return nil, fmt.Errorf("OffsetFetch returned %d partitions", len(parts))
	}
	return map[string]any{"seen": seen, "committed": parts[0].CommittedOffset,
		"commit_error": errString(parts[0].Error)}, nil
}

// kafkagoCreateTopics: args topic. kafka.Conn.CreateTopics (2 partitions) on the controller, then
// ReadPartitions (Metadata) until the topic shows up, then DeleteTopics.
func kafkagoCreateTopics(bootstrap string, args []string) (any, error) {
	topic, _ := argStr(args, 0)
	conn, err := kafka.Dial("tcp", bootstrap)
	if err != nil {
		return nil, fmt.Errorf("Dial: %w", err)
	}
	defer conn.Close()
	controller, err := conn.Controller()
	if err != nil {
		return nil, fmt.Errorf("Controller: %w", err)
	}
	cc, err := kafka.Dial("tcp", net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port)))
	if err != nil {
		return nil, fmt.Errorf("Dial controller: %w", err)
	}
	defer cc.Close()
	if err := cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}}); err != nil {
		return nil, fmt.Errorf("CreateTopics: %w", err)
	}
	dupErr := cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: 2, ReplicationFactor: 1})
	var partitions []kafka.Partition
	for i := 0; i < 50; i++ {
		partitions, err = conn.ReadPartitions(topic)
		if err == nil && len(partitions) == 2 && partitions[0].Leader.Port != 0 && partitions[1].Leader.Port != 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("ReadPartitions: %w", err)
	}
	ids := []int{}
	for _, p := range partitions {
		ids = append(ids, p.ID)
	}
	sort.Ints(ids)
	if err := cc.DeleteTopics(topic); err != nil {
		return nil, fmt.Errorf("DeleteTopics: %w", err)
	}
	return map[string]any{"partitions": ids, "duplicate_error": errString(dupErr),
		"controller_id": controller.ID}, nil
}
