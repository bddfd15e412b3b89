package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/ingress/client"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

type benchCmd struct {
	Creds       string        `help:"Channel credentials (default <data>/dev-channel.json)." placeholder:"FILE"`
	Wallets     int           `default:"10000" help:"Customer wallets to create and fund (plus one merchant per 100)."`
	Fund        string        `default:"1000.00" help:"Top-up per wallet, USD."`
	Duration    time.Duration `default:"30s" help:"How long to send payments (ignored with --count)."`
	Count       int           `help:"Send exactly this many payments."`
	Rate        int           `help:"Open loop: payments per second (0: closed loop with --concurrency clients)."`
	Concurrency int           `default:"64" help:"Clients (closed loop) or the most requests in flight (open loop)."`
	Mix         string        `default:"p2p=70,merchant=20,hold=10" help:"Payment mix in percent: p2p, merchant, hold (a hold then its capture)."`
	JSON        string        `name:"json" help:"Write the figures to this file as JSON." placeholder:"FILE"`
	Verify      bool          `help:"Afterwards: every accepted payment has exactly one outcome, every succeeded one exactly one posting, and the ledger invariants hold."`
	CPUProfile  string        `name:"cpuprofile" help:"Write the bench's own CPU profile to this file: it shares the machine with what it measures." placeholder:"FILE"`
	AdminURL    string        `name:"admin-url" help:"The paystream process's /metrics, for its RSS and CPU (default http://<PAYSTREAM_ADMIN_ADDR>/metrics)." placeholder:"URL"`
	Chaos       int           `help:"Crash drill: run each stage as its own process and SIGKILL one at random this many times during the run (the target must be paystream dev --no-stages)."`
	Interval    time.Duration `default:"1m" help:"Also give the figures of each interval of the run, the payments sent in it (a table when there is more than one; 0: none, else at least 1s)." placeholder:"DURATION"`
}

func (benchCmd) Help() string {
	return "Drives a running paystream over HTTP with the ingress client, as channels would, and measures " +
		"accepted/s, completed/s and latency percentiles from request to accepted and to outcome. Outcomes are " +
		"read from payments.outcomes (PAYSTREAM_KAFKA_BROKERS, or the dev broker at PAYSTREAM_KAFKA_ADDR)."
}

// benchFigures is what a run measured; the JSON names are stable for comparing runs.
type benchFigures struct {
	Payments       int            `json:"payments"`
	Accepted       int            `json:"accepted"`
	Completed      int            `json:"completed"`
	Succeeded      int            `json:"succeeded"`
	Rejected       map[string]int `json:"rejected_by_reason"`
	Errors         int            `json:"errors"`
	Seconds        float64        `json:"seconds"`
	AcceptedPerS   float64        `json:"accepted_per_s"`
	CompletedPerS  float64        `json:"completed_per_s"`
	AcceptedP50ms  float64        `json:"accepted_p50_ms"`
	AcceptedP90ms  float64        `json:"accepted_p90_ms"`
	AcceptedP99ms  float64        `json:"accepted_p99_ms"`
	AcceptedP999ms float64        `json:"accepted_p999_ms"`
	AcceptedMaxms  float64        `json:"accepted_max_ms"`
	OutcomeP50ms   float64        `json:"outcome_p50_ms"`
	OutcomeP90ms   float64        `json:"outcome_p90_ms"`
	OutcomeP99ms   float64        `json:"outcome_p99_ms"`
	OutcomeP999ms  float64        `json:"outcome_p999_ms"`
	OutcomeMaxms   float64        `json:"outcome_max_ms"`
	RSSMB          float64        `json:"rss_mb"`
	// CPU per completed payment over the sending phase (see usage): the paystream
	// process's (when its /metrics is known), the bench's own, the whole machine's with
	// its busy share (when /proc/stat is readable; it includes PostgreSQL), and that of
	// the PostgreSQL processes on the bench's machine (when there are any).
	ServerCPUms    float64 `json:"server_cpu_ms_per_payment,omitempty"`
	BenchCPUms     float64 `json:"bench_cpu_ms_per_payment"`
	MachineCPUms   float64 `json:"machine_cpu_ms_per_payment,omitempty"`
	PostgresCPUms  float64 `json:"postgres_cpu_ms_per_payment,omitempty"`
	MachineBusyPct float64 `json:"machine_busy_pct,omitempty"`
	Verified       *bool   `json:"verified,omitempty"`
	Kills          int     `json:"kills,omitempty"`
	// Intervals splits the run by when each payment was sent. Over a long run the totals
	// hide when the tail came: a 10-minute run's p99 may be the work of two bad minutes.
	Intervals []benchInterval `json:"intervals,omitempty"`
}

