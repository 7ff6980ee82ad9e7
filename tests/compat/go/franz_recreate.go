package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// afterWindow bounds how long franzTopicRecreated polls after the re-creation.
const afterWindow = 15 * time.Second

// fetchErrors keeps the distinct fetch errors a consumer saw (a topic that goes away and comes back
// answers UNKNOWN_TOPIC_ID or INCONSISTENT_TOPIC_ID for a while; kgo retries them).
type fetchErrors struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (f *fetchErrors) add(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	f.seen[err.Error()] = true
}

// franzTopicRecreated: args topic (one partition). A kgo consumer (Fetch by topic id from v13) reads v0 and
// v1; the topic is deleted and created again under the same name (a new topic id) and n0 is produced to
// it, and the consumer polls for up to afterWindow or until it reads n0. Prints the records before and
// after, whether the two topic ids differ, the Fetch version kgo uses with this broker, and the fetch
// errors seen after the re-creation (not fatal: kgo retries them).
func franzTopicRecreated(bootstrap string, args []string) (any, error) {
	topic, err := argStr(args, 0)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)

	produce := func(values ...string) error {
		// a fresh producer per topic incarnation: it learns the topic (and its id) from scratch
		cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			return err
		}
		defer cl.Close()
		for _, v := range values {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte(v)}).FirstErr(); err != nil {
				return fmt.Errorf("ProduceSync %s: %w", v, err)
			}
		}
		return nil
	}
	topicID := func() (string, error) {
		details, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return "", err
		}
		d, ok := details[topic]
		if !ok || d.Err != nil {
			return "", fmt.Errorf("topic %s not listed: %v", topic, d.Err)
		}
		return d.ID.String(), nil
	}

	if err := produce("v0", "v1"); err != nil {
		return nil, err
	}
	oldID, err := topicID()
	if err != nil {
		return nil, err
	}
	errs := &fetchErrors{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(time.Second))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := map[string]any{}
	before, err := franzPollUntil(ctx, cl, hasRecord(0, 1))
	if err != nil {
		return nil, fmt.Errorf("before: %w", err)
	}
	out["before"] = before

	versions, err := adm.ApiVersions(ctx)
	if err != nil {
		return nil, err
	}
	for _, bv := range versions {
		if v, ok := bv.KeyMaxVersion(int16(kmsg.Fetch)); ok {
			out["broker_fetch_max"] = min(v, kmsg.NewPtrFetchRequest().MaxVersion())
		}
	}

	deleted, err := adm.DeleteTopics(ctx, topic)
	if err != nil {
		return nil, err
	}
	if err := deleted.Error(); err != nil {
		return nil, fmt.Errorf("DeleteTopics: %w", err)
	}
	for {
		created, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
		if err == nil && created.Err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("CreateTopic: %v %v", err, created.Err)
		}
		time.Sleep(200 * time.Millisecond) // the broker may still be deleting the old topic
	}
	var newID string
	for {
		newID, err = topicID()
		if err == nil && newID != oldID {
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("new topic id: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out["ids_differ"] = newID != oldID
	if err := produce("n0"); err != nil {
		return nil, err
	}

	// poll for a bounded while: kgo 1.22 keeps fetching the old topic id after the re-creation, on Kafka
	// as anywhere (UNKNOWN_TOPIC_ID every time), so n0 may never come
	window, stop := context.WithTimeout(ctx, afterWindow)
	defer stop()
	after := []record{}
	for !hasValue(after, "n0") && window.Err() == nil {
		fetches := cl.PollFetches(window)
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				errs.add(err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			after = append(after, record{r.Partition, r.Offset, string(r.Key), string(r.Value), franzHeaders(r.Headers)})
		})
	}
	out["after"] = after
	seen := []string{}
	for e := range errs.seen {
		seen = append(seen, e)
	}
	out["fetch_errors"] = seen
	return out, nil
}

func hasValue(rs []record, value string) bool {
	for _, r := range rs {
		if r.Value == value {
			return true
		}
	}
	return false
}
