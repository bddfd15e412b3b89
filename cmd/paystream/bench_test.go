package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/ingress/client"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// BenchmarkP2PEndToEnd measures completed P2P transfers per second through a whole
// paystream dev (ingress, every stage, the ledger on PostgreSQL with fsync on, kfake):
// 64 clients post b.N transfers among 64 funded wallets without waiting, and the
// outcomes are read from payments.outcomes. It reports completed/s and the p50 and p99
// time from request to outcome. This is the simple client loop that stands in until
// `paystream bench` exists.
// Run: go test ./cmd/paystream -run '^$' -bench P2PEndToEnd -benchtime 5000x
func BenchmarkP2PEndToEnd(b *testing.B) {
	p := startDevProcess(b, "--ephemeral", "--log-level", "warn")
	p.waitHealthy(b)
	dataDir := p.bannerField(b, "data")[0]
	c, err := client.FromFile(filepath.Join(dataDir, "dev-channel.json"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	post := func(path, body string, out any) {
		if _, err := c.Do(ctx, "POST", path, []byte(body), "", out); err != nil {
			b.Fatalf("POST %s: %v", path, err)
		}
	}
	const wallets = 64
	refs := make([]string, wallets)
	var wg sync.WaitGroup
	for i := range wallets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var u, w struct{ ID string }
			post("/v1/users", `{"type":"customer","name":"bench","kyc_level":3}`, &u)
			post("/v1/wallets", `{"user_id":"`+u.ID+`","currencies":["USD"]}`, &w)
			post("/v1/payments", `{"type":"topup","amount":"100000.00","currency":"USD","destination_wallet_id":"`+w.ID+`"}`, nil)
			refs[i] = w.ID
		}()
	}
	wg.Wait()

	// Outcomes: when each payment's outcome was written, by payment id.
	serde, _ := schemas.NewSerde(ctx, "")
	oc, err := kgo.NewClient(kgo.SeedBrokers(p.kafka), kgo.ConsumeTopics(string(catalog.PaymentsOutcomes)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		b.Fatal(err)
	}
	defer oc.Close()
	var mu sync.Mutex
	done := map[string]time.Time{}
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	go func() {
		for readCtx.Err() == nil {
			oc.PollFetches(readCtx).EachRecord(func(r *kgo.Record) {
				if v, err := serde.Decode(catalog.PaymentsOutcomes, r.Value); err == nil {
					o := v.(*schemas.PaymentOutcome)
					mu.Lock()
					done[o.PaymentID] = r.Timestamp
					mu.Unlock()
				}
			})
		}
	}()
	time.Sleep(500 * time.Millisecond) // let the reader join at the end of the topic

	b.ResetTimer()
	sent := make(map[string]time.Time, b.N)
	var sentMu sync.Mutex
	var next atomic.Int64
	start := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				from, to := refs[i%wallets], refs[(i+1)%wallets]
				t0 := time.Now()
				var acc struct{ ID string }
				post("/v1/payments", fmt.Sprintf(`{"type":"transfer","amount":"1.00","currency":"USD","source_wallet_id":"%s","destination_wallet_id":"%s"}`, from, to), &acc)
				sentMu.Lock()
				sent[acc.ID] = t0
				sentMu.Unlock()
			}
		}()
	}
	wg.Wait()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := 0
		for id := range sent {
			if _, ok := done[id]; ok {
				n++
			}
		}
		mu.Unlock()
		if n == len(sent) {
			break
		}
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	var lat []time.Duration
	var last time.Time
	for id, t0 := range sent {
		if at, ok := done[id]; ok {
			lat = append(lat, at.Sub(t0))
			if at.After(last) {
				last = at
			}
		}
	}
	if len(lat) != len(sent) {
		b.Fatalf("%d of %d payments have an outcome", len(lat), len(sent))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/last.Sub(start).Seconds(), "completed/s")
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "outcome_p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "outcome_p99_ms")
}