// benchInterval is the figures of the payments sent in [From, To) seconds of the run.
type benchInterval struct {
	From          float64 `json:"from_s"`
	To            float64 `json:"to_s"`
	Sent          int     `json:"sent"`
	Completed     int     `json:"completed"`
	AcceptedP99ms float64 `json:"accepted_p99_ms"`
	OutcomeP50ms  float64 `json:"outcome_p50_ms"`
	OutcomeP99ms  float64 `json:"outcome_p99_ms"`
	OutcomeMaxms  float64 `json:"outcome_max_ms"`
}

// benchPayment is what the bench keeps of one payment. It holds no pointer and a few words:
// a long run keeps millions of them on the machine being measured, and the bench's heap
// and collector must not take CPU from the system under test as the run goes on.
type benchPayment struct {
	start, accepted, seen time.Duration // since the run's epoch; seen 0: no outcome yet
	outs                  uint16        // outcomes seen, pending ones excluded
	sent                  bool          // answered by the ingress (its outcome may come first)
	waited                bool          // sent with Prefer: wait, so its answer came with the outcome
	posted                bool          // its first final outcome was posted
}

type benchRun struct {
	a       *app
	c       *client.Client
	epoch   time.Time
	mu      sync.Mutex
	pays    map[string]benchPayment // by payment id: the bench's and any other seen on the topic
	reasons map[string]int
	errors  atomic.Int64
	every   time.Duration   // the length of an interval in the figures; 0: no intervals
	recent  []time.Duration // request to outcome of the payments ended since the last progress line
	// Counted as payments and outcomes arrive, for the progress line must not walk every
	// payment each second: over a long run that took CPU from the system being measured.
	accepted, completed int
}

// since is the time from the run's epoch to t, on the monotonic clock.
func (r *benchRun) since(t time.Time) time.Duration { return t.Sub(r.epoch) }

// benchProcs runs the bench's goroutines on one CPU unless GOMAXPROCS says otherwise,
// returning the setting to restore. The bench shares the machine with what it measures,
// and waits on the network most of the time: with a CPU each, its idle Ps looked for work
// and took the machine's CPU. At 2,500 payments/s, two alternating pairs of 30-second
// runs: the bench's CPU a payment 0.138-0.143 ms with two, 0.099-0.109 ms with one; closed
// loop it still sent 3,829-3,921 payments/s.
func benchProcs(env string) int {
	if env != "" {
		return runtime.GOMAXPROCS(0)
	}
	return runtime.GOMAXPROCS(1)
}

