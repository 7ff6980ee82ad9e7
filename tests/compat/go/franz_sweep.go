package main

import (
	"context"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func listed(lo kadm.ListedOffsets, err error, topic string) (any, error) {
	if err != nil {
		return nil, err
	}
	o, ok := lo.Lookup(topic, 0)
	if !ok {
		return nil, stepErr("partition 0 missing")
	}
	if o.Err != nil {
		return nil, o.Err
	}
	return map[string]int64{"offset": o.Offset, "epoch": int64(o.LeaderEpoch)}, nil
}

// franzSweep: args topic group. Produces with every codec, then exercises many kadm calls; prints
// each step's result or error.
func franzSweep(bootstrap string, args []string) (any, error) {
	topic, _ := argStr(args, 0)
	group, _ := argStr(args, 1)
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	s := newSweep()
	codecs := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}
	names := []string{"none", "gzip", "snappy", "lz4", "zstd"}
	for _, name := range names {
		s.step("produce-"+name, func() (any, error) {
			cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic),
				kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(codecs[name]))
			if err != nil {
				return nil, err
			}
			defer cl.Close()
			recs := []*kgo.Record{}
			for i := 0; i < 4; i++ {
				key, value, _ := testRecord(i)
				recs = append(recs, &kgo.Record{Key: []byte(key), Value: []byte(name + "-" + value)})
			}
			offs := []int64{}
			for _, r := range cl.ProduceSync(ctx, recs...) {
				if r.Err != nil {
					return nil, r.Err
				}
				offs = append(offs, r.Record.Offset)
			}
			return offs, nil
		})
	}
	s.step("consume", func() (any, error) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		seen, err := franzPoll(ctx, cl, 20)
		if err != nil {
			return nil, err
		}
		values := []string{}
		for _, r := range seen {
			values = append(values, r.Value)
		}
		return values, nil
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	s.step("list-start", func() (any, error) { lo, err := adm.ListStartOffsets(ctx, topic); return listed(lo, err, topic) })
	s.step("list-end", func() (any, error) { lo, err := adm.ListEndOffsets(ctx, topic); return listed(lo, err, topic) })
	s.step("list-max-ts", func() (any, error) {
		lo, err := adm.ListMaxTimestampOffsets(ctx, topic)
		return listed(lo, err, topic)
	})
	s.step("list-after-0", func() (any, error) {
		lo, err := adm.ListOffsetsAfterMilli(ctx, 0, topic)
		return listed(lo, err, topic)
	})
	s.step("list-committed", func() (any, error) {
		lo, err := adm.ListCommittedOffsets(ctx, topic)
		return listed(lo, err, topic)
	})
	s.step("commit", func() (any, error) {
		var os kadm.Offsets
		os.AddOffset(topic, 0, 5, -1)
		return nil, adm.CommitAllOffsets(ctx, group, os)
	})
	s.step("fetch-offsets", func() (any, error) {
		r, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return nil, err
		}
		o, ok := r.Lookup(topic, 0)
		if !ok {
			return nil, stepErr("missing")
		}
		return map[string]any{"at": o.At, "err": errString(o.Err)}, nil
	})
	s.step("list-groups", func() (any, error) {
		g, err := adm.ListGroups(ctx)
		if err != nil {
			return nil, err
		}
		d, ok := g[group]
		if !ok {
			return nil, stepErr("group not listed")
		}
		return map[string]string{"state": d.State, "protocol_type": d.ProtocolType}, nil
	})
	s.step("describe-groups", func() (any, error) {
		g, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return nil, err
		}
		d := g[group]
		return map[string]any{"state": d.State, "members": len(d.Members), "err": errString(d.Err)}, nil
	})
	s.step("lag", func() (any, error) {
		l, err := adm.Lag(ctx, group)
		if err != nil {
			return nil, err
		}
		d := l[group]
		if d.Error() != nil {
			return nil, d.Error()
		}
		return map[string]any{"total": d.Lag.Total()}, nil
	})
	s.step("delete-offsets", func() (any, error) {
		r, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			return nil, err
		}
		return errString(r.Error()), nil
	})
	s.step("delete-group", func() (any, error) {
		r, err := adm.DeleteGroup(ctx, group)
		if err != nil {
			return nil, err
		}
		return errString(r.Err), nil
	})
	s.step("delete-records", func() (any, error) {
		var os kadm.Offsets
		os.AddOffset(topic, 0, 3, -1)
		r, err := adm.DeleteRecords(ctx, os)
		if err != nil {
			return nil, err
		}
		d, _ := r.Lookup(topic, 0)
		return map[string]any{"low_watermark": d.LowWatermark, "err": errString(d.Err)}, nil
	})
	s.step("list-start-after-delete", func() (any, error) {
		lo, err := adm.ListStartOffsets(ctx, topic)
		return listed(lo, err, topic)
	})
	s.step("create-partitions", func() (any, error) {
		r, err := adm.CreatePartitions(ctx, 1, topic)
		if err != nil {
			return nil, err
		}
		return errString(r.Error()), nil
	})
	s.step("alter-configs", func() (any, error) {
		r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("123456")},
			{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr("2000000")}}, topic)
		if err != nil {
			return nil, err
		}
		for _, x := range r {
			if x.Err != nil {
				return nil, x.Err
			}
		}
		return "ok", nil
	})
	s.step("alter-configs-bad", func() (any, error) {
		r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "no.such.config", Value: kadm.StringPtr("1")}}, topic)
		if err != nil {
			return nil, err
		}
		return errString(r[0].Err), nil
	})
	s.step("describe-configs", func() (any, error) {
		rc, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			return nil, err
		}
		c, err := rc.On(topic, nil)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, e := range c.Configs {
			if e.Key == "retention.ms" || e.Key == "max.message.bytes" || e.Key == "segment.bytes" {
				out[e.Key] = e.MaybeValue() + " " + e.Source.String()
			}
		}
		out["count"] = itoa(len(c.Configs))
		return out, nil
	})
	s.step("list-topics", func() (any, error) {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return nil, err
		}
		d := td[topic]
		return map[string]any{"partitions": len(d.Partitions), "internal": d.IsInternal, "has_id": d.ID != [16]byte{}}, nil
	})
	s.step("broker-configs", func() (any, error) {
		rc, err := adm.DescribeBrokerConfigs(ctx, 1)
		if err != nil {
			return nil, err
		}
		if len(rc) != 1 {
			return nil, stepErr("got %d resources", len(rc))
		}
		out := map[string]string{}
		for _, e := range rc[0].Configs {
			if e.Key == "num.partitions" || e.Key == "log.retention.hours" || e.Key == "message.max.bytes" {
				out[e.Key] = e.MaybeValue() + " " + e.Source.String()
			}
		}
		return out, errOrNil(rc[0].Err)
	})
	s.step("broker-metadata", func() (any, error) {
		m, err := adm.BrokerMetadata(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]any{"brokers": len(m.Brokers), "controller": m.Controller, "has_cluster": m.Cluster != ""}, nil
	})
	s.step("offset-for-leader-epoch", func() (any, error) {
		var r kadm.OffsetForLeaderEpochRequest
		r.Add(topic, 0, 0)
		res, err := adm.OffsetForLeaderEpoch(ctx, r)
		if err != nil {
			return nil, err
		}
		for _, ps := range res {
			for _, p := range ps {
				return map[string]any{"end": p.EndOffset, "epoch": p.LeaderEpoch, "err": errString(p.Err)}, nil
			}
		}
		return nil, stepErr("empty")
	})
	s.step("log-dirs", func() (any, error) {
		d, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			return nil, err
		}
		n := 0
		for _, dirs := range d {
			for _, dir := range dirs {
				if dir.Err != nil {
					return nil, dir.Err
				}
				for _, ps := range dir.Topics {
					n += len(ps)
				}
			}
		}
		return n, nil
	})
	s.step("describe-producers", func() (any, error) {
		d, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			return nil, err
		}
		n := 0
		d.EachPartition(func(p kadm.DescribedProducersPartition) { n += len(p.ActiveProducers) })
		return n, nil
	})
	s.step("api-versions", func() (any, error) {
		v, err := adm.ApiVersions(ctx)
		if err != nil {
			return nil, err
		}
		keys := []int{}
		for _, b := range v {
			b.EachKeySorted(func(k, minV, maxV int16) { keys = append(keys, int(k)) })
		}
		sort.Ints(keys)
		return len(keys) > 0, nil
	})
	s.step("delete-topic", func() (any, error) {
		r, err := adm.DeleteTopic(ctx, topic)
		if err != nil {
			return nil, err
		}
		return errString(r.Err), nil
	})
	return s.results, nil
}

func errOrNil(err error) error { return err }

func itoa(n int) string { return strconv.Itoa(n) }
