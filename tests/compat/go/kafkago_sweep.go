package main

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// kafkagoSweep: args topic group. Writes with every codec, reads back through kafka.Conn (the pinned
// old API versions) and kafka.Client (newer ones), then exercises the kafka.Client admin calls.
func kafkagoSweep(bootstrap string, args []string) (any, error) {
	topic, _ := argStr(args, 0)
	group, _ := argStr(args, 1)
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	s := newSweep()
	codecs := []compress.Compression{0, compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd}
	total := 0
	for _, codec := range codecs {
		s.step(fmt.Sprintf("write-%v", codec), func() (any, error) {
			w := &kafka.Writer{Addr: kafka.TCP(bootstrap), Topic: topic, Balancer: &kafka.LeastBytes{},
				Compression: codec, BatchTimeout: 10 * time.Millisecond, RequiredAcks: kafka.RequireOne}
			defer w.Close()
			msgs := []kafka.Message{}
			for i := 0; i < 3; i++ {
				key, value, _ := testRecord(i)
				msgs = append(msgs, kafka.Message{Key: []byte(key), Value: []byte(fmt.Sprintf("%v-%s", codec, value))})
			}
			total += 3
			return nil, w.WriteMessages(ctx, msgs...)
		})
	}
	s.step("conn-offsets", func() (any, error) {
		conn, err := kafka.DialLeader(ctx, "tcp", bootstrap, topic, 0)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		first, err := conn.ReadFirstOffset()
		if err != nil {
			return nil, err
		}
		last, err := conn.ReadLastOffset()
		if err != nil {
			return nil, err
		}
		at0, err := conn.ReadOffset(time.UnixMilli(0))
		if err != nil {
			return nil, err
		}
		return []int64{first, last, at0}, nil
	})
	s.step("conn-read-batch", func() (any, error) {
		conn, err := kafka.DialLeader(ctx, "tcp", bootstrap, topic, 0)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		values := []string{}
		offset := int64(0)
		for len(values) < total {
			if _, err := conn.Seek(offset, kafka.SeekAbsolute); err != nil {
				return nil, err
			}
			batch := conn.ReadBatch(1, 1<<20)
			for {
				m, err := batch.ReadMessage()
				if err != nil {
					break
				}
				values = append(values, fmt.Sprintf("%d:%s", m.Offset, m.Value))
				offset = m.Offset + 1
			}
			if err := batch.Close(); err != nil {
				return values, err
			}
		}
		return values, nil
	})
	client := &kafka.Client{Addr: kafka.TCP(bootstrap), Timeout: 10 * time.Second}
	s.step("client-fetch", func() (any, error) {
		r, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: 0, Offset: 3, MinBytes: 1,
			MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
		if err != nil {
			return nil, err
		}
		if r.Error != nil {
			return nil, r.Error
		}
		n := 0
		firstOffset := int64(-1)
		for {
			rec, err := r.Records.ReadRecord()
			if err != nil {
				break
			}
			if firstOffset < 0 {
				firstOffset = rec.Offset
			}
			n++
		}
		return map[string]any{"hw": r.HighWatermark, "log_start": r.LogStartOffset, "lso": r.LastStableOffset,
			"first": firstOffset, "records": n}, nil
	})
	s.step("client-list-offsets", func() (any, error) {
		r, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
			topic: {kafka.FirstOffsetOf(0), kafka.LastOffsetOf(0)}}})
		if err != nil {
			return nil, err
		}
		p := r.Topics[topic][0]
		return map[string]any{"first": p.FirstOffset, "last": p.LastOffset, "err": errString(p.Error)}, nil
	})
	s.step("client-metadata", func() (any, error) {
		m, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return nil, err
		}
		return map[string]any{"topics": len(m.Topics), "partitions": len(m.Topics[0].Partitions),
			"controller": m.Controller.ID, "err": errString(m.Topics[0].Error)}, nil
	})
	s.step("describe-configs", func() (any, error) {
		r, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
			{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms", "cleanup.policy"}}}})
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, e := range r.Resources[0].ConfigEntries {
			out[e.ConfigName] = fmt.Sprintf("%s source=%d default=%v", e.ConfigValue, e.ConfigSource, e.IsDefault)
		}
		return out, errOrNil(r.Resources[0].Error)
	})
	s.step("incremental-alter-configs", func() (any, error) {
		r, err := client.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{
			{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, Configs: []kafka.IncrementalAlterConfigsRequestConfig{
				{Name: "retention.ms", Value: "4000000", ConfigOperation: kafka.ConfigOperationSet}}}}})
		if err != nil {
			return nil, err
		}
		return errString(r.Resources[0].Error), nil
	})
	s.step("alter-configs", func() (any, error) {
		r, err := client.AlterConfigs(ctx, &kafka.AlterConfigsRequest{Resources: []kafka.AlterConfigRequestResource{
			{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, Configs: []kafka.AlterConfigRequestConfig{
				{Name: "segment.ms", Value: "700000"}}}}})
		if err != nil {
			return nil, err
		}
		return errString(r.Errors[kafka.AlterConfigsResponseResource{Type: int8(kafka.ResourceTypeTopic), Name: topic}]), nil
	})
	s.step("create-partitions", func() (any, error) {
		r, err := client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 2}}})
		if err != nil {
			return nil, err
		}
		return errString(r.Errors[topic]), nil
	})
	s.step("offset-commit-generationless", func() (any, error) {
		r, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1,
			Topics: map[string][]kafka.OffsetCommit{topic: {{Partition: 0, Offset: 7}}}})
		if err != nil {
			return nil, err
		}
		return errString(r.Topics[topic][0].Error), nil
	})
	s.step("consumer-offsets", func() (any, error) {
		return client.ConsumerOffsets(ctx, kafka.TopicAndGroup{Topic: topic, GroupId: group})
	})
	s.step("list-groups", func() (any, error) {
		r, err := client.ListGroups(ctx, &kafka.ListGroupsRequest{})
		if err != nil {
			return nil, err
		}
		for _, g := range r.Groups {
			if g.GroupID == group {
				return map[string]any{"coordinator": g.Coordinator, "protocol_type": g.ProtocolType}, nil
			}
		}
		return nil, stepErr("group not listed")
	})
	s.step("describe-groups", func() (any, error) {
		r, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
		if err != nil {
			return nil, err
		}
		g := r.Groups[0]
		return map[string]any{"state": g.GroupState, "members": len(g.Members), "err": errString(g.Error)}, nil
	})
	s.step("offset-delete", func() (any, error) {
		r, err := client.OffsetDelete(ctx, &kafka.OffsetDeleteRequest{GroupID: group, Topics: map[string][]int{topic: {0}}})
		if err != nil {
			return nil, err
		}
		return map[string]any{"err": errString(r.Error), "partition_err": errString(r.Topics[topic][0].Error)}, nil
	})
	s.step("delete-groups", func() (any, error) {
		r, err := client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group, group + "-missing"}})
		if err != nil {
			return nil, err
		}
		return map[string]string{"existing": errString(r.Errors[group]), "missing": errString(r.Errors[group+"-missing"])}, nil
	})
	s.step("api-versions", func() (any, error) {
		r, err := client.ApiVersions(ctx, &kafka.ApiVersionsRequest{})
		if err != nil {
			return nil, err
		}
		return map[string]any{"err": errString(r.Error), "some": len(r.ApiKeys) > 10}, nil
	})
	s.step("delete-topics", func() (any, error) {
		r, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic, topic + "-missing"}})
		if err != nil {
			return nil, err
		}
		return map[string]string{"existing": errString(r.Errors[topic]), "missing": errString(r.Errors[topic+"-missing"])}, nil
	})
	return s.results, nil
}