func (b benchCmd) Run(a *app) error {
	if b.Interval != 0 && b.Interval < time.Second {
		return fmt.Errorf("--interval %s: must be 0 (none) or at least 1s", b.Interval)
	}
	// The bench keeps every payment it sent, so its live heap grows with the run by design:
	// under paystream's soft memory limit its collector would run ever more often and take
	// the CPU it measures. A heap twice what is live, without a limit, unless set otherwise.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(math.MaxInt64)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(100)
	}
	defer runtime.GOMAXPROCS(benchProcs(os.Getenv("GOMAXPROCS")))
	weights, err := parseMix(b.Mix)
	if err != nil {
		return err
	}
	creds := b.Creds
	if creds == "" {
		creds = filepath.Join(a.cfg.DataDir, "dev-channel.json")
	}
	c, err := client.FromFile(creds)
	if err != nil {
		return err
	}
	c.WithHTTPClient(&http.Client{Transport: newSyncTransport(b.Concurrency * 2)})
	run := &benchRun{a: a, c: c, epoch: time.Now(), pays: map[string]benchPayment{}, reasons: map[string]int{}, every: b.Interval}

	stopOutcomes, err := run.readOutcomes()
	if err != nil {
		return err
	}
	defer stopOutcomes()

	var drill *chaos
	if b.Chaos > 0 {
		if drill, err = startChaos(a); err != nil {
			return err
		}
		defer drill.stop()
	}
	fmt.Fprintf(a.out, "creating and funding %d wallets...\n", b.Wallets)
	setUp := time.Now()
	customers, merchants, err := run.setUp(b.Wallets, b.Fund, b.Concurrency)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "created and funded %d wallets in %.1f s\n", b.Wallets, time.Since(setUp).Seconds())

	if b.CPUProfile != "" {
		f, err := os.Create(b.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintf(a.out, "sending payments (%s)...\n", b.describe())
	used := sampleUsage(b.metricsURL(a))
	start := time.Now()
	progressDone := make(chan struct{})
	go run.progress(start, progressDone)
	if drill != nil {
		// Kills spread evenly over the run: by payments sent with --count, by time otherwise.
		due := func(kills int) bool {
			return time.Since(start) >= b.Duration*time.Duration(kills+1)/time.Duration(b.Chaos+1)
		}
		if b.Count > 0 {
			due = func(kills int) bool {
				run.mu.Lock()
				defer run.mu.Unlock()
				return run.accepted >= b.Count*(kills+1)/(b.Chaos+1)
			}
		}
		stopKilling := make(chan struct{})
		go drill.run(b.Chaos, due, stopKilling)
		defer close(stopKilling)
	}
	run.send(b, weights, customers, merchants)
	// Wait for the last outcomes, at most 60 s after the last request.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && a.ctx.Err() == nil; time.Sleep(50 * time.Millisecond) {
		if run.pending() == 0 {
			break
		}
	}
	close(progressDone)
	fig := run.figures(start)
	now := sampleUsage(b.metricsURL(a))
	fig.RSSMB = now.serverRSSMiB
	cpuFigures(&fig, used, now, fig.Completed)
	if drill != nil {
		fig.Kills = drill.kills
	}
	if b.Verify {
		ok, err := run.verify(fig)
		if err != nil {
			return err
		}
		fig.Verified = &ok
	}
	printFigures(a.out, fig)
	if b.JSON != "" {
		blob, _ := json.MarshalIndent(fig, "", "  ")
		if err := os.WriteFile(b.JSON, append(blob, '\n'), 0o644); err != nil {
			return err
		}
	}
	if fig.Verified != nil && !*fig.Verified {
		return errors.New("verification failed")
	}
	return nil
}

func (b benchCmd) describe() string {
	what := fmt.Sprintf("for %s", b.Duration)
	if b.Count > 0 {
		what = fmt.Sprintf("%d payments", b.Count)
	}
	if b.Rate > 0 {
		return fmt.Sprintf("%s, open loop at %d/s", what, b.Rate)
	}
	return fmt.Sprintf("%s, closed loop with %d clients", what, b.Concurrency)
}

func parseMix(s string) (map[string]int, error) {
	w := map[string]int{}
	total := 0
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 || (k != "p2p" && k != "merchant" && k != "hold") {
			return nil, fmt.Errorf("--mix %q: want p2p=N,merchant=N,hold=N", s)
		}
		w[k] = n
		total += n
	}
	if total == 0 {
		return nil, fmt.Errorf("--mix %q sends nothing", s)
	}
	return w, nil
}

