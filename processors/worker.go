package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/schemas/catalog"
)

// errKilled ends a worker that a test killed to simulate a crash.
var errKilled = errors.New("worker killed")

// worker runs one hop on one group transact session.
type worker struct {
	cfg   Config
	hop   Hop
	codec Codec
	m     *Metrics
	log   *slog.Logger
	store *store
	trim  *trimmer

	mu     sync.Mutex
	sess   *kgo.GroupTransactSession
	killed atomic.Bool

	evMu   sync.Mutex
	events []partitionEvent

	adm     *kadm.Client
	backoff time.Duration
	// stopBy is when a graceful stop must be done: StopTimeout after ctx ended.
	stopBy atomic.Pointer[time.Time]

	// beforeEnd, when set by a test, runs just before a transaction ends.
	beforeEnd func(*kgo.Client)
	topUpWait time.Duration
	batch     uint64    // of the batch being processed (Input.Batch)
	begun     time.Time // when the last transaction began
	full      bool      // the last transaction took BatchSize records: a backlog does not linger
}

// batches numbers the batches of every worker of the process.
var batches atomic.Uint64

type partitionEvent struct {
	assigned   bool
	partitions []int32
}

func newWorker(cfg Config, hop Hop, codec Codec, m *Metrics, log *slog.Logger) *worker {
	cfg = cfg.withDefaults()
	return &worker{cfg: cfg, hop: hop, codec: codec, m: m,
		log:   log.With("hop", hop.Name(), "instance", cfg.InstanceID),
		store: newStore(cfg.MaxStateKeyBytes, cfg.MaxStateValueBytes), trim: newTrimmer(cfg.TrimChangelogs, cfg.trimFloor),
		topUpWait: topUpWait}
}

func (w *worker) txnID() string { return string(w.hop.Group().TxnPrefix()) + w.cfg.InstanceID }

func (w *worker) changelogs() []string {
	var ts []string
	for _, s := range w.hop.Stages {
		if s.Stateful {
			ts = append(ts, string(s.Group.Changelog()))
		}
	}
	return ts
}

func (w *worker) sessionOpts() []kgo.Opt {
	input := string(w.hop.Input())
	var topics []string
	for _, t := range w.hop.Inputs() {
		topics = append(topics, string(t))
	}
	queue := func(assigned bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if ps := m[input]; len(ps) > 0 {
				w.evMu.Lock()
				w.events = append(w.events, partitionEvent{assigned: assigned, partitions: ps})
				w.evMu.Unlock()
			}
			// State follows the input's partitions only; of the other inputs' there is
			// just the lag to forget.
			for t, ps := range m {
				if t == input || assigned {
					continue
				}
				for _, p := range ps {
					w.m.consumerLag.DeleteLabelValues(w.hop.Name(), t, strconv.Itoa(int(p)))
				}
			}
		}
	}
	return append(append([]kgo.Opt{}, w.cfg.KafkaOptions...),
		kgo.SeedBrokers(w.cfg.Brokers...),
		kgo.TransactionalID(w.txnID()),
		kgo.TransactionTimeout(w.cfg.TransactionTimeout),
		// Outputs leave as they are produced, while later stages of the batch still work,
		// rather than lingering to be flushed by End.
		kgo.ProducerLinger(0),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumerGroup(string(w.hop.Group())),
		kgo.ConsumeTopics(topics...),
		kgo.InstanceID(w.cfg.InstanceID),
		kgo.SessionTimeout(w.cfg.SessionTimeout),
		kgo.HeartbeatInterval(w.cfg.HeartbeatInterval),
		kgo.RecordPartitioner(newHopPartitioner(w.changelogs())),
		kgo.OnPartitionsAssigned(queue(true)),
		kgo.OnPartitionsRevoked(queue(false)),
		kgo.OnPartitionsLost(queue(false)),
	)
}

// kill closes the worker's client without ending its transaction, like a crash.
func (w *worker) kill() {
	w.killed.Store(true)
	w.mu.Lock()
	s := w.sess
	w.mu.Unlock()
	if s != nil {
		s.Client().Close()
	}
}

