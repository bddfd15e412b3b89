package processors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/schemas/catalog"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// msg is the record test stages read and write, JSON encoded by testCodec.
type msg struct {
	ID     string `json:"id"`
	Wallet string `json:"wallet"`
	Seq    int    `json:"seq"` // position among the wallet's records
	Count  int    `json:"count,omitempty"`
	Hops   int    `json:"hops,omitempty"`
	Poison string `json:"poison,omitempty"`
}

// testCodec encodes msg as JSON; anything that is not a JSON msg fails to decode.
type testCodec struct{}

func (testCodec) Encode(_ catalog.Topic, v any) ([]byte, error) {
	m, ok := v.(msg)
	if !ok {
		return nil, fmt.Errorf("encoding %T: not a msg", v)
	}
	return json.Marshal(m)
}

func (testCodec) Decode(_ catalog.Topic, b []byte) (any, error) {
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m.ID == "" {
		return nil, errors.New("msg without id")
	}
	return m, nil
}

// cluster is one test's broker with its test topics.
type cluster struct {
	k          *testenv.Kafka
	partitions int32
	adm        *kadm.Client
}

func newCluster(t testing.TB, partitions int32) *cluster {
	t.Helper()
	k := testenv.NewKafka(t, testenv.Partitions(1),
		testenv.FakeOptions(kfake.GroupMinSessionTimeout(100*time.Millisecond)))
	return &cluster{k: k, partitions: partitions, adm: kadm.NewClient(k.Client(t))}
}

// topics creates delete-policy topics with their DLQs, and compacted changelogs of groups.
func (c *cluster) topics(t testing.TB, ts []catalog.Topic, changelogs ...catalog.Group) {
	t.Helper()
	ctx := context.Background()
	for _, tp := range ts {
		for _, name := range []catalog.Topic{tp, tp.DLQ()} {
			if _, err := c.adm.CreateTopic(ctx, c.partitions, -1, nil, string(name)); err != nil {
				t.Fatalf("creating %s: %v", name, err)
			}
		}
	}
	for _, g := range changelogs {
		compact := catalog.CleanupCompact
		if _, err := c.adm.CreateTopic(ctx, c.partitions, -1, map[string]*string{"cleanup.policy": &compact}, string(g.Changelog())); err != nil {
			t.Fatalf("creating %s: %v", g.Changelog(), err)
		}
	}
}

// produce writes n msgs to topic over wallets keys, returning how many each wallet got.
func (c *cluster) produce(t testing.TB, topic catalog.Topic, n, wallets int, seqStart map[string]int) map[string]int {
	t.Helper()
	cl := c.k.Client(t, kgo.MaxBufferedRecords(100_000), kgo.ProducerLinger(5*time.Millisecond))
	seq := map[string]int{}
	for w, s := range seqStart {
		seq[w] = s
	}
	var mu sync.Mutex
	var perr error
	for i := range n {
		w := "w" + strconv.Itoa(i%wallets)
		m := msg{ID: fmt.Sprintf("%s-%d", w, seq[w]), Wallet: w, Seq: seq[w]}
		seq[w]++
		b, _ := json.Marshal(m)
		cl.Produce(context.Background(), &kgo.Record{Topic: string(topic), Key: []byte(w), Value: b},
			func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					perr = err
					mu.Unlock()
				}
			})
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatalf("flushing: %v", err)
	}
	if perr != nil {
		t.Fatalf("producing: %v", perr)
	}
	return seq
}

func (c *cluster) produceRaw(t testing.TB, topic catalog.Topic, key string, values ...[]byte) {
	t.Helper()
	cl := c.k.Client(t)
	for _, v := range values {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: string(topic), Key: []byte(key), Value: v}).FirstErr(); err != nil {
			t.Fatalf("producing: %v", err)
		}
	}
}