// readOutcomes follows payments.outcomes from its end, recording when each payment's
// outcome reached the bench: the client's view, after the writer's transaction committed
// and the outcome was fetched, not the record's own timestamp.
func (r *benchRun) readOutcomes() (func(), error) {
	brokers := kafkaBrokers(r.a)
	serde, err := schemas.NewSerde(r.a.ctx, r.a.cfg.SchemaRegistryURL)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(string(catalog.PaymentsOutcomes)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(r.a.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			seen := time.Now()
			fs.EachRecord(func(rec *kgo.Record) {
				v, err := serde.Decode(catalog.PaymentsOutcomes, rec.Value)
				if err != nil {
					return
				}
				o := v.(*schemas.PaymentOutcome)
				if o.Status == "pending" {
					return
				}
				r.outcome(o, seen)
			})
		}
	}()
	// Joining the partitions takes a moment; outcomes before that would be missed.
	if err := cl.Ping(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("reaching Kafka at %v for outcomes: %w", brokers, err)
	}
	time.Sleep(time.Second)
	return func() { cancel(); wg.Wait(); cl.Close() }, nil
}

// setUp creates customers and merchants with USD wallets and funds the customers.
func (r *benchRun) setUp(n int, fund string, concurrency int) ([]string, []string, error) {
	merchants := max(1, n/100)
	ctx := r.a.ctx
	make1 := func(kind string) (string, error) {
		var u, w struct{ ID string }
		if _, err := r.c.Do(ctx, "POST", "/v1/users", []byte(`{"type":"`+kind+`","name":"bench","kyc_level":3}`), "", &u); err != nil {
			return "", err
		}
		if _, err := r.c.Do(ctx, "POST", "/v1/wallets", []byte(`{"user_id":"`+u.ID+`","currencies":["USD"]}`), "", &w); err != nil {
			return "", err
		}
		if kind == "customer" {
			if _, err := r.c.Do(ctx, "POST", "/v1/payments", []byte(`{"type":"topup","amount":"`+fund+`","currency":"USD","destination_wallet_id":"`+w.ID+`"}`),
				"", nil, http.Header{"Prefer": {"wait=30"}}); err != nil {
				return "", err
			}
		}
		return w.ID, nil
	}
	ids := make([]string, n+merchants)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) || firstErr.Load() != nil {
					return
				}
				kind := "customer"
				if i >= n {
					kind = "merchant"
				}
				id, err := make1(kind)
				if err != nil {
					firstErr.Store(err)
					return
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, nil, fmt.Errorf("setting up wallets: %w", err)
	}
	return ids[:n], ids[n:], nil
}

