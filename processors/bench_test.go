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

// testOneHop copies n records through one hop at batch 1000 and returns how long the hop
// took from start to committed end.
func testOneHop(tb testing.TB, n int) time.Duration {
	c := newCluster(tb, 4)
	c.topics(tb, []catalog.Topic{topicIn, topicOut})
	produced := c.produce(tb, topicIn, n, 1000, nil)
	begun := time.Now()
	r := start(testConfig(c, "bench", 1000), copyHop(nil), testMetrics(tb), quietLog())
	c.waitCaughtUp(tb, groupA, topicIn, 5*time.Minute)
	took := time.Since(begun)
	r.stop(tb)
	checkExactlyOnce(tb, decodeAll(tb, c.readAll(tb, topicOut)), produced, 1)
	return took
}

func TestOneHop(t *testing.T) {
	t.Parallel()
	testOneHop(t, 10_000)
}

// BenchmarkOneHop reports records/s of one exactly-once hop at 1000 records per
// transaction, including the group join; run with -benchtime=200000x for a stable figure.
func BenchmarkOneHop(b *testing.B) {
	took := testOneHop(b, b.N)
	b.ReportMetric(float64(b.N)/took.Seconds(), "records/s")
}

// BenchmarkOneHopAvro is BenchmarkOneHop with payment records in the Avro serde, decoded
// and re-encoded by the hop, as the real stages will run.
func BenchmarkOneHopAvro(b *testing.B) {
	c := newCluster(b, 4)
	in, out := catalog.Topic("bench.requested"), catalog.Topic("bench.validated")
	c.topics(b, []catalog.Topic{in, out})
	serde, err := schemas.NewSerde(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	codec := topicAlias{serde: serde, alias: map[catalog.Topic]catalog.Topic{
		in: catalog.PaymentsRequested, out: catalog.PaymentsValidated}}
	cl := c.k.Client(b, kgo.MaxBufferedRecords(100_000))
	for i := range b.N {
		p := &schemas.Payment{Meta: schemas.Meta{EventID: fmt.Sprintf("e%d", i), PaymentID: fmt.Sprintf("p%d", i)},
			CreatedAt: time.Now(), Subsidiary: "ps", Channel: "app", IdempotencyKey: fmt.Sprintf("k%d", i),
			Type: "p2p", PayerWallet: fmt.Sprintf("wal-%d", i%1000), PayeeWallet: "wal-x",
			Amount: schemas.Money{Amount: decimal.New(int64(i+1), -2), Currency: "EUR"}}
		v, err := codec.Encode(in, p)
		if err != nil {
			b.Fatal(err)
		}
		cl.Produce(context.Background(), &kgo.Record{Topic: string(in), Key: []byte(p.PayerWallet), Value: v}, nil)
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	validate := StageFunc(func(_ context.Context, in *Input, _ State) (Result, error) {
		p := in.Value.(*schemas.Payment)
		p.Validation = &schemas.Validation{Result: "accepted", ReasonCodes: []string{}, At: p.CreatedAt}
		return Result{Outputs: []Output{{Topic: out, Value: p}}}, nil
	})
	hop := Hop{Stages: []Definition{{Name: "validation", Input: in, Group: groupA, Outputs: []catalog.Topic{out}, Stage: validate}}}
	begun := time.Now()
	w := newWorker(testConfig(c, "bench", 1000), hop, codec, testMetrics(b), quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.run(ctx) }()
	c.waitCaughtUp(b, groupA, in, 5*time.Minute)
	took := time.Since(begun)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/took.Seconds(), "records/s")
}
