package main

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func franzHeaders(hs []kgo.RecordHeader) [][2]string {
	out := [][2]string{}
	for _, h := range hs {
		out = append(out, [2]string{h.Key, string(h.Value)})
	}
	return out
}

// franzProduce sends n test records with kgo's default (idempotent) producer and returns their offsets.
func franzProduce(ctx context.Context, bootstrap, topic string, n int) ([]int64, error) {
	sec, err := franzSecurity()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(sec, kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	recs := make([]*kgo.Record, 0, n)
	for i := 0; i < n; i++ {
		key, value, headers := testRecord(i)
		r := &kgo.Record{Key: []byte(key), Value: []byte(value), Partition: 0}
		for _, h := range headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
		}
		recs = append(recs, r)
	}
	offsets := []int64{}
	for _, res := range cl.ProduceSync(ctx, recs...) {
		if res.Err != nil {
			return nil, fmt.Errorf("ProduceSync: %w", res.Err)
		}
		offsets = append(offsets, res.Record.Offset)
	}
	return offsets, nil
}

// franzPoll collects n records from an already configured consuming client.
func franzPoll(ctx context.Context, cl *kgo.Client, n int) ([]record, error) {
	seen := []record{}
	for len(seen) < n {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read %d of %d records: %w", len(seen), n, ctx.Err())
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) { fetchErr = fmt.Errorf("%s[%d]: %w", t, p, err) })
		if fetchErr != nil {
			return nil, fetchErr
		}
		fetches.EachRecord(func(r *kgo.Record) {
			seen = append(seen, record{r.Partition, r.Offset, string(r.Key), string(r.Value), franzHeaders(r.Headers)})
		})
	}
	return seen, nil
}

// franzProduceConsume: args topic n. Idempotent ProduceSync, then ConsumePartitions from the start,
// both through the listener GOCOMPAT_SECURITY describes (security.go), PLAINTEXT when it is unset.
func franzProduceConsume(bootstrap string, args []string) (any, error) {
	topic, _ := argStr(args, 0)
	n, err := argInt(args, 1)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	offsets, err := franzProduce(ctx, bootstrap, topic, n)
	if err != nil {
		return nil, err
	}
	sec, err := franzSecurity()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(sec, kgo.SeedBrokers(bootstrap),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	seen, err := franzPoll(ctx, cl, n)
	if err != nil {
		return nil, err
	}
	return map[string]any{"produced_offsets": offsets, "seen": seen}, nil
}

// franzGroup: args topic group n. Produces, consumes in a consumer group from the start, commits,
// then reads the group's committed offsets with kadm.FetchOffsets.
func franzGroup(bootstrap string, args []string) (any, error) {
	topic, _ := argStr(args, 0)
	group, _ := argStr(args, 1)
	n, err := argInt(args, 2)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	if _, err := franzProduce(ctx, bootstrap, topic, n); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		return nil, err
	}
	seen, err := franzPoll(ctx, cl, n)
	if err != nil {
		cl.Close()
		return nil, err
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("CommitUncommittedOffsets: %w", err)
	}
	cl.Close() // leaves the group
	admCl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	offsets, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("FetchOffsets: %w", err)
	}
	if err := offsets.Error(); err != nil {
		return nil, fmt.Errorf("FetchOffsets partition error: %w", err)
	}
	committed, ok := offsets.Lookup(topic, 0)
	if !ok {
		return nil, errors.New("no committed offset for partition 0")
	}
	return map[string]any{"seen": seen, "committed": committed.At}, nil
}

// franzAdmin: args topic. kadm CreateTopics (2 partitions, a config), ListTopics, DescribeTopicConfigs,
// DeleteTopics, ListTopics again.
func franzAdmin(bootstrap string, args []string) (any, error) {
	topic, _ := argStr(args, 0)
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	created, err := adm.CreateTopics(ctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("7200000")}, topic)
	if err != nil {
		return nil, fmt.Errorf("CreateTopics: %w", err)
	}
	if err := created.Error(); err != nil {
		return nil, fmt.Errorf("CreateTopics topic error: %w", err)
	}
	dup, err := adm.CreateTopics(ctx, 2, 1, nil, topic)
	if err != nil {
		return nil, fmt.Errorf("CreateTopics again: %w", err)
	}
	listed, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("ListTopics: %w", err)
	}
	detail, ok := listed[topic]
	if !ok || detail.Err != nil {
		return nil, fmt.Errorf("ListTopics: topic missing or in error (%v)", detail.Err)
	}
	partitions := []int32{}
	for p := range detail.Partitions {
		partitions = append(partitions, p)
	}
	sort.Slice(partitions, func(a, b int) bool { return partitions[a] < partitions[b] })
	all, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("ListTopics (all): %w", err)
	}
	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("DescribeTopicConfigs: %w", err)
	}
	rc, err := configs.On(topic, nil)
	if err != nil {
		return nil, fmt.Errorf("DescribeTopicConfigs result: %w", err)
	}
	described := map[string]map[string]string{}
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" || c.Key == "cleanup.policy" {
			described[c.Key] = map[string]string{"value": c.MaybeValue(), "source": c.Source.String()}
		}
	}
	deleted, err := adm.DeleteTopics(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("DeleteTopics: %w", err)
	}
	if err := deleted.Error(); err != nil {
		return nil, fmt.Errorf("DeleteTopics topic error: %w", err)
	}
	return map[string]any{"created_partitions": created[topic].NumPartitions,
		"duplicate_error": errString(dup.Error()), "partitions": partitions, "in_full_list": all.Has(topic),
		"configs": described}, nil
}