// run processes the hop until ctx is done, then stops gracefully.
func (w *worker) run(ctx context.Context) error {
	stopWatch := context.AfterFunc(ctx, func() {
		by := time.Now().Add(w.cfg.StopTimeout)
		w.stopBy.Store(&by)
	})
	defer stopWatch()
	sess, err := kgo.NewGroupTransactSession(w.sessionOpts()...)
	if err != nil {
		return fmt.Errorf("creating session of hop %s: %w", w.hop.Name(), err)
	}
	w.mu.Lock()
	w.sess = sess
	w.mu.Unlock()
	if w.killed.Load() { // killed before the session existed
		sess.Client().Close()
		return errKilled
	}
	admCl, err := kgo.NewClient(append(append([]kgo.Opt{}, w.cfg.KafkaOptions...), kgo.SeedBrokers(w.cfg.Brokers...))...)
	if err != nil {
		sess.Close()
		return fmt.Errorf("creating admin client of hop %s: %w", w.hop.Name(), err)
	}
	defer admCl.Close()
	w.adm = kadm.NewClient(admCl)
	if err := w.checkChangelogs(ctx); err != nil {
		sess.Close()
		return err
	}

	// Initialising the producer id fences our previous incarnation and aborts its open
	// transaction now, rather than after the transaction timeout.
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		if w.killed.Load() {
			return errKilled
		}
		if ctx.Err() != nil {
			return w.stop(sess)
		}
		sess.Close()
		return fmt.Errorf("initialising producer id %s: %w", w.txnID(), err)
	}
	w.log.Info("hop started", "group", w.hop.Group(), "topics", w.hop.Inputs(), "txn_id", w.txnID())
	for {
		if ctx.Err() != nil {
			return w.stop(sess)
		}
		w.linger(ctx)
		fs := sess.PollRecords(ctx, w.cfg.BatchSize)
		if w.killed.Load() || fs.IsClientClosed() {
			return errKilled
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				w.log.Warn("fetching", "topic", t, "partition", p, "err", err)
			}
		})
		if err := w.applyEvents(ctx); err != nil {
			if ctx.Err() != nil {
				continue
			}
			w.log.Warn("restoring state; retrying", "err", err)
			if err := w.rewind(ctx, sess); err != nil {
				return err
			}
			w.sleepBackoff(ctx)
			continue
		}
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if more := w.topUp(ctx, sess, recs); len(more) > 0 {
			fs = append(fs, more...)
			recs = append(recs, more.Records()...)
		}
		w.observeLag(fs)
		if err := w.transact(ctx, sess, recs); err != nil {
			if w.killed.Load() {
				return errKilled
			}
			sess.Close()
			return err
		}
	}
}

// linger waits out what is left of Linger since the last transaction began. The records
// that arrive meanwhile are taken by the poll after it, or by its top-up: the client holds
// only the fetch answered first. After a full batch more records are already waiting, so
// there is nothing to gather. A kill is noticed by the poll after the wait, at most
// MaxLinger late.
func (w *worker) linger(ctx context.Context) {
	d := w.cfg.Linger - time.Since(w.begun)
	if w.full || d <= 0 {
		return
	}
	from := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	w.m.lingered.WithLabelValues(w.hop.Name()).Add(time.Since(from).Seconds())
}

// A poll returns what the client fetched while the previous transaction ran: the fetch
// is answered as soon as the first records arrive, so under load its newest record is
// about one transaction old, and every record that arrived after it waits a whole
// further transaction in the broker. When a batch is that stale, topUp asks once more,
// briefly: the client fetches again as soon as its buffer is taken, and that fetch finds
// the waiting records at once. Records whose producer's clock is off only make the
// top-up run needlessly (at most topUpWait) or not at all, as before it existed.
const (
	staleAfter = 2 * time.Millisecond
	topUpWait  = 5 * time.Millisecond
)

func (w *worker) topUp(ctx context.Context, sess *kgo.GroupTransactSession, recs []*kgo.Record) kgo.Fetches {
	room := w.cfg.BatchSize - len(recs)
	if room <= 0 {
		return nil
	}
	var newest time.Time
	for _, r := range recs {
		if r.Timestamp.After(newest) {
			newest = r.Timestamp
		}
	}
	if time.Since(newest) < staleAfter {
		return nil
	}
	pollCtx, cancel := context.WithTimeout(ctx, w.topUpWait)
	defer cancel()
	more := sess.PollRecords(pollCtx, room)
	// Whatever records came are kept, errors or not: polled records count as consumed
	// once the transaction commits.
	more.EachError(func(t string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			w.log.Warn("fetching", "topic", t, "partition", p, "err", err)
		}
	})
	return more
}

