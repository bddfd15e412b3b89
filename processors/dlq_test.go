package processors

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/schemas/catalog"
)

// poisonStage panics or fails permanently on msgs that ask for it.
var poisonStage = StageFunc(func(_ context.Context, in *Input, _ State) (Result, error) {
	m := in.Value.(msg)
	switch m.Poison {
	case "panic":
		panic("boom on " + m.ID)
	case "permanent":
		return Result{}, Permanent(errors.New("unknown wallet"))
	case "reject":
		m.Hops++
		return Result{Outputs: []Output{{Topic: topicOut, Value: m}}, Rejected: "LIMIT_EXCEEDED"}, nil
	}
	m.Hops++
	return Result{Outputs: []Output{{Topic: topicOut, Value: m}}}, nil
})

func TestPoisonRecordsGoToTheDLQAndThePartitionMoves(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	c.topics(t, []catalog.Topic{topicIn, topicOut})
	enc := func(m msg) []byte { b, _ := json.Marshal(m); return b }
	c.produceRaw(t, topicIn, "w1",
		enc(msg{ID: "a", Wallet: "w1", Seq: 0}),
		[]byte("{not json"),
		enc(msg{ID: "b", Wallet: "w1", Seq: 1}),
		enc(msg{ID: "p", Wallet: "w1", Poison: "panic"}),
		enc(msg{ID: "c", Wallet: "w1", Seq: 2}),
		enc(msg{ID: "x", Wallet: "w1", Poison: "permanent"}),
		enc(msg{ID: "d", Wallet: "w1", Seq: 3, Poison: "reject"}),
	)
	m := testMetrics(t)
	hop := Hop{Stages: []Definition{{Name: "poison", Input: topicIn, Group: groupA,
		Outputs: []catalog.Topic{topicOut}, Stage: poisonStage}}}
	r := start(testConfig(c, "w", 100), hop, m, quietLog())
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	r.stop(t)

	var ids []string
	for _, o := range decodeAll(t, c.readAll(t, topicOut)) {
		ids = append(ids, o.ID)
	}
	if got := strings.Join(ids, ","); got != "a,b,c,d" {
		t.Errorf("outputs %s, want a,b,c,d in order", got)
	}
	dlq := c.readAll(t, topicIn.DLQ())
	want := []struct {
		offset int64
		err    string
	}{{1, "decoding"}, {3, "stage panicked: boom on p"}, {5, "unknown wallet"}}
	if len(dlq) != len(want) {
		t.Fatalf("DLQ holds %d records, want %d", len(dlq), len(want))
	}
	for i, w := range want {
		h := map[string]string{}
		for _, kv := range dlq[i].Headers {
			h[kv.Key] = string(kv.Value)
		}
		if h[HeaderDLQStage] != "poison" || h[HeaderDLQTopic] != string(topicIn) ||
			h[HeaderDLQPartition] != "0" || h[HeaderDLQOffset] != strconv.FormatInt(w.offset, 10) ||
			!strings.Contains(h[HeaderDLQError], w.err) || h[HeaderDLQTime] == "" {
			t.Errorf("DLQ record %d headers %v, want stage poison, origin %s/0@%d, error containing %q",
				i, h, topicIn, w.offset, w.err)
		}
		if string(dlq[i].Key) != "w1" {
			t.Errorf("DLQ record %d key %q, want the original w1", i, dlq[i].Key)
		}
	}
	if v := testutil.ToFloat64(m.dlq.WithLabelValues("poison", string(topicIn.DLQ()))); v != 3 {
		t.Errorf("dlq metric %v, want 3", v)
	}
	if v := testutil.ToFloat64(m.rejections.WithLabelValues("poison", "LIMIT_EXCEEDED")); v != 1 {
		t.Errorf("rejections metric %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.recordsOut.WithLabelValues("poison", string(topicOut))); v != 4 {
		t.Errorf("records out metric %v, want 4", v)
	}
}

func TestTransientErrorsRetryInOrderWithoutCommitting(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	c.topics(t, []catalog.Topic{topicIn, topicOut})
	produced := c.produce(t, topicIn, 2000, 20, nil)

	var mu sync.Mutex
	failures := 0
	down := true // the "database" is down until the stage has failed 5 times
	stage := StageFunc(func(_ context.Context, in *Input, _ State) (Result, error) {
		m := in.Value.(msg)
		mu.Lock()
		defer mu.Unlock()
		if m.Seq == 50 && down {
			failures++
			down = failures < 5
			return Result{}, errors.New("database is down")
		}
		m.Hops++
		return Result{Outputs: []Output{{Topic: topicOut, Value: m}}}, nil
	})
	m := testMetrics(t)
	hop := Hop{Stages: []Definition{{Name: "flaky", Input: topicIn, Group: groupA,
		Outputs: []catalog.Topic{topicOut}, Stage: stage}}}
	r := start(testConfig(c, "w", 200), hop, m, quietLog())
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	r.stop(t)
	checkExactlyOnce(t, decodeAll(t, c.readAll(t, topicOut)), produced, 1)
	if n := testutil.ToFloat64(m.retries.WithLabelValues("flaky")); n < 5 {
		t.Errorf("retries metric %v, want at least 5", n)
	}
	if got := len(c.readAll(t, topicIn.DLQ())); got != 0 {
		t.Errorf("a transient error sent %d records to the DLQ", got)
	}
}

func TestFusedStagesWriteTheSameRecords(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	c.topics(t, []catalog.Topic{topicIn, topicMid, topicOut})
	produced := c.produce(t, topicIn, 3000, 30, nil)
	reg, err := NewRegistry(
		Definition{Name: "first", Input: topicIn, Group: groupA, Outputs: []catalog.Topic{topicMid}, Stage: copyStage(topicMid, nil)},
		Definition{Name: "second", Input: topicMid, Group: groupB, Outputs: []catalog.Topic{topicOut}, Stage: copyStage(topicOut, nil)},
	)
	if err != nil {
		t.Fatal(err)
	}
	hops, err := reg.Plan([]string{"first", "second"}, true)
	if err != nil || len(hops) != 1 {
		t.Fatalf("Plan = %d hops, %v; want one fused hop", len(hops), err)
	}
	r := start(testConfig(c, "w", 500), hops[0], testMetrics(t), quietLog())
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	r.stop(t)
	checkExactlyOnce(t, decodeAll(t, c.readAll(t, topicMid)), produced, 1)
	checkExactlyOnce(t, decodeAll(t, c.readAll(t, topicOut)), produced, 2)
}

func TestGracefulStopEndsTheTransactionAndLeavesTheGroup(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	c.topics(t, []catalog.Topic{topicIn, topicOut})
	produced := c.produce(t, topicIn, 5000, 50, nil)
	slow := StageFunc(func(ctx context.Context, in *Input, st State) (Result, error) {
		time.Sleep(100 * time.Microsecond)
		return copyStage(topicOut, nil).Process(ctx, in, st)
	})
	hop := Hop{Stages: []Definition{{Name: "slow", Input: topicIn, Group: groupA,
		Outputs: []catalog.Topic{topicOut}, Stage: slow}}}
	cfg := testConfig(c, "w", 1000)
	cfg.SessionTimeout = 30 * time.Second // only an explicit leave can empty the group in time
	r := start(cfg, hop, testMetrics(t), quietLog())
	time.Sleep(200 * time.Millisecond)
	took := r.stop(t)
	t.Logf("graceful stop took %v", took)
	if took > 10*time.Second {
		t.Errorf("stop took %v, want at most 10s", took)
	}
	groups, err := c.adm.DescribeGroups(context.Background(), string(groupA))
	if err != nil {
		t.Fatal(err)
	}
	if g := groups[string(groupA)]; len(g.Members) != 0 {
		t.Errorf("group still has %d members after stop", len(g.Members))
	}
	// What the stopped worker committed plus what a successor does is each record once.
	r = start(cfg, hop, testMetrics(t), quietLog())
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	r.stop(t)
	checkExactlyOnce(t, decodeAll(t, c.readAll(t, topicOut)), produced, 1)
}

func TestOutputsKeepInputHeadersExceptDeadLetterOnes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	c.topics(t, []catalog.Topic{topicIn, topicOut})
	b, _ := json.Marshal(msg{ID: "a", Wallet: "w1"})
	// A record replayed from a DLQ still carries the dead-letter headers.
	rec := &kgo.Record{Topic: string(topicIn), Key: []byte("w1"), Value: b, Headers: []kgo.RecordHeader{
		{Key: "traceparent", Value: []byte("00-abc-def-01")}, {Key: HeaderDLQStage, Value: []byte("poison")}}}
	if err := c.k.Client(t).ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := start(testConfig(c, "w", 10), copyHop(nil), testMetrics(t), quietLog())
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	r.stop(t)
	out := c.readAll(t, topicOut)
	if len(out) != 1 {
		t.Fatalf("%d outputs, want 1", len(out))
	}
	h := map[string]string{}
	for _, kv := range out[0].Headers {
		h[kv.Key] = string(kv.Value)
	}
	if h["traceparent"] != "00-abc-def-01" || h[HeaderDLQStage] != "" {
		t.Errorf("output headers %v, want traceparent kept and no dlq.* header", h)
	}
}