// The bench's bookkeeping: an outcome may arrive before the ingress's answer, outcomes of
// payments it did not send are not counted, and a second outcome is seen by --verify.
func TestBenchCountsPaymentsWhicheverArrivesFirst(t *testing.T) {
	epoch := time.Now()
	r := &benchRun{epoch: epoch, pays: map[string]benchPayment{}, reasons: map[string]int{}}
	at := func(ms int) time.Time { return epoch.Add(time.Duration(ms) * time.Millisecond) }
	out := func(id, status, reason string) *schemas.PaymentOutcome {
		return &schemas.PaymentOutcome{Meta: schemas.Meta{PaymentID: id}, Status: status, ReasonCode: reason}
	}
	r.answered("a", at(0), at(5), false)
	r.outcome(out("a", "posted", ""), at(40))
	r.outcome(out("b", "rejected", "insufficient_funds"), at(30))
	r.answered("b", at(10), at(50), false) // its outcome came first
	r.outcome(out("topup", "posted", ""), at(1))
	r.answered("c", at(20), at(25), false)
	r.outcome(out("a", "posted", ""), at(60)) // a duplicate

	if r.accepted != 3 || r.completed != 2 || r.pending() != 1 {
		t.Errorf("accepted %d completed %d pending %d, want 3, 2, 1", r.accepted, r.completed, r.pending())
	}
	slices.Sort(r.recent)
	if want := []time.Duration{20 * time.Millisecond, 40 * time.Millisecond}; !slices.Equal(r.recent, want) {
		t.Errorf("latencies %v, want %v", r.recent, want)
	}
	f := r.figures(epoch)
	if f.Accepted != 3 || f.Completed != 2 || f.Succeeded != 1 || f.Rejected["insufficient_funds"] != 1 || f.OutcomeMaxms != 40 {
		t.Errorf("figures %+v", f)
	}
	if r.pays["a"].outs != 2 || r.pays["b"].outs != 1 {
		t.Errorf("outcomes seen: a %d, b %d; want 2 and 1", r.pays["a"].outs, r.pays["b"].outs)
	}
}

// The figures by interval follow each payment's send time: an interval with no payment
// stays in the list, a payment sent before the run (the set-up's) counts in the first,
// and a run without intervals has none.
func TestBenchFiguresByInterval(t *testing.T) {
	epoch := time.Now()
	ms := func(n int) time.Time { return epoch.Add(time.Duration(n) * time.Millisecond) }
	out := func(id string) *schemas.PaymentOutcome {
		return &schemas.PaymentOutcome{Meta: schemas.Meta{PaymentID: id}, Status: "posted"}
	}
	sent := []struct {
		id                     string
		start, accepted, outAt int // ms from the epoch; outAt 0: no outcome yet
	}{
		{"setup", 0, 3, 4},
		{"a", 10, 12, 20},
		{"b", 15, 16, 55},
		{"c", 19, 25, 0},
		{"d", 45, 46, 47}, // 30-40 ms: none sent
		{"e", 49, 50, 60},
	}
	for _, every := range []time.Duration{0, 10 * time.Millisecond} {
		r := &benchRun{epoch: epoch, pays: map[string]benchPayment{}, reasons: map[string]int{}, every: every}
		for _, s := range sent {
			r.answered(s.id, ms(s.start), ms(s.accepted), false)
			if s.outAt != 0 {
				r.outcome(out(s.id), ms(s.outAt))
			}
		}
		f := r.figures(ms(10))
		if every == 0 {
			if f.Intervals != nil {
				t.Errorf("without intervals: %+v", f.Intervals)
			}
			continue
		}
		want := []benchInterval{
			{From: 0, To: 0.01, Sent: 4, Completed: 3, AcceptedP99ms: 3, OutcomeP50ms: 10, OutcomeP99ms: 10, OutcomeMaxms: 40}, // percentile: the floor rank
			{From: 0.01, To: 0.02},
			{From: 0.02, To: 0.03},
			{From: 0.03, To: 0.04, Sent: 2, Completed: 2, AcceptedP99ms: 1, OutcomeP50ms: 2, OutcomeP99ms: 2, OutcomeMaxms: 11},
		}
		if !slices.Equal(f.Intervals, want) {
			t.Errorf("intervals\n got %+v\nwant %+v", f.Intervals, want)
		}
		var n, done int
		for _, in := range f.Intervals {
			n, done = n+in.Sent, done+in.Completed
		}
		if n != f.Accepted || done != f.Completed {
			t.Errorf("intervals hold %d sent and %d completed, the run %d and %d", n, done, f.Accepted, f.Completed)
		}
	}
}