// checkChangelogs fails fast when a changelog has fewer partitions than the input: state
// of input partition p lives in changelog partition p.
func (w *worker) checkChangelogs(ctx context.Context) error {
	cls := w.changelogs()
	if len(cls) == 0 {
		return nil
	}
	input := string(w.hop.Input())
	details, err := w.adm.ListTopics(ctx, append(cls, input)...)
	if err != nil {
		return fmt.Errorf("describing topics of hop %s: %w", w.hop.Name(), err)
	}
	want := len(details[input].Partitions)
	for _, cl := range cls {
		d, ok := details[cl]
		if !ok || d.Err != nil {
			return fmt.Errorf("checking changelog %s: missing (%v)", cl, d.Err)
		}
		if len(d.Partitions) < want {
			return fmt.Errorf("checking changelog %s: %d partitions, fewer than the %d of %s", cl, len(d.Partitions), want, input)
		}
	}
	return nil
}

// endContext bounds ending a transaction: by StopTimeout normally, and by what is left of
// the stop budget once a stop was asked for. It never inherits ctx's cancellation, since a
// cancelled End leaves the session unusable.
func (w *worker) endContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if by := w.stopBy.Load(); by != nil {
		return context.WithDeadline(context.WithoutCancel(ctx), *by)
	}
	return context.WithTimeout(context.WithoutCancel(ctx), w.cfg.StopTimeout)
}

// rewind drops polled records so the next poll starts again at the committed offsets.
func (w *worker) rewind(ctx context.Context, sess *kgo.GroupTransactSession) error {
	if err := sess.Begin(); err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	endCtx, cancel := w.endContext(ctx)
	defer cancel()
	if _, err := sess.End(endCtx, kgo.TryAbort); err != nil && !w.killed.Load() {
		return fmt.Errorf("aborting transaction: %w", err)
	}
	return nil
}

// stop ends the worker between transactions: close the session and leave the group.
func (w *worker) stop(sess *kgo.GroupTransactSession) error {
	stopCtx, cancel := w.endContext(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { sess.Close(); close(done) }()
	select {
	case <-done:
	case <-stopCtx.Done():
		w.log.Warn("closing session timed out")
		return nil
	}
	if w.cfg.StayOnStop {
		w.log.Info("hop stopped, keeping static membership")
		return nil
	}
	// A static member's Close does not leave the group; leave explicitly so the partitions
	// move now instead of after the session timeout.
	_, err := w.adm.LeaveGroup(stopCtx, kadm.LeaveGroup(string(w.hop.Group())).
		InstanceIDs(w.cfg.InstanceID).Reason("paystream worker stopping"))
	if err != nil {
		w.log.Warn("leaving group", "group", w.hop.Group(), "err", err)
	}
	w.log.Info("hop stopped")
	return nil
}

func (w *worker) sleepBackoff(ctx context.Context) {
	w.backoff = min(max(2*w.backoff, w.cfg.RetryBackoff), w.cfg.RetryBackoffMax)
	select {
	case <-ctx.Done():
	case <-time.After(w.backoff):
	}
}

// applyEvents drops the state of revoked partitions and restores assigned ones, in the
// order the group reported them.
func (w *worker) applyEvents(ctx context.Context) error {
	for {
		w.evMu.Lock()
		if len(w.events) == 0 {
			w.evMu.Unlock()
			return nil
		}
		ev := w.events[0]
		w.evMu.Unlock()
		for _, p := range ev.partitions {
			w.store.drop(p)
			w.trim.drop(p)
			if !ev.assigned {
				w.m.consumerLag.DeleteLabelValues(w.hop.Name(), string(w.hop.Input()), strconv.Itoa(int(p)))
				continue
			}
			for i, s := range w.hop.Stages {
				if !s.Stateful {
					continue
				}
				start := time.Now()
				state, err := restoreChangelog(ctx, w.cfg.Brokers, w.cfg.KafkaOptions, w.adm, s.Group.Changelog(), p)
				if err != nil {
					w.store.drop(p)
					return fmt.Errorf("restoring %s partition %d: %w", s.Name, p, err)
				}
				w.store.load(stateKey{stage: i, partition: p}, state)
				w.log.Info("state restored", "stage", s.Name, "topic", s.Group.Changelog(), "partition", p,
					"keys", len(state), "took", time.Since(start))
			}
		}
		w.evMu.Lock()
		w.events = w.events[1:]
		w.evMu.Unlock()
	}
}

func (w *worker) observeLag(fs kgo.Fetches) {
	now := time.Now()
	age := w.m.recordAge.WithLabelValues(w.hop.Name())
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		for _, r := range p.Records {
			age.Observe(max(now.Sub(r.Timestamp), 0).Seconds())
		}
		if n := len(p.Records); n > 0 {
			lag := p.HighWatermark - p.Records[n-1].Offset - 1
			w.m.consumerLag.WithLabelValues(w.hop.Name(), p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(max(lag, 0)))
		}
	})
}