// waitCaughtUp waits until group has committed offsets at the end of topic.
func (c *cluster) waitCaughtUp(t testing.TB, group catalog.Group, topic catalog.Topic, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	for {
		ends, err := c.adm.ListEndOffsets(ctx, string(topic))
		if err != nil {
			t.Fatal(err)
		}
		offs, err := c.adm.FetchOffsets(ctx, string(group))
		behind := int64(0)
		if err == nil {
			ends.Each(func(e kadm.ListedOffset) {
				o, ok := offs.Lookup(e.Topic, e.Partition)
				if !ok {
					behind += e.Offset
				} else {
					behind += e.Offset - o.At
				}
			})
		}
		if err == nil && behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s still %d records behind on %s after %v (err %v)", group, behind, topic, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readAll reads every committed record of topic, waiting for open transactions to end.
func (c *cluster) readAll(t testing.TB, topic catalog.Topic) []*kgo.Record {
	t.Helper()
	return c.read(t, topic, kgo.ReadCommitted())
}

// read reads every record of topic at the isolation level, waiting for open transactions.
func (c *cluster) read(t testing.TB, topic catalog.Topic, isolation kgo.IsolationLevel) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	for p := range c.partitions {
		st, err := restoreRecords(ctx, c, topic, p, isolation)
		if err != nil {
			t.Fatalf("reading %s/%d: %v", topic, p, err)
		}
		out = append(out, st...)
	}
	return out
}

// restoreRecords reads one partition like the runner restores a changelog, but keeps every
// record.
func restoreRecords(ctx context.Context, c *cluster, topic catalog.Topic, p int32, isolation kgo.IsolationLevel) ([]*kgo.Record, error) {
	var recs []*kgo.Record
	for {
		hw, err := c.adm.ListEndOffsets(ctx, string(topic))
		if err != nil {
			return nil, err
		}
		lso, err := c.adm.ListCommittedOffsets(ctx, string(topic))
		if err != nil {
			return nil, err
		}
		h, _ := hw.Lookup(string(topic), p)
		l, _ := lso.Lookup(string(topic), p)
		if h.Offset == 0 {
			return nil, nil
		}
		if l.Offset < h.Offset {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.k.Brokers...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{string(topic): {p: kgo.NewOffset().AtStart()}}),
			kgo.FetchIsolationLevel(isolation), kgo.KeepControlRecords())
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		for {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			done := false
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset >= h.Offset-1 {
					done = true
				}
				if !r.Attrs.IsControl() && r.Offset < h.Offset {
					recs = append(recs, r)
				}
			})
			if done {
				return recs, nil
			}
		}
	}
}

func decodeAll(t testing.TB, recs []*kgo.Record) []msg {
	t.Helper()
	out := make([]msg, len(recs))
	for i, r := range recs {
		if err := json.Unmarshal(r.Value, &out[i]); err != nil {
			t.Fatalf("output %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
	}
	return out
}

// testConfig is a runner configuration sized for tests on a small shared machine.
func testConfig(c *cluster, instance string, batch int) Config {
	return Config{
		Brokers:            c.k.Brokers,
		InstanceID:         instance,
		BatchSize:          batch,
		TransactionTimeout: 3 * time.Second,
		SessionTimeout:     1500 * time.Millisecond,
		HeartbeatInterval:  150 * time.Millisecond,
		RetryBackoff:       10 * time.Millisecond,
		RetryBackoffMax:    200 * time.Millisecond,
		StopTimeout:        10 * time.Second,
	}
}

func testMetrics(t testing.TB) *Metrics {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// running is a worker started in the background.
type running struct {
	w      *worker
	cancel context.CancelFunc
	done   chan error
}

func start(cfg Config, hop Hop, m *Metrics, log *slog.Logger, opts ...func(*worker)) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: newWorker(cfg, hop, testCodec{}, m, log), cancel: cancel, done: make(chan error, 1)}
	for _, o := range opts {
		o(r.w)
	}
	go func() { r.done <- r.w.run(ctx) }()
	return r
}

// stop stops the worker gracefully and returns how long it took.
func (r *running) stop(t testing.TB) time.Duration {
	t.Helper()
	begun := time.Now()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("worker stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop within 30s")
	}
	return time.Since(begun)
}

// crash kills the worker like a crash: no transaction end, no group leave.
func (r *running) crash(t testing.TB) {
	t.Helper()
	r.w.kill()
	select {
	case err := <-r.done:
		if err != nil && !errors.Is(err, errKilled) {
			t.Errorf("killed worker returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("killed worker did not return within 30s")
	}
	r.cancel()
}