// send runs the payment mix, closed or open loop, until the count or duration is reached.
func (r *benchRun) send(b benchCmd, weights map[string]int, customers, merchants []string) {
	ctx := r.a.ctx
	deadline := time.Now().Add(b.Duration)
	var issued atomic.Int64
	more := func() bool {
		if ctx.Err() != nil {
			return false
		}
		if b.Count > 0 {
			return issued.Add(1) <= int64(b.Count)
		}
		return time.Now().Before(deadline)
	}
	total := weights["p2p"] + weights["merchant"] + weights["hold"]
	// due is when a payment was meant to start: in open loop its place in the schedule, so
	// that a wait for a free sender counts in its latency (a late bench must not hide a
	// slow target); in closed loop, zero, and the payment starts when it is sent.
	one := func(rng *rand.Rand, due time.Time) {
		from := customers[rng.IntN(len(customers))]
		n := rng.IntN(total)
		switch {
		case n < weights["p2p"]:
			to := customers[rng.IntN(len(customers))]
			if to == from {
				to = merchants[0]
			}
			r.post(`{"type":"transfer","amount":"1.00","currency":"USD","source_wallet_id":"`+from+`","destination_wallet_id":"`+to+`"}`, "", false, due)
		case n < weights["p2p"]+weights["merchant"]:
			to := merchants[rng.IntN(len(merchants))]
			r.post(`{"type":"merchant_payment","amount":"2.00","currency":"USD","source_wallet_id":"`+from+`","destination_wallet_id":"`+to+`","mcc":"5411"}`, "", false, due)
		default:
			to := merchants[rng.IntN(len(merchants))]
			if id := r.post(`{"type":"hold","amount":"3.00","currency":"USD","source_wallet_id":"`+from+`","destination_wallet_id":"`+to+`"}`, "", true, due); id != "" {
				r.post(`{"amount":"2.00","mode":"release_rest"}`, "/v1/payments/"+id+"/capture", false, time.Time{})
			}
		}
	}
	var wg sync.WaitGroup
	if b.Rate <= 0 {
		for i := range b.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(i), 7))
				for more() {
					one(rng, time.Time{})
				}
			}()
		}
		wg.Wait()
		return
	}
	// Open loop: start payments on a fixed schedule, whatever the answers take, bounded by
	// the concurrency so an overloaded target cannot make the bench grow without end. The
	// schedule is counted from the start, not from one payment to the next: a bench woken
	// late on a busy machine catches up, rather than quietly falling short of --rate. The
	// payments go to long-lived senders: a goroutine per payment grew a fresh stack for
	// every request, a sixteenth of the bench's CPU on the machine it shares with the
	// server.
	type slot struct {
		seed uint64
		due  time.Time
	}
	slots := make(chan slot)
	for range b.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range slots {
				one(rand.New(rand.NewPCG(s.seed, 7)), s.due)
			}
		}()
	}
	wake := time.NewTimer(0)
	defer wake.Stop()
	rng := rand.New(rand.NewPCG(1, 7))
	begin, started := time.Now(), 0
	for more() {
		// Payment k is due k/rate after the start, the first at once: the bench sleeps
		// until then rather than polling a ticker, whose period it would add to latencies.
		// A payment due at or after the end of --duration is not sent.
		due := begin.Add(time.Duration(float64(started) * float64(time.Second) / float64(b.Rate)))
		if b.Count == 0 && !due.Before(deadline) {
			break
		}
		if d := time.Until(due); d > 0 {
			wake.Reset(d)
			select {
			case <-wake.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		started++
		slots <- slot{rng.Uint64(), due}
	}
	close(slots)
	wg.Wait()
}

// post sends a payment (or an operation on path) and records it as started at due, or
// now when due is zero; with wait it returns the id only once the payment succeeded.
func (r *benchRun) post(body, path string, wait bool, due time.Time) string {
	if path == "" {
		path = "/v1/payments"
	}
	var h []http.Header
	if wait {
		h = append(h, http.Header{"Prefer": {"wait=30"}})
	}
	start := due
	if start.IsZero() {
		start = time.Now()
	}
	var out struct{ ID, Status string }
	_, err := r.c.Do(r.a.ctx, "POST", path, []byte(body), "", &out, h...)
	if err != nil {
		r.errors.Add(1)
		return ""
	}
	r.answered(out.ID, start, time.Now(), wait)
	if wait && out.Status != "succeeded" {
		return ""
	}
	return out.ID
}

// outcome records a final outcome read at seen.
func (r *benchRun) outcome(o *schemas.PaymentOutcome, seen time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pays[o.PaymentID]
	p.outs++
	if p.seen == 0 {
		p.seen, p.posted = r.since(seen), o.Status == "posted"
		if p.sent {
			r.recent = append(r.recent, p.seen-p.start)
			r.completed++
		}
		if !p.posted {
			r.reasons[o.ReasonCode]++
		}
	}
	r.pays[o.PaymentID] = p
}

// answered records the ingress's answer to a payment sent at start.
func (r *benchRun) answered(id string, start, accepted time.Time, wait bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pays[id]
	if p.sent {
		return
	}
	p.start, p.accepted, p.sent, p.waited = r.since(start), r.since(accepted), true, wait
	r.accepted++
	if p.seen != 0 { // its outcome came before its answer
		r.recent = append(r.recent, p.seen-p.start)
		r.completed++
	}
	r.pays[id] = p
}

func (r *benchRun) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted - r.completed
}

func (r *benchRun) progress(start time.Time, done chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			fmt.Fprintln(r.a.out)
			return
		case <-t.C:
		}
		r.mu.Lock()
		sent, completed := r.accepted, r.completed
		recent := r.recent
		r.recent = nil
		r.mu.Unlock()
		slices.Sort(recent)
		el := time.Since(start).Seconds()
		fmt.Fprintf(r.a.out, "\r%6.0fs  accepted %8d (%6.0f/s)  completed %8d (%6.0f/s)  errors %d  last 1 s: outcome p50 %4.0f ms p99 %5.0f ms   ",
			el, sent, float64(sent)/el, completed, float64(completed)/el, r.errors.Load(), percentile(recent, .5), percentile(recent, .99))
	}
}

