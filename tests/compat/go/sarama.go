package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// saramaConfig builds a client config; version "default" keeps sarama's own default protocol version.
func saramaConfig(version string) (*sarama.Config, error) {
	cfg := sarama.NewConfig()
	cfg.ClientID = "gocompat-sarama"
	switch version {
	case "default":
	case "modern":
		cfg.Version = sarama.V3_6_0_0
	default:
		v, err := sarama.ParseKafkaVersion(version)
		if err != nil {
			return nil, err
		}
		cfg.Version = v
	}
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Return.Errors = true
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg, nil
}

func saramaHeaders(hs []*sarama.RecordHeader) [][2]string {
	out := [][2]string{}
	for _, h := range hs {
		out = append(out, [2]string{string(h.Key), string(h.Value)})
	}
	return out
}

// saramaProduce sends n test records with a SyncProducer and returns (partition, offset) per send.
func saramaProduce(bootstrap string, cfg *sarama.Config, topic string, n int) ([][2]int64, error) {
	producer, err := sarama.NewSyncProducer([]string{bootstrap}, cfg)
	if err != nil {
		return nil, fmt.Errorf("NewSyncProducer: %w", err)
	}
	defer producer.Close()
	acks := [][2]int64{}
	for i := 0; i < n; i++ {
		key, value, headers := testRecord(i)
		msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(value)}
		for _, h := range headers {
			msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(h[0]), Value: []byte(h[1])})
		}
		partition, offset, err := producer.SendMessage(msg)
		if err != nil {
			return nil, fmt.Errorf("SendMessage %d: %w", i, err)
		}
		acks = append(acks, [2]int64{int64(partition), offset})
	}
	return acks, nil
}

