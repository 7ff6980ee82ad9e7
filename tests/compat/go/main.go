// Command gocompat drives one Kafka scenario with a Go client library (sarama, kafka-go or franz-go)
// against a broker and prints the observed results as one JSON object on stdout, for
// tests/compat/test_go_clients.py to assert on. Failures go to stderr with a non-zero exit status.
//
// Usage: gocompat <mode> <bootstrap host:port> [args...]
// franz-produce-consume also reads TLS and SASL settings from GOCOMPAT_SECURITY (see security.go).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"
)

// record is one record as a client saw it, in a client-neutral shape.
type record struct {
	Partition int32       `json:"partition"`
	Offset    int64       `json:"offset"`
	Key       string      `json:"key"`
	Value     string      `json:"value"`
	Headers   [][2]string `json:"headers"`
}

// scenarioTimeout bounds every scenario: a broker that never answers must fail the test, not hang it.
const scenarioTimeout = 60 * time.Second

type scenario func(bootstrap string, args []string) (any, error)

var scenarios = map[string]scenario{
	"sarama-produce-consume": saramaProduceConsume,
	"sarama-admin":           saramaAdmin,
	"sarama-group":           saramaGroup,
	"sarama-sweep":           saramaSweep,
	"kafkago-produce-read":   kafkagoProduceRead,
	"kafkago-group":          kafkagoGroup,
	"kafkago-create-topics":  kafkagoCreateTopics,
	"kafkago-sweep":          kafkagoSweep,
	"franz-produce-consume":  franzProduceConsume,
	"franz-group":            franzGroup,
	"franz-admin":            franzAdmin,
	"franz-sweep":            franzSweep,
	"franz-session-readd":    franzSessionReadd,
	"franz-pipeline":         franzPipeline,
	"franz-topic-recreated":  franzTopicRecreated,
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: gocompat <mode> <bootstrap> [args...]")
		os.Exit(2)
	}
	run, ok := scenarios[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
	out, err := run(os.Args[2], os.Args[3:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	enc, err := json.Marshal(out)
	if err != nil {
		fmt.Fprintf(os.Stderr, "encoding result: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(string(enc))
}

// argInt reads the i-th scenario argument as an int.
func argInt(args []string, i int) (int, error) {
	if i >= len(args) {
		return 0, fmt.Errorf("missing argument %d", i)
	}
	return strconv.Atoi(args[i])
}

// argStr reads the i-th scenario argument.
func argStr(args []string, i int) (string, error) {
	if i >= len(args) {
		return "", fmt.Errorf("missing argument %d", i)
	}
	return args[i], nil
}

// testRecord is the i-th record every producer scenario writes: key k<i>, value v<i>, headers n=<i>, h=x.
func testRecord(i int) (key, value string, headers [][2]string) {
	return fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i), [][2]string{{"n", strconv.Itoa(i)}, {"h", "x"}}
}