func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds)-1) * p)
	return float64(ds[i].Microseconds()) / 1000
}

func (r *benchRun) figures(start time.Time) benchFigures {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := benchFigures{Rejected: map[string]int{}, Errors: int(r.errors.Load())}
	var acc, out []time.Duration
	var lastAccepted, lastDone time.Duration
	from := r.since(start)
	var spans []span
	for _, p := range r.pays {
		if !p.sent {
			continue
		}
		var sp *span // the payment's interval, if the run has them
		if r.every > 0 {
			i := max(0, int((p.start-from)/r.every))
			for len(spans) <= i {
				spans = append(spans, span{})
			}
			sp = &spans[i]
			sp.sent++
		}
		if !p.waited {
			acc = append(acc, p.accepted-p.start)
			if sp != nil {
				sp.acc = append(sp.acc, p.accepted-p.start)
			}
		}
		lastAccepted = max(lastAccepted, p.accepted)
		if p.seen != 0 {
			out = append(out, p.seen-p.start)
			if sp != nil {
				sp.out = append(sp.out, p.seen-p.start)
			}
			f.Completed++
			lastDone = max(lastDone, p.seen)
			if p.posted {
				f.Succeeded++
			}
		}
	}
	for k, v := range r.reasons {
		f.Rejected[k] = v
	}
	f.Accepted = r.accepted
	f.Payments = f.Accepted + f.Errors
	f.Seconds = (lastAccepted - r.since(start)).Seconds()
	if f.Seconds > 0 {
		f.AcceptedPerS = float64(f.Accepted) / f.Seconds
	}
	if d := (lastDone - r.since(start)).Seconds(); d > 0 {
		f.CompletedPerS = float64(f.Completed) / d
	}
	slices.Sort(acc)
	slices.Sort(out)
	f.AcceptedP50ms, f.AcceptedP90ms, f.AcceptedP99ms, f.AcceptedP999ms = percentile(acc, .5), percentile(acc, .9), percentile(acc, .99), percentile(acc, .999)
	f.OutcomeP50ms, f.OutcomeP90ms, f.OutcomeP99ms, f.OutcomeP999ms = percentile(out, .5), percentile(out, .9), percentile(out, .99), percentile(out, .999)
	f.AcceptedMaxms, f.OutcomeMaxms = percentile(acc, 1), percentile(out, 1)
	for i, sp := range spans {
		slices.Sort(sp.acc)
		slices.Sort(sp.out)
		f.Intervals = append(f.Intervals, benchInterval{
			From: (time.Duration(i) * r.every).Seconds(), To: (time.Duration(i+1) * r.every).Seconds(),
			Sent: sp.sent, Completed: len(sp.out), AcceptedP99ms: percentile(sp.acc, .99),
			OutcomeP50ms: percentile(sp.out, .5), OutcomeP99ms: percentile(sp.out, .99), OutcomeMaxms: percentile(sp.out, 1),
		})
	}
	return f
}

// span gathers the payments sent in one interval of a run.
type span struct {
	sent     int
	acc, out []time.Duration
}

// metricsURL is the paystream process's /metrics, or "" when unknown.
func (b benchCmd) metricsURL(a *app) string {
	if b.AdminURL != "" {
		return b.AdminURL
	}
	if a.cfg.AdminAddr == "" {
		return ""
	}
	return "http://" + a.cfg.AdminAddr + "/metrics"
}