// tally counts what a transaction wrote, published to metrics only if it commits.
type tally struct {
	out, dlq, rejected map[[2]string]int
}

func newTally() *tally {
	return &tally{out: map[[2]string]int{}, dlq: map[[2]string]int{}, rejected: map[[2]string]int{}}
}

func (t *tally) publish(m *Metrics) {
	for k, n := range t.out {
		m.recordsOut.WithLabelValues(k[0], k[1]).Add(float64(n))
	}
	for k, n := range t.dlq {
		m.dlq.WithLabelValues(k[0], k[1]).Add(float64(n))
	}
	for k, n := range t.rejected {
		m.rejections.WithLabelValues(k[0], k[1]).Add(float64(n))
	}
}

// transact processes one polled batch in one transaction. It returns an error only when the
// session cannot go on.
func (w *worker) transact(ctx context.Context, sess *kgo.GroupTransactSession, recs []*kgo.Record) error {
	if err := sess.Begin(); err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	start := time.Now()
	w.begun, w.full = start, len(recs) >= w.cfg.BatchSize
	promise := kgo.AbortingFirstErrPromise(sess.Client())
	// Produce outlives a stop request: the batch is finished or aborted as a whole.
	produceCtx := context.WithoutCancel(ctx)
	produce := func(r *kgo.Record) { sess.Produce(produceCtx, r, promise.Promise()) }
	copies := w.trim.copyDue(w.store, w.changelogOf, produce)
	t := newTally()
	transient := w.process(ctx, recs, produce, t)
	if transient == nil {
		w.produceChangelog(produce)
	}
	if w.beforeEnd != nil {
		w.beforeEnd(sess.Client())
	}
	ending := time.Now()
	perr := promise.Err() // waits for the records to be acknowledged
	endCtx, cancel := w.endContext(ctx)
	defer cancel()
	committed, err := sess.End(endCtx, kgo.TransactionEndTry(transient == nil && perr == nil))
	w.m.endTime.WithLabelValues(w.hop.Name()).Observe(time.Since(ending).Seconds())
	result := "abort"
	if committed {
		result = "commit"
	}
	w.m.txnLatency.WithLabelValues(w.hop.Name(), result).Observe(time.Since(start).Seconds())
	if committed {
		w.store.commit()
		if err := w.trim.deleteBefore(endCtx, w.adm, copies); err != nil {
			w.log.Warn("trimming changelogs; left for the next copy", "err", err)
		}
		t.publish(w.m)
		w.m.batchSize.WithLabelValues(w.hop.Name()).Observe(float64(len(recs)))
		w.backoff = 0
		return nil
	}
	w.store.abort()
	if err != nil {
		return fmt.Errorf("ending transaction of hop %s: %w", w.hop.Name(), err)
	}
	switch {
	case transient != nil:
		w.m.retries.WithLabelValues(w.hop.Name()).Inc()
		w.sleepBackoff(ctx)
	case perr != nil:
		w.log.Warn("producing failed; transaction aborted", "err", perr)
		w.sleepBackoff(ctx)
	default:
		w.log.Info("transaction aborted by a rebalance; the new owner continues")
	}
	return nil
}

// item is one record on its way through a (possibly fused) hop.
type item struct {
	topic   catalog.Topic
	key     []byte
	value   any
	raw     []byte
	headers map[string]string
}

// pending is an item of the batch waiting for the hop's next stage.
type pending struct {
	origin  *kgo.Record // the input record it comes from
	forward []kgo.RecordHeader
	it      item
}

