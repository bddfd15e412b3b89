package processors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/paystream/paystream/schemas/catalog"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

// batchStage prepares whole batches, as the posting stage does with the ledger: Process
// answers from what Prepare decided, and Prepare fails a few times like a database would.
type batchStage struct {
	mu        sync.Mutex
	prepared  map[string]bool
	batches   int
	maxBatch  int
	failFirst int
	unseen    int           // Process calls for inputs Prepare had not seen
	delay     time.Duration // how long Prepare takes, as a slow database would
}

func (b *batchStage) Prepare(_ context.Context, ins []*Input) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	time.Sleep(b.delay)
	if b.failFirst > 0 {
		b.failFirst--
		return errors.New("database is down")
	}
	b.batches++
	b.maxBatch = max(b.maxBatch, len(ins))
	for _, in := range ins {
		b.prepared[in.Value.(msg).ID] = true
	}
	return nil
}

func (b *batchStage) Process(_ context.Context, in *Input, _ State) (Result, error) {
	m := in.Value.(msg)
	b.mu.Lock()
	if !b.prepared[m.ID] {
		b.unseen++
	}
	b.mu.Unlock()
	m.Hops++
	return Result{Outputs: []Output{{Topic: topicOut, Value: m}}}, nil
}

func TestBatchPreparerSeesWholeBatchesAndRetriesThem(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	c.topics(t, []catalog.Topic{topicIn, topicOut})
	produced := c.produce(t, topicIn, 3000, 30, nil)

	stage := &batchStage{prepared: map[string]bool{}, failFirst: 3}
	m := testMetrics(t)
	hop := Hop{Stages: []Definition{{Name: "batched", Input: topicIn, Group: groupA,
		Outputs: []catalog.Topic{topicOut}, Stage: stage}}}
	r := start(testConfig(c, "w", 500), hop, m, quietLog())
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	r.stop(t)

	checkExactlyOnce(t, decodeAll(t, c.readAll(t, topicOut)), produced, 1)
	if stage.unseen != 0 {
		t.Errorf("%d records were processed without being prepared", stage.unseen)
	}
	if stage.maxBatch < 2 {
		t.Errorf("largest prepared batch %d: Prepare is not seeing batches", stage.maxBatch)
	}
	if got := len(stage.prepared); got != 3000 {
		t.Errorf("prepared %d distinct records, want 3000", got)
	}
}

// In a fused hop the runner takes the batch one stage at a time, so a BatchPreparer that
// is not the hop's first stage still sees every item of the batch before processing it.
func TestBatchPreparerLaterInAFusedHopSeesWholeBatches(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	c.topics(t, []catalog.Topic{topicIn, topicMid, topicOut})
	produced := c.produce(t, topicIn, 2000, 20, nil)

	stage := &batchStage{prepared: map[string]bool{}, failFirst: 2}
	hop := Hop{Stages: []Definition{
		{Name: "first", Input: topicIn, Group: groupA, Outputs: []catalog.Topic{topicMid}, Stage: copyStage(topicMid, nil)},
		{Name: "batched", Input: topicMid, Group: groupB, Outputs: []catalog.Topic{topicOut}, Stage: stage},
	}}
	r := start(testConfig(c, "w", 500), hop, testMetrics(t), quietLog())
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	r.stop(t)

	checkExactlyOnce(t, decodeAll(t, c.readAll(t, topicMid)), produced, 1)
	if stage.unseen != 0 {
		t.Errorf("%d records were processed by the second stage without being prepared", stage.unseen)
	}
	if stage.maxBatch < 2 {
		t.Errorf("largest prepared batch %d: the second stage is not seeing batches", stage.maxBatch)
	}
	if got := len(stage.prepared); got != 2000 {
		t.Errorf("prepared %d distinct records, want 2000", got)
	}
}

// finishStage counts its batches; Finish fails a few times like a database would.
type finishStage struct {
	mu         sync.Mutex
	processed  int // since the last Finish
	finished   int // batches finished
	failFinish int
}

func (f *finishStage) Process(_ context.Context, in *Input, _ State) (Result, error) {
	f.mu.Lock()
	f.processed++
	f.mu.Unlock()
	m := in.Value.(msg)
	m.Hops++
	return Result{Outputs: []Output{{Topic: topicOut, Value: m}}}, nil
}