// verify checks exactly one outcome per accepted payment, exactly one posting per
// succeeded payment, and the ledger invariants.
func (r *benchRun) verify(f benchFigures) (bool, error) {
	pool, err := connect(r.a)
	if err != nil {
		return false, err
	}
	defer pool.Close()
	r.mu.Lock()
	var succeeded []string
	ok := true
	for id, p := range r.pays {
		if !p.sent {
			continue
		}
		if p.outs != 1 {
			fmt.Fprintf(r.a.out, "FAIL  payment %s has %d outcomes, want exactly 1\n", id, p.outs)
			ok = false
		}
		if p.posted {
			succeeded = append(succeeded, id)
		}
	}
	r.mu.Unlock()
	var postings int
	if err := pool.QueryRow(r.a.ctx, `SELECT count(*) FROM postings WHERE payment_id = ANY ($1) AND status = 'posted'`,
		succeeded).Scan(&postings); err != nil {
		return false, fmt.Errorf("counting postings: %w", err)
	}
	// A hold and its capture are hold operations, not postings; every other succeeded
	// payment has exactly one posting.
	var ops int
	if err := pool.QueryRow(r.a.ctx, `SELECT count(DISTINCT external_id) FROM hold_ops WHERE external_id = ANY ($1)`, succeeded).Scan(&ops); err != nil {
		return false, fmt.Errorf("counting hold operations: %w", err)
	}
	if postings+ops != len(succeeded) {
		fmt.Fprintf(r.a.out, "FAIL  %d succeeded payments, %d postings and %d hold operations\n", len(succeeded), postings, ops)
		ok = false
	}
	rep, err := runVerify(r.a.ctx, pool, true)
	if err != nil {
		return false, err
	}
	fmt.Fprint(r.a.out, rep.String())
	return ok && rep.OK(), nil
}

func printFigures(w io.Writer, f benchFigures) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "payments\t%d accepted, %d completed (%d succeeded), %d errors, in %.1f s\n", f.Accepted, f.Completed, f.Succeeded, f.Errors, f.Seconds)
	fmt.Fprintf(tw, "throughput\t%.0f accepted/s\t%.0f completed/s\n", f.AcceptedPerS, f.CompletedPerS)
	fmt.Fprintf(tw, "latency ms\tp50\tp90\tp99\tp99.9\tmax\n")
	fmt.Fprintf(tw, "  accepted\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\n", f.AcceptedP50ms, f.AcceptedP90ms, f.AcceptedP99ms, f.AcceptedP999ms, f.AcceptedMaxms)
	fmt.Fprintf(tw, "  outcome\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\n", f.OutcomeP50ms, f.OutcomeP90ms, f.OutcomeP99ms, f.OutcomeP999ms, f.OutcomeMaxms)
	if f.RSSMB > 0 {
		fmt.Fprintf(tw, "server RSS\t%.0f MB\n", f.RSSMB)
	}
	cpu := fmt.Sprintf("bench %.3f ms", f.BenchCPUms)
	if f.ServerCPUms > 0 {
		cpu = fmt.Sprintf("paystream %.3f ms\t%s", f.ServerCPUms, cpu)
	}
	if f.PostgresCPUms > 0 {
		cpu += fmt.Sprintf("\tpostgres %.3f ms", f.PostgresCPUms)
	}
	if f.MachineCPUms > 0 {
		cpu += fmt.Sprintf("\tmachine %.3f ms (%.0f %% busy)", f.MachineCPUms, f.MachineBusyPct)
	}
	fmt.Fprintf(tw, "cpu/payment\t%s\n", cpu)
	var reasons []string
	for k := range f.Rejected {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	for _, k := range reasons {
		fmt.Fprintf(tw, "rejected\t%s\t%d\n", k, f.Rejected[k])
	}
	if f.Kills > 0 {
		fmt.Fprintf(tw, "crash drill\t%d workers killed with SIGKILL and restarted\n", f.Kills)
	}
	if f.Verified != nil {
		fmt.Fprintf(tw, "verified\t%v\n", *f.Verified)
	}
	if len(f.Intervals) > 1 {
		fmt.Fprintf(tw, "\nsent in s\tsent\tcompleted\taccepted p99 ms\toutcome p50 ms\tp99 ms\tmax ms\n")
		for _, in := range f.Intervals {
			fmt.Fprintf(tw, "  %g-%g\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\n", in.From, in.To, in.Sent, in.Completed, in.AcceptedP99ms, in.OutcomeP50ms, in.OutcomeP99ms, in.OutcomeMaxms)
		}
	}
	tw.Flush()
}
