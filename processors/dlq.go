package processors

import (
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers the runner puts on a dead-letter record; its key and value are the original
// record's bytes, and the original headers follow these.
const (
	HeaderDLQStage     = "dlq.stage"     // the stage that could not process the record
	HeaderDLQError     = "dlq.error"     // the error, as text
	HeaderDLQTopic     = "dlq.topic"     // the hop's input record: topic,
	HeaderDLQPartition = "dlq.partition" // partition,
	HeaderDLQOffset    = "dlq.offset"    // and offset
	HeaderDLQTime      = "dlq.time"      // when the runner gave up, RFC 3339 UTC
)

// dlqHeaderPrefix starts every header the runner adds to a dead-letter record.
const dlqHeaderPrefix = "dlq."

// maxErrorHeader keeps a runaway error message from bloating the DLQ record.
const maxErrorHeader = 4096

func dlqHeaders(stage string, err error, origin *kgo.Record, now time.Time) []kgo.RecordHeader {
	msg := err.Error()
	if len(msg) > maxErrorHeader {
		msg = msg[:maxErrorHeader]
	}
	hs := []kgo.RecordHeader{
		{Key: HeaderDLQStage, Value: []byte(stage)},
		{Key: HeaderDLQError, Value: []byte(msg)},
		{Key: HeaderDLQTopic, Value: []byte(origin.Topic)},
		{Key: HeaderDLQPartition, Value: []byte(strconv.Itoa(int(origin.Partition)))},
		{Key: HeaderDLQOffset, Value: []byte(strconv.FormatInt(origin.Offset, 10))},
		{Key: HeaderDLQTime, Value: []byte(now.UTC().Format(time.RFC3339Nano))},
	}
	return append(hs, origin.Headers...)
}
