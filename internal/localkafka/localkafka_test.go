package localkafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The broker drops records past a topic's retention within a sweep or two, not after
// kfake's hourly default.
func TestRetentionIsAppliedEverySweep(t *testing.T) {
	t.Parallel()
	const sweep = 500 * time.Millisecond
	c, err := Start(Options{Addr: "127.0.0.1:0", SweepEvery: sweep})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*sweep)
	defer cancel()
	adm := kadm.NewClient(cl)
	retention := "1000"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": &retention}, "short"); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "short", Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for {
		starts, err := adm.ListStartOffsets(ctx, "short")
		if err == nil {
			if o, ok := starts.Lookup("short", 0); ok && o.Err == nil && o.Offset == 10 {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("records still kept %v after they expired (start offsets %v, %v)", 4*sweep, starts, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
