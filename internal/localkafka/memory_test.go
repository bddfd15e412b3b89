package localkafka

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A client of this process reaches the broker through memory, one elsewhere through TCP,
// and each reads what the other wrote, in a transaction and out of one.
func TestInProcessClientsShareTheBrokerWithTCPClients(t *testing.T) {
	t.Parallel()
	b, err := Start(Options{Addr: "127.0.0.1:0", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	mem, err := kgo.NewClient(b.Dialer(), kgo.SeedBrokers(b.ListenAddrs()...),
		kgo.TransactionalID("memory"), kgo.DefaultProduceTopic("from-memory"))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if _, err := kadm.NewClient(mem).CreateTopics(ctx, 1, 1, nil, "from-memory", "from-tcp"); err != nil {
		t.Fatal(err)
	}
	if err := mem.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a", "b", "c"} {
		if err := mem.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := mem.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if b.InMemoryConns() == 0 {
		t.Fatal("the in-process client dialled the broker over TCP")
	}

	tcp, err := kgo.NewClient(kgo.SeedBrokers(b.ListenAddrs()...), kgo.ConsumeTopics("from-memory"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.DefaultProduceTopic("from-tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if got := values(ctx, t, tcp, 3); got != "abc" {
		t.Fatalf("TCP client read %q from the in-process one, want abc", got)
	}
	if err := tcp.ProduceSync(ctx, &kgo.Record{Value: []byte("d")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	mem.AddConsumeTopics("from-tcp")
	if got := values(ctx, t, mem, 1); got != "d" {
		t.Fatalf("in-process client read %q from the TCP one, want d", got)
	}
}

func values(ctx context.Context, t *testing.T, cl *kgo.Client, n int) string {
	t.Helper()
	var got string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %q, waiting for %d records: %v", got, n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetching %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got += string(r.Value) })
	}
	return got
}

// Once the broker is closed, dialling it through memory fails at once rather than waiting
// for an Accept that will never come; other addresses are still dialled over TCP.
func TestInMemoryDialAfterClose(t *testing.T) {
	t.Parallel()
	b, err := Start(Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.ListenAddrs()[0]
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := b.ln.dial(ctx, "tcp", addr); !errors.Is(err, net.ErrClosed) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dialling a closed broker: %v, want net.ErrClosed", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the dial waited for its context")
	}
	c, err := b.ln.dial(ctx, "tcp", other.Addr().String())
	if err != nil {
		t.Fatalf("dialling another address: %v", err)
	}
	c.Close()
	if n := b.InMemoryConns(); n != 0 {
		t.Fatalf("%d connections through memory, want none", n)
	}
}