// process runs a batch through the hop's stages one stage at a time: every item of the
// batch through the first stage, then every output meant for the second, and so on, so
// each stage that is a BatchPreparer sees all of its items at once, fused or not. Order
// within a topic partition is kept, since each stage takes its items in input order.
// Poison records go to a dead-letter topic; the error it returns is transient and means
// the batch must be aborted.
func (w *worker) process(ctx context.Context, recs []*kgo.Record, produce func(*kgo.Record), t *tally) error {
	w.batch = batches.Add(1)
	// entering[i] are the input records that enter the hop at stage i: the input's at the
	// first, a topic of AlsoReads at the stage that reads it.
	entering := make([][]pending, len(w.hop.Stages))
	entering[0] = make([]pending, 0, len(recs))
	for _, r := range recs {
		topic := catalog.Topic(r.Topic)
		at := max(w.hop.entry(topic), 0)
		v, err := w.codec.Decode(topic, r.Value)
		if err != nil {
			w.deadLetter(w.hop.Stages[at].Name, topic, r.Key, r.Value, "", fmt.Errorf("decoding: %w", err), r, produce, t)
			continue
		}
		headers := make(map[string]string, len(r.Headers))
		for _, h := range r.Headers {
			headers[h.Key] = string(h.Value)
		}
		entering[at] = append(entering[at], pending{origin: r, forward: forwardedHeaders(r.Headers),
			it: item{topic: topic, key: r.Key, value: v, raw: r.Value, headers: headers}})
	}
	var items []pending
	for i, def := range w.hop.Stages {
		items = append(items, entering[i]...)
		began := time.Now()
		if err := w.prepareStage(ctx, def, items); err != nil {
			w.log.Warn("transient error preparing the batch; aborting it to retry", "hop", w.hop.Name(), "err", err)
			return err
		}
		prepared := time.Now()
		w.m.stageTime.WithLabelValues(def.Name, "prepare").Observe(prepared.Sub(began).Seconds())
		var next []pending
		got := 0
		for _, p := range items {
			if !def.reads(p.it.topic) {
				continue
			}
			got++
			outs, err := w.call(ctx, i, def, p.origin, p.it, t)
			if err != nil {
				if !IsPermanent(err) {
					w.log.Warn("transient error; aborting the batch to retry it", "topic", p.origin.Topic,
						"partition", p.origin.Partition, "offset", p.origin.Offset, "err", err)
					return err
				}
				w.deadLetter(def.Name, p.it.topic, p.it.key, p.it.raw, paymentOf(p.it.value), err, p.origin, produce, t)
				continue
			}
			for _, o := range outs {
				produce(&kgo.Record{Topic: string(o.topic), Key: o.key, Value: o.raw, Headers: p.forward})
				t.out[[2]string{def.Name, string(o.topic)}]++
				if i+1 < len(w.hop.Stages) && o.topic == w.hop.Stages[i+1].Input {
					next = append(next, pending{origin: p.origin, forward: p.forward, it: o})
				}
			}
		}
		processed := time.Now()
		w.m.stageTime.WithLabelValues(def.Name, "process").Observe(processed.Sub(prepared).Seconds())
		if bf, ok := def.Stage.(BatchFinisher); ok && got > 0 {
			if err := safeFinish(ctx, bf); err != nil {
				w.log.Warn("transient error finishing the batch; aborting it to retry", "stage", def.Name, "err", err)
				return fmt.Errorf("finishing batch for %s: %w", def.Name, err)
			}
			w.m.stageTime.WithLabelValues(def.Name, "finish").Observe(time.Since(processed).Seconds())
		}
		items = next
	}
	return nil
}

// safeFinish turns a panic in Finish into an error, as safePrepare does.
func safeFinish(ctx context.Context, bf BatchFinisher) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("finish panicked: %v", p)
		}
	}()
	return bf.Finish(ctx)
}

// prepareStage hands a BatchPreparer stage the items meant for it.
func (w *worker) prepareStage(ctx context.Context, def Definition, items []pending) error {
	bp, ok := def.Stage.(BatchPreparer)
	if !ok {
		return nil
	}
	ins := make([]*Input, 0, len(items))
	for _, p := range items {
		if def.reads(p.it.topic) {
			ins = append(ins, &Input{Topic: p.it.topic, Partition: p.origin.Partition, Offset: p.origin.Offset, Batch: w.batch,
				Key: p.it.key, Value: p.it.value, Headers: p.it.headers})
		}
	}
	if len(ins) == 0 {
		return nil
	}
	if err := safePrepare(ctx, bp, ins); err != nil {
		return fmt.Errorf("preparing batch for %s: %w", def.Name, err)
	}
	return nil
}

