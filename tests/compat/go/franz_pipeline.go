package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// pipelineTimeout bounds franz-pipeline, which writes far more than the other scenarios and runs against a
// three-broker cluster on a loaded machine.
const pipelineTimeout = 180 * time.Second

// produceKey is the Produce API key, as the broker hooks report it.
const produceKey = 0

// inflightHook counts Produce requests written to each broker and not yet answered, and keeps the most
// seen at once: more than one means the client pipelined its requests.
type inflightHook struct {
	mu       sync.Mutex
	inflight map[int32]int
	max      int
	requests int
}

func (h *inflightHook) OnBrokerWrite(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key != produceKey || err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	h.inflight[meta.NodeID]++
	h.max = max(h.max, h.inflight[meta.NodeID])
}

func (h *inflightHook) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	// a failed write was never counted by OnBrokerWrite
	if key != produceKey || e2e.WriteErr != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inflight[meta.NodeID]--
}

// franzPipeline: args topic partitions n. Writes n records with kgo's idempotent producer (acks=all, its
// default of 5 Produce requests in flight per broker, small batches and a 1 ms linger, so each request
// carries whichever partitions have a batch ready and several are in flight at once). Each record goes
// to a partition picked by a seeded random source, with value p<partition>-<k> for the k-th record of
// that partition. Prints how many were sent per partition, every acknowledged [offset, value] per
// partition in acknowledgement order, the delivery errors (at most 20), the number of Produce requests
// and the most seen in flight to one broker. bootstrap may list several brokers, comma-separated.
func franzPipeline(bootstrap string, args []string) (any, error) {
	topic, _ := argStr(args, 0)
	partitions, err := argInt(args, 1)
	if err != nil {
		return nil, err
	}
	n, err := argInt(args, 2)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), pipelineTimeout)
	defer cancel()

	var mu sync.Mutex
	acked := make([][][2]any, partitions)
	for p := range acked {
		acked[p] = [][2]any{}
	}
	errs := []string{}
	hook := &inflightHook{inflight: map[int32]int{}}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(bootstrap, ",")...),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// No MaxProduceRequestsInflightPerBroker: kgo refuses it with idempotency, whose limit is
		// already 5 in flight per broker (Kafka >= 1.0).
		kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchMaxBytes(1024),
		// An OUT_OF_ORDER_SEQUENCE_NUMBER answer (which kgo takes for data loss) fails the records with
		// that error instead of kgo renumbering them under a new producer epoch and going on, so a broker
		// that appends pipelined requests out of order shows as delivery errors.
		kgo.StopProducerOnDataLossDetected(),
		kgo.WithHooks(hook),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	rng := rand.New(rand.NewPCG(20261206, uint64(partitions)))
	sent := make([]int, partitions)
	for i := 0; i < n; i++ {
		p := rng.IntN(partitions)
		value := fmt.Sprintf("p%d-%d", p, sent[p])
		sent[p]++
		cl.Produce(ctx, &kgo.Record{Partition: int32(p), Value: []byte(value)}, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if len(errs) < 20 {
					errs = append(errs, fmt.Sprintf("%s[%d] %s: %v", r.Topic, r.Partition, r.Value, err))
				}
				return
			}
			acked[r.Partition] = append(acked[r.Partition], [2]any{r.Offset, string(r.Value)})
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, fmt.Errorf("Flush: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	hook.mu.Lock()
	defer hook.mu.Unlock()
	return map[string]any{
		"sent":             sent,
		"acked":            acked,
		"errors":           errs,
		"max_in_flight":    hook.max,
		"produce_requests": hook.requests,
	}, nil
}
