package localkafka

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"syscall"
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

	var conns connNetworks
	mem, err := kgo.NewClient(b.Dialer(), kgo.SeedBrokers(b.ListenAddrs()...), kgo.WithHooks(&conns),
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
	// The seed broker's address and the one the broker gives in its metadata both.
	if got := conns.get(); len(got) < 2 || slices.ContainsFunc(got, func(n string) bool { return n != "pipe" }) {
		t.Fatalf("the in-process client's connections went over %v, want pipes only", got)
	}
	if b.InMemoryConns() != int64(len(conns.get())) {
		t.Fatalf("%d connections through memory, the client made %d", b.InMemoryConns(), len(conns.get()))
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

// connNetworks records the network of every connection a client makes.
type connNetworks struct {
	mu   sync.Mutex
	nets []string
}

func (c *connNetworks) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, conn net.Conn, err error) {
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nets = append(c.nets, conn.RemoteAddr().Network())
}

func (c *connNetworks) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nets)
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
	// Refused, as a closed port is: kgo gives up on that at once, where it would retry
	// net.ErrClosed for up to 30 s.
	if c, err := b.ln.dial(ctx, "tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dialling a closed broker: %v, want ECONNREFUSED", err)
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
