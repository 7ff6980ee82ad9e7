package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// sessionLog is a kgo logger that keeps the client's fetch session messages: kgo logs every session it
// has to reset or give up (INVALID_FETCH_SESSION_EPOCH, FETCH_SESSION_ID_NOT_FOUND) at info level.
type sessionLog struct {
	mu       sync.Mutex
	messages []string
}

func (l *sessionLog) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (l *sessionLog) Log(_ kgo.LogLevel, msg string, keyvals ...any) {
	if !strings.Contains(strings.ToLower(msg), "session") {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.messages) < 20 { // a broker that rejects every session would log without end
		l.messages = append(l.messages, strings.TrimSpace(fmt.Sprintln(append([]any{msg}, keyvals...)...)))
	}
}

func (l *sessionLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string{}, l.messages...)
}

// franzPollUntil polls until done(records so far) holds, failing on fetch errors or the context's end.
func franzPollUntil(ctx context.Context, cl *kgo.Client, done func([]record) bool) ([]record, error) {
	seen := []record{}
	for !done(seen) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return seen, fmt.Errorf("after %d records: %w", len(seen), ctx.Err())
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) { fetchErr = fmt.Errorf("%s[%d]: %w", t, p, err) })
		if fetchErr != nil {
			return seen, fetchErr
		}
		fetches.EachRecord(func(r *kgo.Record) {
			seen = append(seen, record{r.Partition, r.Offset, string(r.Key), string(r.Value), franzHeaders(r.Headers)})
		})
	}
	return seen, nil
}

func hasRecord(partition int32, offset int64) func([]record) bool {
	return func(rs []record) bool {
		for _, r := range rs {
			if r.Partition == partition && r.Offset == offset {
				return true
			}
		}
		return false
	}
}

// franzSessionReadd: args topic (two partitions, empty). The fetch session paths of kgo's
// TestAddRemovePartitions and of pausing: consume partition 0; remove every partition and add both back
// (kgo then reopens its session with the old id and epoch 0); pause partition 1 (it leaves the session as
// a forgotten partition) while new records arrive on both; resume it (it comes back into the session) and
// read its new record. Prints the records of each phase and kgo's fetch session messages.
func franzSessionReadd(bootstrap string, args []string) (any, error) {
	topic, err := argStr(args, 0)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	producer, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return nil, err
	}
	defer producer.Close()
	produce := func(partition int32, values ...string) error {
		recs := []*kgo.Record{}
		for _, v := range values {
			recs = append(recs, &kgo.Record{Partition: partition, Value: []byte(v)})
		}
		if err := producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("ProduceSync: %w", err)
		}
		return nil
	}
	if err := produce(0, "v1"); err != nil {
		return nil, err
	}
	if err := produce(1, "v2", "v3"); err != nil {
		return nil, err
	}

	logs := &sessionLog{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.WithLogger(logs),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := map[string]any{}

	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}})
	added, err := franzPollUntil(ctx, cl, hasRecord(0, 0))
	if err != nil {
		return nil, fmt.Errorf("first consume: %w", err)
	}
	out["added"] = added

	cl.RemoveConsumePartitions(map[string][]int32{topic: {0, 1}})
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().At(0), 1: kgo.NewOffset().At(1)},
	})
	readded, err := franzPollUntil(ctx, cl, func(rs []record) bool { return hasRecord(0, 0)(rs) && hasRecord(1, 1)(rs) })
	if err != nil {
		return nil, fmt.Errorf("after remove and add: %w (session messages %v)", err, logs.snapshot())
	}
	out["readded"] = readded

	cl.PauseFetchPartitions(map[string][]int32{topic: {1}})
	if err := produce(0, "v4"); err != nil {
		return nil, err
	}
	if err := produce(1, "v5"); err != nil {
		return nil, err
	}
	paused, err := franzPollUntil(ctx, cl, hasRecord(0, 1))
	if err != nil {
		return nil, fmt.Errorf("while paused: %w", err)
	}
	out["while_paused"] = paused

	cl.ResumeFetchPartitions(map[string][]int32{topic: {1}})
	resumed, err := franzPollUntil(ctx, cl, hasRecord(1, 2))
	if err != nil {
		return nil, fmt.Errorf("after resume: %w (session messages %v)", err, logs.snapshot())
	}
	out["resumed"] = resumed
	out["session_messages"] = logs.snapshot()
	return out, nil
}