// An interval under a second would make a table of thousands of lines; a negative one has
// no meaning. Both are refused before the bench reaches for its target.
func TestBenchRefusesAnIntervalUnderASecond(t *testing.T) {
	for _, iv := range []string{"10ms", "-1s"} {
		code, _, errOut := runCLI(t, "bench", "--creds", "/nonexistent/creds.json", "--interval="+iv)
		if code == 0 || !strings.Contains(errOut, "--interval "+iv) {
			t.Errorf("--interval %s: exit %d, %q", iv, code, errOut)
		}
	}
}

// In open loop a payment's latency counts from its place in the schedule, not from when a
// sender got round to it: with one sender and a target that answers in 100 ms, payments due
// every 25 ms queue for the sender, and their accepted latency must show that wait. Nothing
// due after --duration is sent. A target that answers at once shows no such wait: the
// schedule itself must not add a payment's interval to its latency.
func TestBenchOpenLoopCountsFromTheSchedule(t *testing.T) {
	const answer = 100 * time.Millisecond
	var n atomic.Int64
	var delay atomic.Int64
	delay.Store(int64(answer))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		time.Sleep(time.Duration(delay.Load()))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"id":"pay_%d","status":"accepted"}`, n.Add(1))
	}))
	defer srv.Close()
	c := client.New(client.Credentials{BaseURL: srv.URL, KeyID: "bench", Secret: "secret"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	epoch := time.Now()
	r := &benchRun{a: &app{ctx: ctx, out: io.Discard}, c: c, epoch: epoch, pays: map[string]benchPayment{}, reasons: map[string]int{}}
	const duration = time.Second
	r.send(benchCmd{Rate: 40, Concurrency: 1, Duration: duration}, map[string]int{"p2p": 100}, []string{"w1", "w2"}, []string{"m1"})
	took := time.Since(epoch)

	if r.errors.Load() != 0 {
		t.Fatalf("%d errors", r.errors.Load())
	}
	var lastStart, worst time.Duration
	for id, p := range r.pays {
		if !p.sent {
			t.Errorf("%s: not recorded as answered", id)
		}
		lastStart = max(lastStart, p.start)
		worst = max(worst, p.accepted-p.start)
	}
	// One sender takes about ten payments in a second; forty were due by its end.
	if got := len(r.pays); got < 5 || got > 15 {
		t.Errorf("%d payments sent in %v by one sender at %v an answer", got, duration, answer)
	}
	if lastStart >= duration {
		t.Errorf("a payment was due %v into the run, after its %v", lastStart, duration)
	}
	// The last payment sent was due by about a tenth of the way in and answered near the end.
	if worst < 4*answer {
		t.Errorf("worst accepted latency %v: the wait for the one sender is not counted", worst)
	}
	if took > duration+2*answer {
		t.Errorf("the run took %v for a duration of %v", took, duration)
	}

	// At once, 20 a second: a payment is due every 50 ms and sent when due.
	delay.Store(0)
	r = &benchRun{a: &app{ctx: ctx, out: io.Discard}, c: c, epoch: time.Now(), pays: map[string]benchPayment{}, reasons: map[string]int{}}
	r.send(benchCmd{Rate: 20, Concurrency: 4, Duration: duration}, map[string]int{"p2p": 100}, []string{"w1", "w2"}, []string{"m1"})
	var lat []time.Duration
	for _, p := range r.pays {
		lat = append(lat, p.accepted-p.start)
	}
	slices.Sort(lat)
	if len(lat) < 18 || len(lat) > 20 { // the last one or two may miss the end on a busy machine
		t.Errorf("%d payments at 20/s for %v, want 20", len(lat), duration)
	}
	if len(lat) > 0 && lat[len(lat)/2] > 25*time.Millisecond {
		t.Errorf("median accepted latency %v against a target that answers at once, every 50 ms", lat[len(lat)/2])
	}
}
