package main

import (
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// saramaSweep: args topic group version. Produces with every codec sarama allows at that version,
// reads back, then exercises the client offset calls, an OffsetManager and many ClusterAdmin calls.
func saramaSweep(bootstrap string, args []string) (any, error) {
	topic, _ := argStr(args, 0)
	group, _ := argStr(args, 1)
	version, _ := argStr(args, 2)
	cfg, err := saramaConfig(version)
	if err != nil {
		return nil, err
	}
	s := newSweep()
	codecs := []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy,
		sarama.CompressionLZ4, sarama.CompressionZSTD}
	total := 0
	for _, codec := range codecs {
		s.step("produce-"+codec.String(), func() (any, error) {
			c := *cfg
			c.Producer.Compression = codec
			p, err := sarama.NewSyncProducer([]string{bootstrap}, &c)
			if err != nil {
				return nil, err
			}
			defer p.Close()
			msgs := []*sarama.ProducerMessage{}
			for i := 0; i < 3; i++ {
				key, value, _ := testRecord(i)
				msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key),
					Value: sarama.StringEncoder(codec.String() + "-" + value)})
			}
			if err := p.SendMessages(msgs); err != nil {
				return nil, err
			}
			total += 3
			return msgs[0].Offset, nil
		})
	}
	client, err := sarama.NewClient([]string{bootstrap}, cfg)
	if err != nil {
		return nil, fmt.Errorf("NewClient: %w", err)
	}
	defer client.Close()
	s.step("consume", func() (any, error) {
		consumer, err := sarama.NewConsumerFromClient(client)
		if err != nil {
			return nil, err
		}
		defer consumer.Close()
		pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
		if err != nil {
			return nil, err
		}
		defer pc.Close()
		values := []string{}
		deadline := time.After(20 * time.Second)
		for len(values) < total {
			select {
			case m := <-pc.Messages():
				values = append(values, fmt.Sprintf("%d:%s", m.Offset, m.Value))
			case e := <-pc.Errors():
				return nil, e
			case <-deadline:
				return values, stepErr("read %d of %d", len(values), total)
			}
		}
		return values, nil
	})
	s.step("get-offset-oldest", func() (any, error) { return client.GetOffset(topic, 0, sarama.OffsetOldest) })
	s.step("get-offset-newest", func() (any, error) { return client.GetOffset(topic, 0, sarama.OffsetNewest) })
	s.step("get-offset-time-0", func() (any, error) { return client.GetOffset(topic, 0, 0) })
	s.step("get-offset-future", func() (any, error) {
		return client.GetOffset(topic, 0, time.Now().Add(time.Hour).UnixMilli())
	})
	// The group steps below assume a ready coordinator. Kafka creates and loads __consumer_offsets on
	// first use and answers coordinator errors meanwhile, which sarama's offset manager does not retry.
	waitGroupCoordinator(client, group, 60*time.Second)
	s.step("offset-manager", func() (any, error) {
		om, err := sarama.NewOffsetManagerFromClient(group, client)
		if err != nil {
			return nil, err
		}
		pom, err := om.ManagePartition(topic, 0)
		if err != nil {
			om.Close()
			return nil, err
		}
		before, _ := pom.NextOffset()
		pom.MarkOffset(4, "meta")
		om.Commit()
		pom.Close()
		om.Close()
		om2, err := sarama.NewOffsetManagerFromClient(group, client)
		if err != nil {
			return nil, err
		}
		defer om2.Close()
		pom2, err := om2.ManagePartition(topic, 0)
		if err != nil {
			return nil, err
		}
		defer pom2.Close()
		after, meta := pom2.NextOffset()
		return map[string]any{"before": before, "after": after, "metadata": meta}, nil
	})
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("NewClusterAdmin: %w", err)
	}
	s.step("list-groups", func() (any, error) {
		g, err := admin.ListConsumerGroups()
		return g[group], err
	})
	s.step("describe-groups", func() (any, error) {
		d, err := admin.DescribeConsumerGroups([]string{group})
		if err != nil {
			return nil, err
		}
		return map[string]any{"state": d[0].State, "err": int16(d[0].Err), "protocol_type": d[0].ProtocolType}, nil
	})
	s.step("list-group-offsets", func() (any, error) {
		r, err := admin.ListConsumerGroupOffsets(group, nil)
		if err != nil {
			return nil, err
		}
		b := r.GetBlock(topic, 0)
		if b == nil {
			return nil, stepErr("no block")
		}
		return map[string]any{"offset": b.Offset, "metadata": b.Metadata, "err": int16(b.Err)}, nil
	})
	s.step("admin-list-offsets", func() (any, error) {
		r, err := admin.ListOffsets(map[string]map[int32]int64{topic: {0: sarama.OffsetNewest}}, nil)
		if err != nil {
			return nil, err
		}
		o := r[topic][0]
		return map[string]any{"offset": o.Offset, "err": errString(o.Err)}, nil
	})
	s.step("delete-group-offset", func() (any, error) { return nil, admin.DeleteConsumerGroupOffset(group, topic, 0) })
	s.step("delete-group", func() (any, error) { return nil, admin.DeleteConsumerGroup(group) })
	s.step("delete-missing-group", func() (any, error) { return nil, admin.DeleteConsumerGroup(group + "-missing") })
	s.step("delete-records", func() (any, error) { return nil, admin.DeleteRecords(topic, map[int32]int64{0: 2}) })
	s.step("get-offset-oldest-after-delete", func() (any, error) {
		return client.GetOffset(topic, 0, sarama.OffsetOldest)
	})
	s.step("describe-config", func() (any, error) {
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic,
			ConfigNames: []string{"retention.ms", "cleanup.policy"}})
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, e := range entries {
			out[e.Name] = fmt.Sprintf("%s default=%v source=%s ro=%v", e.Value, e.Default, e.Source, e.ReadOnly)
		}
		return out, nil
	})
	s.step("alter-config", func() (any, error) {
		return nil, admin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": ptr("86400000")}, false)
	})
	s.step("incremental-alter-config", func() (any, error) {
		return nil, admin.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
			"segment.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: ptr("600000")}}, false)
	})
	s.step("describe-config-after", func() (any, error) {
		// Kafka applies an alteration through its controller and a broker's metadata cache learns it a
		// moment later, so the answer is read again until both changes show, for a bounded time.
		deadline := time.Now().Add(20 * time.Second)
		for {
			entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
			if err != nil {
				return nil, err
			}
			out := map[string]string{}
			for _, e := range entries {
				if e.Name == "retention.ms" || e.Name == "segment.ms" {
					out[e.Name] = e.Value
				}
			}
			out["count"] = fmt.Sprint(len(entries))
			applied := out["retention.ms"] == "86400000" && out["segment.ms"] == "600000"
			if applied || time.Now().After(deadline) {
				return out, nil
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	s.step("describe-broker-config", func() (any, error) {
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: "1",
			ConfigNames: []string{"num.partitions", "message.max.bytes"}})
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, e := range entries {
			out[e.Name] = fmt.Sprintf("%s source=%s", e.Value, e.Source)
		}
		return out, nil
	})
	s.step("create-partitions", func() (any, error) { return nil, admin.CreatePartitions(topic, 3, nil, false) })
	s.step("create-partitions-fewer", func() (any, error) { return nil, admin.CreatePartitions(topic, 2, nil, false) })
	s.step("describe-topic", func() (any, error) {
		m, err := admin.DescribeTopics([]string{topic})
		if err != nil {
			return nil, err
		}
		return map[string]any{"partitions": len(m[0].Partitions), "err": int16(m[0].Err)}, nil
	})
	s.step("describe-missing-topic", func() (any, error) {
		m, err := admin.DescribeTopics([]string{topic + "-missing"})
		if err != nil {
			return nil, err
		}
		return int16(m[0].Err), nil
	})
	s.step("describe-cluster", func() (any, error) {
		b, ctrl, err := admin.DescribeCluster()
		return map[string]any{"brokers": len(b), "controller": ctrl}, err
	})
	s.step("describe-log-dirs", func() (any, error) {
		d, err := admin.DescribeLogDirs([]int32{1})
		if err != nil {
			return nil, err
		}
		n := 0
		for _, dirs := range d {
			for _, dir := range dirs {
				for _, t := range dir.Topics {
					if t.Topic == topic {
						n += len(t.Partitions)
					}
				}
			}
		}
		return n, nil
	})
	s.step("list-reassignments", func() (any, error) {
		r, err := admin.ListPartitionReassignments(topic, []int32{0})
		return len(r), err
	})
	s.step("delete-topic", func() (any, error) { return nil, admin.DeleteTopic(topic) })
	s.step("delete-missing-topic", func() (any, error) { return nil, admin.DeleteTopic(topic + "-missing") })
	return s.results, nil
}

// waitGroupCoordinator asks for the group's committed offsets until its coordinator answers without a
// coordinator error (not available, loading, or not the coordinator), or the timeout passes.
func waitGroupCoordinator(client sarama.Client, group string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := client.RefreshCoordinator(group); err == nil {
			if broker, err := client.Coordinator(group); err == nil {
				req := &sarama.OffsetFetchRequest{Version: 2, ConsumerGroup: group}
				resp, err := broker.FetchOffset(req)
				if err == nil && resp.Err == sarama.ErrNoError {
					return
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}
