package processors

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// TestPaymentsFlowThroughTheRunnerWithTheAvroSerde runs a stage on the catalog's payment
// topics with the production codec, and checks outputs land on their wallet's partition.
func TestPaymentsFlowThroughTheRunnerWithTheAvroSerde(t *testing.T) {
	t.Parallel()
	const partitions = 3
	k := newCluster(t, partitions)
	// The catalog topics of this cluster were made with one partition; use fresh ones.
	in, out := catalog.Topic("it.requested"), catalog.Topic("it.validated")
	k.topics(t, []catalog.Topic{in, out})
	serde, err := schemas.NewSerde(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	codec := topicAlias{serde: serde, alias: map[catalog.Topic]catalog.Topic{
		in: catalog.PaymentsRequested, out: catalog.PaymentsValidated}}

	cl := k.k.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 30 {
		p := &schemas.Payment{Meta: schemas.Meta{EventID: fmt.Sprintf("e%d", i), PaymentID: fmt.Sprintf("p%d", i)},
			CreatedAt: time.Now(), Type: "p2p", PayerWallet: fmt.Sprintf("wal-%d", i%7), PayeeWallet: "wal-x",
			Amount: schemas.Money{Amount: decimal.New(int64(i+1), -2), Currency: "EUR"}}
		b, err := codec.Encode(in, p)
		if err != nil {
			t.Fatal(err)
		}
		// Everything goes to input partition 0: the outputs must still follow their key.
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: string(in), Partition: 0, Key: []byte(p.PayerWallet), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	validate := StageFunc(func(_ context.Context, in *Input, _ State) (Result, error) {
		p := in.Value.(*schemas.Payment)
		p.EventID += "-v"
		p.Validation = &schemas.Validation{Result: "accepted", ReasonCodes: []string{}, At: time.Now()}
		return Result{Outputs: []Output{{Topic: out, Key: []byte(p.PayerWallet), Value: p}}}, nil
	})
	hop := Hop{Stages: []Definition{{Name: "validation", Input: in, Group: groupA, Outputs: []catalog.Topic{out}, Stage: validate}}}
	w := newWorker(testConfig(k, "w", 10), hop, codec, testMetrics(t), quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.run(ctx) }()
	k.waitCaughtUp(t, groupA, in, 30*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	keyed := kgo.StickyKeyPartitioner(nil).ForTopic(string(out))
	recs := k.readAll(t, out)
	if len(recs) != 30 {
		t.Fatalf("%d outputs, want 30", len(recs))
	}
	for _, r := range recs {
		v, err := codec.Decode(out, r.Value)
		if err != nil {
			t.Fatal(err)
		}
		p := v.(*schemas.Payment)
		if p.Validation == nil || p.Validation.Result != "accepted" || string(r.Key) != p.PayerWallet {
			t.Errorf("output %+v with key %s", p, r.Key)
		}
		if want := keyed.Partition(r, partitions); int32(want) != r.Partition {
			t.Errorf("wallet %s on partition %d, the key hashes to %d", r.Key, r.Partition, want)
		}
	}
}

// topicAlias lets a test use fresh topics with the catalog topics' schemas.
type topicAlias struct {
	serde *schemas.Serde
	alias map[catalog.Topic]catalog.Topic
}

func (a topicAlias) Encode(t catalog.Topic, v any) ([]byte, error) {
	return a.serde.Encode(a.alias[t], v)
}
func (a topicAlias) Decode(t catalog.Topic, b []byte) (any, error) {
	return a.serde.Decode(a.alias[t], b)
}