// saramaProduceConsume: args topic n version. Produces n records, then reads partition 0 from oldest.
func saramaProduceConsume(bootstrap string, args []string) (any, error) {
	topic, _ := argStr(args, 0)
	n, err := argInt(args, 1)
	if err != nil {
		return nil, err
	}
	version, _ := argStr(args, 2)
	cfg, err := saramaConfig(version)
	if err != nil {
		return nil, err
	}
	acks, err := saramaProduce(bootstrap, cfg, topic, n)
	if err != nil {
		return nil, err
	}
	consumer, err := sarama.NewConsumer([]string{bootstrap}, cfg)
	if err != nil {
		return nil, fmt.Errorf("NewConsumer: %w", err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		return nil, fmt.Errorf("ConsumePartition: %w", err)
	}
	defer pc.Close()
	seen := []record{}
	deadline := time.After(scenarioTimeout)
	for len(seen) < n {
		select {
		case m := <-pc.Messages():
			seen = append(seen, record{m.Partition, m.Offset, string(m.Key), string(m.Value), saramaHeaders(m.Headers)})
		case e := <-pc.Errors():
			return nil, fmt.Errorf("partition consumer: %w", e)
		case <-deadline:
			return nil, fmt.Errorf("read %d of %d records", len(seen), n)
		}
	}
	return map[string]any{"version": cfg.Version.String(), "acks": acks, "seen": seen,
		"high_watermark": pc.HighWaterMarkOffset()}, nil
}

// saramaAdmin: args topic version. ClusterAdmin create (3 partitions), list, describe, delete, list.
func saramaAdmin(bootstrap string, args []string) (any, error) {
	topic, _ := argStr(args, 0)
	version, _ := argStr(args, 1)
	cfg, err := saramaConfig(version)
	if err != nil {
		return nil, err
	}
	admin, err := sarama.NewClusterAdmin([]string{bootstrap}, cfg)
	if err != nil {
		return nil, fmt.Errorf("NewClusterAdmin: %w", err)
	}
	defer admin.Close()
	detail := &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": ptr("3600000")}}
	if err := admin.CreateTopic(topic, detail, false); err != nil {
		return nil, fmt.Errorf("CreateTopic: %w", err)
	}
	dupErr := admin.CreateTopic(topic, detail, false)
	var listed sarama.TopicDetail
	found := false
	for i := 0; i < 50 && !found; i++ {
		topics, err := admin.ListTopics()
		if err != nil {
			return nil, fmt.Errorf("ListTopics: %w", err)
		}
		listed, found = topics[topic]
		if !found {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !found {
		return nil, errors.New("created topic not in ListTopics")
	}
	meta, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		return nil, fmt.Errorf("DescribeTopics: %w", err)
	}
	if len(meta) != 1 {
		return nil, fmt.Errorf("DescribeTopics returned %d topics", len(meta))
	}
	partitions := []int32{}
	leaders := []int32{}
	for _, p := range meta[0].Partitions {
		partitions = append(partitions, p.ID)
		leaders = append(leaders, p.Leader)
	}
	sort.Slice(partitions, func(a, b int) bool { return partitions[a] < partitions[b] })
	if err := admin.DeleteTopic(topic); err != nil {
		return nil, fmt.Errorf("DeleteTopic: %w", err)
	}
	gone := false
	for i := 0; i < 50 && !gone; i++ {
		topics, err := admin.ListTopics()
		if err != nil {
			return nil, fmt.Errorf("ListTopics after delete: %w", err)
		}
		_, still := topics[topic]
		gone = !still
		if !gone {
			time.Sleep(100 * time.Millisecond)
		}
	}
	retention := ""
	if v := listed.ConfigEntries["retention.ms"]; v != nil {
		retention = *v
	}
	return map[string]any{
		"listed_partitions": listed.NumPartitions, "listed_replication": listed.ReplicationFactor,
		"listed_retention_ms": retention, "duplicate_error": errString(dupErr),
		"describe_error": int16(meta[0].Err), "described_partitions": partitions, "leaders": leaders,
		"gone_after_delete": gone,
	}, nil
}

// groupHandler records every claimed message and cancels the session once `want` are seen.
type groupHandler struct {
	mu     sync.Mutex
	seen   []record
	want   int
	cancel context.CancelFunc
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		sess.MarkMessage(m, "")
		h.mu.Lock()
		h.seen = append(h.seen, record{m.Partition, m.Offset, string(m.Key), string(m.Value), saramaHeaders(m.Headers)})
		done := len(h.seen) >= h.want
		h.mu.Unlock()
		if done {
			sess.Commit() // synchronous: the offsets are stored before the session ends
			h.cancel()
			return nil
		}
	}
	return nil
}

// saramaGroup: args topic group n version. Produces n records, consumes them in a range-assigned group,
// commits, then reads the committed offset back with ClusterAdmin.
func saramaGroup(bootstrap string, args []string) (any, error) {
	topic, _ := argStr(args, 0)
	group, _ := argStr(args, 1)
	n, err := argInt(args, 2)
	if err != nil {
		return nil, err
	}
	version, _ := argStr(args, 3)
	cfg, err := saramaConfig(version)
	if err != nil {
		return nil, err
	}
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	if _, err := saramaProduce(bootstrap, cfg, topic, n); err != nil {
		return nil, err
	}
	cg, err := sarama.NewConsumerGroup([]string{bootstrap}, group, cfg)
	if err != nil {
		return nil, fmt.Errorf("NewConsumerGroup: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	handler := &groupHandler{want: n, cancel: cancel}
	var consumeErr error
	go func() {
		for e := range cg.Errors() {
			consumeErr = e
		}
	}()
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{topic}, handler); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
			consumeErr = err
			break
		}
	}
	if err := cg.Close(); err != nil {
		return nil, fmt.Errorf("ConsumerGroup.Close: %w", err)
	}
	handler.mu.Lock()
	seen := handler.seen
	handler.mu.Unlock()
	if len(seen) < n {
		return nil, fmt.Errorf("group read %d of %d records (last error: %v)", len(seen), n, consumeErr)
	}
	admin, err := sarama.NewClusterAdmin([]string{bootstrap}, cfg)
	if err != nil {
		return nil, fmt.Errorf("NewClusterAdmin: %w", err)
	}
	defer admin.Close()
	offsets, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
	if err != nil {
		return nil, fmt.Errorf("ListConsumerGroupOffsets: %w", err)
	}
	block := offsets.GetBlock(topic, 0)
	if block == nil {
		return nil, errors.New("no committed offset block for partition 0")
	}
	groups, err := admin.ListConsumerGroups()
	if err != nil {
		return nil, fmt.Errorf("ListConsumerGroups: %w", err)
	}
	_, listed := groups[group]
	return map[string]any{"seen": seen, "committed": block.Offset, "commit_error": int16(block.Err),
		"group_listed": listed}, nil
}

func ptr(s string) *string { return &s }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