func (f *finishStage) Finish(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failFinish > 0 {
		f.failFinish--
		return errors.New("database is down")
	}
	if f.processed == 0 {
		return errors.New("Finish called for a batch that processed nothing")
	}
	f.processed = 0
	f.finished++
	return nil
}

// Finish runs once per batch before it commits; a failing Finish aborts the batch, which
// is retried and written once.
func TestBatchFinisherRunsBeforeEachCommit(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	c.topics(t, []catalog.Topic{topicIn, topicOut})
	produced := c.produce(t, topicIn, 2000, 20, nil)

	stage := &finishStage{failFinish: 2}
	m := testMetrics(t)
	hop := Hop{Stages: []Definition{{Name: "finished", Input: topicIn, Group: groupA,
		Outputs: []catalog.Topic{topicOut}, Stage: stage}}}
	r := start(testConfig(c, "w", 300), hop, m, quietLog())
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	r.stop(t)

	checkExactlyOnce(t, decodeAll(t, c.readAll(t, topicOut)), produced, 1)
	if stage.finished < 2000/300 {
		t.Errorf("%d batches finished for 2,000 records in batches of at most 300", stage.finished)
	}
	if stage.failFinish != 0 {
		t.Errorf("Finish was not retried: %d failures left", stage.failFinish)
	}
}

// afterFinish is the second stage of a fused hop: it counts the items it gets while the
// first stage still has processed items it has not finished.
type afterFinish struct {
	first  *finishStage
	early  int
	copied int
}

func (a *afterFinish) Process(_ context.Context, in *Input, _ State) (Result, error) {
	a.first.mu.Lock()
	if a.first.processed > 0 {
		a.early++
	}
	a.first.mu.Unlock()
	a.copied++
	return Result{Outputs: []Output{{Topic: topicOut, Value: in.Value}}}, nil
}

// In a fused hop a stage's Finish runs before the next stage gets the batch: the loyalty
// stage writes its grants there, and the posting stage behind it may give them back.
func TestBatchFinisherRunsBeforeTheNextStage(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	c.topics(t, []catalog.Topic{topicIn, topicMid, topicOut})
	produced := c.produce(t, topicIn, 1000, 10, nil)

	first := &finishStage{failFinish: 1}
	second := &afterFinish{first: first}
	hop := Hop{Stages: []Definition{
		{Name: "finished", Input: topicIn, Group: groupA, Outputs: []catalog.Topic{topicMid}, Stage: &midStage{first}},
		{Name: "after", Input: topicMid, Group: groupB, Outputs: []catalog.Topic{topicOut}, Stage: second},
	}}
	r := start(testConfig(c, "w", 200), hop, testMetrics(t), quietLog())
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	r.stop(t)

	checkExactlyOnce(t, decodeAll(t, c.readAll(t, topicOut)), produced, 1)
	if second.copied < 1000 {
		t.Fatalf("the second stage got %d items, want at least 1,000", second.copied)
	}
	if second.early != 0 {
		t.Errorf("the second stage got %d items before the first stage finished their batch", second.early)
	}
	if first.finished < 1000/200 {
		t.Errorf("%d batches finished for 1,000 records in batches of at most 200", first.finished)
	}
}

// midStage is a finishStage writing to the middle topic.
type midStage struct{ *finishStage }

func (m *midStage) Process(ctx context.Context, in *Input, st State) (Result, error) {
	res, err := m.finishStage.Process(ctx, in, st)
	for i := range res.Outputs {
		res.Outputs[i].Topic = topicMid
	}
	return res, err
}

