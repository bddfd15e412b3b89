package processors

import (
	"context"
	"errors"
	"fmt"

	"github.com/paystream/paystream/schemas/catalog"
)

// Stage is one step of the payment chain. Process gets one decoded record and the
// per-key state of the record's partition, and returns what to write. It must not keep
// references to in or st after returning, and must be deterministic enough that running
// it again after an aborted transaction gives an acceptable answer: the runner retries
// whole batches.
//
// Errors: wrap with Permanent for a record that can never succeed (it goes to the
// dead-letter topic and the partition moves on); any other error is transient (the
// database is down) and the runner aborts the transaction, backs off and retries the same
// records in the same order. A panic is treated as permanent.
type Stage interface {
	Process(ctx context.Context, in *Input, st State) (Result, error)
}

// BatchPreparer is implemented by a stage that does better with a whole batch at once:
// the posting stage applies a Kafka batch's postings in one database transaction. The
// runner takes a batch through a hop one stage at a time and calls Prepare with every
// input the stage is about to get, in order, before it calls Process for each of them
// within the same Kafka transaction, whether the stage is first in its hop or fused
// behind others. An error from Prepare is transient: the batch is aborted and retried.
type BatchPreparer interface {
	Prepare(ctx context.Context, ins []*Input) error
}

// BatchFinisher is implemented by a stage with work to finish once per batch: the runner
// calls Finish once the stage has processed every input of the batch, if it got any and
// none failed transiently (that aborts the batch), before a later stage of a fused hop
// prepares the stage's outputs and before the Kafka transaction commits. The loyalty
// stage decides a batch's budget grants in memory and writes them here, so the posting
// stage, fused behind it, finds them when it gives back the grants of a payment it
// refuses. An error from Finish is transient: the batch is aborted and retried.
type BatchFinisher interface {
	Finish(ctx context.Context) error
}

// StageFunc adapts a function to Stage.
type StageFunc func(ctx context.Context, in *Input, st State) (Result, error)

// Process calls f.
func (f StageFunc) Process(ctx context.Context, in *Input, st State) (Result, error) {
	return f(ctx, in, st)
}

// Input is the record a stage receives.
type Input struct {
	Topic     catalog.Topic
	Partition int32
	Offset    int64 // of the hop's input record; fused stages see the origin's offset
	// Batch names the transaction's batch, unique within the process: the stages of one
	// fused hop see the same number for the same batch.
	Batch   uint64
	Key     []byte
	Value   any // decoded by the runner's Codec
	Headers map[string]string
}

// Output is one record a stage asks the runner to write.
type Output struct {
	Topic catalog.Topic
	// Key is the wallet whose balance the record can reduce (see DESIGN.md); nil keeps
	// the input's key, which keeps the payment on its wallet's partition and in order.
	Key   []byte
	Value any // encoded by the runner's Codec for Topic
}

// Result is a stage's decision on one record.
type Result struct {
	Outputs []Output
	// Rejected is the reason code when the stage ended the payment (its outcome record is
	// among Outputs); it is counted and logged, never retried.
	Rejected string
}

// State is the per-key state of the partition a record came from. Values are small and
// bounded (Config.MaxStateKeyBytes, Config.MaxStateValueBytes); writes become visible to
// later records of the same transaction and are persisted to the stage's changelog in the
// same transaction as the outputs, or discarded with it.
type State interface {
	Get(key string) ([]byte, bool)
	Set(key string, value []byte) error
	Delete(key string)
}

// ErrPermanent marks an error no retry can fix.
var ErrPermanent = errors.New("permanent")

// ErrStateTooLarge is returned by State.Set for a key or value above the configured bound.
var ErrStateTooLarge = errors.New("state entry too large")

// Permanent marks err as permanent: the record goes to the dead-letter topic.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}

// IsPermanent reports whether err was marked permanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// Codec turns values into record bytes and back for a topic. schemas.Serde is the
// production implementation.
type Codec interface {
	Encode(topic catalog.Topic, v any) ([]byte, error)
	Decode(topic catalog.Topic, b []byte) (any, error)
}

// paymentIDer is implemented by records that belong to a payment, for log lines.
type paymentIDer interface{ PaymentIDValue() string }

func paymentOf(v any) string {
	if p, ok := v.(paymentIDer); ok {
		return p.PaymentIDValue()
	}
	return ""
}