// safePrepare turns a panic in Prepare into an error: the batch is retried, and a stage
// that panics on every try keeps the partition waiting, which an operator sees in the
// retry metric, rather than losing records.
func safePrepare(ctx context.Context, bp BatchPreparer, ins []*Input) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("prepare panicked: %v", p)
		}
	}()
	return bp.Prepare(ctx, ins)
}

// forwardedHeaders are the input headers outputs keep (tracing, for one): all but the
// dead-letter ones, which a record replayed from a DLQ still carries.
func forwardedHeaders(hs []kgo.RecordHeader) []kgo.RecordHeader {
	var out []kgo.RecordHeader
	for _, h := range hs {
		if !strings.HasPrefix(h.Key, dlqHeaderPrefix) {
			out = append(out, h)
		}
	}
	return out
}

// call runs one stage on one item and encodes its outputs.
func (w *worker) call(ctx context.Context, i int, def Definition, origin *kgo.Record, it item, t *tally) ([]item, error) {
	var st State = noState{}
	var rs *recordState
	if def.Stateful {
		k := stateKey{stage: i, partition: origin.Partition}
		if !w.store.loaded(k) {
			// Assignment callbacks precede fetches, so this means a restore failed; queue
			// it again and let the retry path restore before processing.
			w.evMu.Lock()
			w.events = append(w.events, partitionEvent{assigned: true, partitions: []int32{origin.Partition}})
			w.evMu.Unlock()
			return nil, fmt.Errorf("state of %s partition %d is not restored", def.Name, origin.Partition)
		}
		rs = &recordState{s: w.store, k: k}
		st = rs
	}
	in := &Input{Topic: it.topic, Partition: origin.Partition, Offset: origin.Offset, Batch: w.batch,
		Key: it.key, Value: it.value, Headers: it.headers}
	w.m.recordsIn.WithLabelValues(def.Name).Inc()
	res, err := safeProcess(ctx, def.Stage, in, st)
	if err != nil {
		return nil, err
	}
	outs := make([]item, 0, len(res.Outputs))
	for _, o := range res.Outputs {
		if !def.writes(o.Topic) {
			return nil, Permanent(fmt.Errorf("writing to %s: not among the stage's declared outputs", o.Topic))
		}
		b, err := w.codec.Encode(o.Topic, o.Value)
		if err != nil {
			return nil, Permanent(fmt.Errorf("encoding output for %s: %w", o.Topic, err))
		}
		key := o.Key
		if key == nil {
			key = it.key
		}
		outs = append(outs, item{topic: o.Topic, key: key, value: o.Value, raw: b, headers: it.headers})
	}
	if rs != nil {
		rs.keep()
	}
	if res.Rejected != "" {
		t.rejected[[2]string{def.Name, res.Rejected}]++
		w.log.Debug("payment rejected", "stage", def.Name, "topic", origin.Topic, "partition", origin.Partition,
			"offset", origin.Offset, "payment", paymentOf(it.value), "reason", res.Rejected)
	}
	return outs, nil
}

// safeProcess turns a panicking stage into a permanent error for that record.
func safeProcess(ctx context.Context, s Stage, in *Input, st State) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Permanent(fmt.Errorf("stage panicked: %v\n%s", p, debug.Stack()))
		}
	}()
	return s.Process(ctx, in, st)
}

func (w *worker) deadLetter(stage string, topic catalog.Topic, key, value []byte, payment string, err error,
	origin *kgo.Record, produce func(*kgo.Record), t *tally) {
	w.log.Warn("sending record to dead-letter topic", "stage", stage, "topic", origin.Topic,
		"partition", origin.Partition, "offset", origin.Offset, "payment", payment, "dlq", topic.DLQ(), "err", err)
	produce(&kgo.Record{Topic: string(topic.DLQ()), Key: key, Value: value,
		Headers: dlqHeaders(stage, err, origin, time.Now())})
	t.dlq[[2]string{stage, string(topic.DLQ())}]++
}

func (w *worker) changelogOf(k stateKey) string {
	return string(w.hop.Stages[k.stage].Group.Changelog())
}

// produceChangelog writes the transaction's last value of every key it changed.
func (w *worker) produceChangelog(produce func(*kgo.Record)) {
	for k, writes := range w.store.txn {
		w.trim.wrote(k)
		topic := w.changelogOf(k)
		for key, v := range writes {
			produce(&kgo.Record{Topic: topic, Partition: k.partition, Key: []byte(key), Value: v})
		}
	}
}