// Records of a topic a later stage of a fused hop also reads enter the hop at that stage:
// they skip the stages before it, are prepared with the stage's other records, and leave
// exactly once with the rest.
func TestFusedHopTakesOtherTopicsInMidChain(t *testing.T) {
	t.Parallel()
	const topicSide catalog.Topic = "test.side"
	c := newCluster(t, 2)
	c.topics(t, []catalog.Topic{topicIn, topicMid, topicOut, topicSide})
	produced := c.produce(t, topicIn, 1500, 15, nil)
	// The side records continue the sequences of five wallets from 1000, so their ids differ.
	side := c.produce(t, topicSide, 500, 5, map[string]int{"w0": 1000, "w1": 1000, "w2": 1000, "w3": 1000, "w4": 1000})
	stage := &batchStage{prepared: map[string]bool{}}
	reg, err := NewRegistry(
		Definition{Name: "first", Input: topicIn, Group: groupA, Outputs: []catalog.Topic{topicMid}, Stage: copyStage(topicMid, nil)},
		Definition{Name: "second", Input: topicMid, Group: groupB, Outputs: []catalog.Topic{topicOut},
			AlsoReads: []catalog.Topic{topicSide}, Stage: stage},
	)
	if err != nil {
		t.Fatal(err)
	}
	hops, err := reg.Plan([]string{"first", "second"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(hops) != 1 {
		t.Fatalf("planned %d hops, want the two stages fused", len(hops))
	}
	r := start(testConfig(c, "w", 300), hops[0], testMetrics(t), quietLog())
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	c.waitCaughtUp(t, groupA, topicSide, 30*time.Second)
	r.stop(t)

	checkExactlyOnce(t, decodeAll(t, c.readAll(t, topicMid)), produced, 1)
	var fromIn, fromSide []msg
	for _, m := range decodeAll(t, c.readAll(t, topicOut)) {
		if m.Hops == 2 {
			fromIn = append(fromIn, m)
		} else {
			fromSide = append(fromSide, m)
		}
	}
	checkExactlyOnce(t, fromIn, produced, 2)
	// The side records went through the second stage only, once each, in wallet order.
	next := map[string]int{}
	for _, m := range fromSide {
		if m.Hops != 1 || m.Seq != 1000+next[m.Wallet] {
			t.Fatalf("side record %s: %d hops, seq %d; want 1 hop, seq %d", m.ID, m.Hops, m.Seq, 1000+next[m.Wallet])
		}
		next[m.Wallet]++
	}
	for w, n := range side {
		if next[w] != n-1000 {
			t.Errorf("wallet %s: %d side records out, want %d", w, next[w], n-1000)
		}
	}
	if stage.unseen != 0 {
		t.Errorf("%d records were processed without being prepared", stage.unseen)
	}
	if got := len(stage.prepared); got != 2000 {
		t.Errorf("prepared %d distinct records, want 2000", got)
	}
}

// A batch whose newest record is stale is topped up with what arrived since; a fresh one
// is not waited on.
func TestStaleBatchesAreToppedUp(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	c.topics(t, []catalog.Topic{topicIn, topicOut})
	w := newWorker(testConfig(c, "w", 1000), copyHop(nil), testCodec{}, testMetrics(t), quietLog())
	w.topUpWait = 30 * time.Second // returns as soon as records come; the bound only ends a failing test
	sess, err := kgo.NewGroupTransactSession(w.sessionOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	cl := c.k.Client(t)
	produce := func(n int, at time.Time) {
		t.Helper()
		for i := range n {
			r := &kgo.Record{Topic: string(topicIn), Key: []byte("w" + strconv.Itoa(i)), Value: []byte(`{"id":"x"}`), Timestamp: at}
			if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	poll := func(want int) []*kgo.Record {
		t.Helper()
		var recs []*kgo.Record
		for deadline := time.Now().Add(30 * time.Second); len(recs) < want && time.Now().Before(deadline); {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			recs = append(recs, sess.PollRecords(ctx, want-len(recs)).Records()...)
			cancel()
		}
		if len(recs) != want {
			t.Fatalf("polled %d records, want %d", len(recs), want)
		}
		return recs
	}

	produce(10, time.Now().Add(-time.Hour))
	stale := poll(10)
	produce(5, time.Now().Add(-time.Hour))
	// The client's fetch may have been answered by the first of the five alone.
	got := w.topUp(t.Context(), sess, stale).Records()
	if len(got) == 0 || len(got) > 5 {
		t.Fatalf("topping up a stale batch added %d records, want some of the 5 produced since", len(got))
	}
	if rest := 5 - len(got); rest > 0 {
		poll(rest) // the stale ones the top-up left, lest they join the fresh batch below
	}

	produce(3, time.Now().Add(time.Hour)) // fresh by any clock for the rest of the test
	fresh := poll(3)
	produce(2, time.Now().Add(time.Hour))
	begun := time.Now()
	if more := w.topUp(t.Context(), sess, fresh); more != nil {
		t.Errorf("a fresh batch was topped up with %d records", len(more.Records()))
	}
	if took := time.Since(begun); took > 5*time.Second {
		t.Errorf("deciding not to top up a fresh batch took %v", took)
	}
}

// With Linger, records that trickle in while the hop could run a transaction each are
// gathered into few transactions, and every record is still written once, in order; a
// hop idle for longer than Linger, or whose transactions take longer, begins at once.
func TestLingerGathersTrickles(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	c.topics(t, []catalog.Topic{topicIn, topicOut})
	stage := &batchStage{prepared: map[string]bool{}}
	m := testMetrics(t)
	hop := Hop{Stages: []Definition{{Name: "batched", Input: topicIn, Group: groupA,
		Outputs: []catalog.Topic{topicOut}, Stage: stage}}}
	cfg := testConfig(c, "w", 1000)
	cfg.Linger = 300 * time.Millisecond
	r := start(cfg, hop, m, quietLog())
	batches := func() int {
		stage.mu.Lock()
		defer stage.mu.Unlock()
		return stage.batches
	}
	lingered := func() float64 { return testutil.ToFloat64(m.lingered.WithLabelValues(hop.Name())) }

	// The first record waits for the group to form, so the trickle starts on a running hop.
	produced := c.produce(t, topicIn, 1, 1, nil)
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	cl := c.k.Client(t)
	send := func() {
		t.Helper()
		w := "w0"
		b, _ := json.Marshal(msg{ID: fmt.Sprintf("%s-%d", w, produced[w]), Wallet: w, Seq: produced[w]})
		produced[w]++
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: string(topicIn), Key: []byte(w), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	before, began := batches(), time.Now()
	const trickle = 40
	for range trickle {
		send()
		time.Sleep(10 * time.Millisecond)
	}
	// Every transaction of the trickle begins after began and at least Linger after the
	// one before, and only the last can begin after the trickle ended.
	trickled := time.Since(began)
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	if got, most := batches()-before, int(trickled/cfg.Linger)+2; got > most {
		t.Errorf("%d records over %v took %d transactions; with Linger %v at most %d can begin",
			trickle, trickled.Round(time.Millisecond), got, cfg.Linger, most)
	}
	if lingered() <= 0 {
		t.Error("paystream_hop_linger_seconds_total = 0, want the time the hop waited")
	}

	time.Sleep(2 * cfg.Linger)
	waited := lingered()
	send()
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	if got := lingered(); got != waited {
		t.Errorf("a hop idle for %v waited %.3f s more before a record", 2*cfg.Linger, got-waited)
	}

	// A transaction that takes longer than Linger is not followed by a wait (once the
	// wait after the last record is over).
	stage.mu.Lock()
	stage.delay = 2 * cfg.Linger
	stage.mu.Unlock()
	time.Sleep(2 * cfg.Linger)
	waited = lingered()
	send()
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	send()
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	if got := lingered(); got != waited {
		t.Errorf("after transactions of %v the hop waited %.3f s more", stage.delay, got-waited)
	}
	r.stop(t)
	checkExactlyOnce(t, decodeAll(t, c.readAll(t, topicOut)), produced, 1)
}

// A backlog is worked through without lingering: a transaction that took a whole batch
// leaves more records waiting.
func TestLingerLeavesBacklogsAlone(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	c.topics(t, []catalog.Topic{topicIn, topicOut})
	produced := c.produce(t, topicIn, 3000, 30, nil)
	m := testMetrics(t)
	hop := copyHop(nil)
	cfg := testConfig(c, "w", 100)
	cfg.Linger = MaxLinger
	r := start(cfg, hop, m, quietLog())
	c.waitCaughtUp(t, groupA, topicIn, 60*time.Second)
	r.stop(t)

	checkExactlyOnce(t, decodeAll(t, c.readAll(t, topicOut)), produced, 1)
	// Lingering after every batch would wait about 29 s. The backlog's batches may come
	// short where a fetch ends, so a few waits are allowed.
	if got := testutil.ToFloat64(m.lingered.WithLabelValues(hop.Name())); got > 5 {
		t.Errorf("working through 3,000 records in batches of 100, the hop lingered %.1f s", got)
	}
}
