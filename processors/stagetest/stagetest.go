// Package stagetest runs stages through the real exactly-once runner on a fresh kfake
// cluster with the production codec, for the stages' own tests: produce payments to a
// stage's input, run it, wait until it caught up, and read what it committed.
package stagetest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// Stream is one test's Kafka cluster with the catalog topics and the production codec.
type Stream struct {
	t     testing.TB
	k     *testenv.Kafka
	adm   *kadm.Client
	serde *schemas.Serde
	cl    *kgo.Client
}

// NewStream starts a cluster with the catalog topics (2 partitions).
func NewStream(t testing.TB) *Stream {
	t.Helper()
	k := testenv.NewKafka(t, testenv.Partitions(2), testenv.FakeOptions(kfake.GroupMinSessionTimeout(100*time.Millisecond)))
	serde, err := schemas.NewSerde(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return &Stream{t: t, k: k, adm: kadm.NewClient(k.Client(t)), serde: serde, cl: k.Client(t)}
}

// Serde is the production codec the stream encodes and decodes with.
func (s *Stream) Serde() *schemas.Serde { return s.serde }

// Client is a plain client of the cluster.
func (s *Stream) Client() *kgo.Client { return s.cl }

// Produce writes payments to topic keyed like the ingress keys them.
func (s *Stream) Produce(topic catalog.Topic, ps ...*schemas.Payment) {
	s.t.Helper()
	for _, p := range ps {
		b, err := s.serde.Encode(topic, p)
		if err != nil {
			s.t.Fatal(err)
		}
		key := p.PayerWallet
		if key == "" {
			key = p.PayeeWallet
		}
		if err := s.cl.ProduceSync(context.Background(), &kgo.Record{Topic: string(topic), Key: []byte(key), Value: b}).FirstErr(); err != nil {
			s.t.Fatal(err)
		}
	}
}

// Runner is a stage runner started in the background.
type Runner struct {
	cancel context.CancelFunc
	done   chan error
}

// Run starts a runner of defs as worker instance.
func (s *Stream) Run(instance string, stages []string, fuse bool, defs ...processors.Definition) *Runner {
	s.t.Helper()
	reg, err := processors.NewRegistry(defs...)
	if err != nil {
		s.t.Fatal(err)
	}
	hops, err := reg.Plan(stages, fuse)
	if err != nil {
		s.t.Fatal(err)
	}
	m, err := processors.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		s.t.Fatal(err)
	}
	rn, err := processors.NewRunner(processors.Config{
		Brokers: s.k.Brokers, InstanceID: instance, BatchSize: 100,
		TransactionTimeout: 3 * time.Second, SessionTimeout: 1500 * time.Millisecond, HeartbeatInterval: 150 * time.Millisecond,
		RetryBackoff: 10 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond, StopTimeout: 10 * time.Second,
	}, s.serde, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- rn.Run(ctx, hops...) }()
	s.t.Cleanup(func() { r.Stop(s.t) })
	return r
}

// Stop stops the runner gracefully and fails the test if it ended with an error.
func (r *Runner) Stop(t testing.TB) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("runner stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("runner did not stop within 30s")
	}
}

// WaitCaughtUp waits until group has committed offsets at the end of topic: everything
// produced to topic so far has been processed and its outputs committed.
func (s *Stream) WaitCaughtUp(group catalog.Group, topic catalog.Topic) {
	s.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ends, err := s.adm.ListEndOffsets(ctx, string(topic))
		if err != nil {
			s.t.Fatal(err)
		}
		offs, ferr := s.adm.FetchOffsets(ctx, string(group))
		behind := int64(0)
		ends.Each(func(e kadm.ListedOffset) {
			o, ok := offs.Lookup(e.Topic, e.Partition)
			if ferr != nil || !ok {
				behind += e.Offset
			} else {
				behind += e.Offset - o.At
			}
		})
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("group %s still %d records behind on %s", group, behind, topic)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ReadAll returns every committed record of topic decoded, once no transaction is open
// on it.
func (s *Stream) ReadAll(topic catalog.Topic) []any {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ends kadm.ListedOffsets
	for {
		hw, err := s.adm.ListEndOffsets(ctx, string(topic))
		if err != nil {
			s.t.Fatal(err)
		}
		lso, err := s.adm.ListCommittedOffsets(ctx, string(topic))
		if err != nil {
			s.t.Fatal(err)
		}
		stable := true
		hw.Each(func(h kadm.ListedOffset) {
			if l, _ := lso.Lookup(h.Topic, h.Partition); l.Offset < h.Offset {
				stable = false
			}
		})
		if stable {
			ends = hw
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	parts := map[int32]kgo.Offset{}
	left := map[int32]int64{}
	ends.Each(func(e kadm.ListedOffset) {
		if e.Offset > 0 {
			parts[e.Partition] = kgo.NewOffset().AtStart()
			left[e.Partition] = e.Offset
		}
	})
	if len(parts) == 0 {
		return nil
	}
	cl := s.k.Client(s.t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{string(topic): parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	var out []any
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			s.t.Fatalf("reading %s: %v", topic, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset == end-1 {
				delete(left, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			v, err := s.serde.Decode(topic, r.Value)
			if err != nil {
				s.t.Fatalf("decoding %s/%d@%d: %v", topic, r.Partition, r.Offset, err)
			}
			out = append(out, v)
		})
	}
	return out
}

// ByPayment indexes decoded payments and outcomes by payment id, counting duplicates.
func ByPayment(vs []any) (map[string]*schemas.Payment, map[string]*schemas.PaymentOutcome, map[string]int) {
	ps, os, n := map[string]*schemas.Payment{}, map[string]*schemas.PaymentOutcome{}, map[string]int{}
	for _, v := range vs {
		switch x := v.(type) {
		case *schemas.Payment:
			ps[x.PaymentID] = x
			n[x.PaymentID]++
		case *schemas.PaymentOutcome:
			os[x.PaymentID] = x
			n[x.PaymentID]++
		}
	}
	return ps, os, n
}
