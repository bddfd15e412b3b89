package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/ingress/webhooks"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// apiStatus maps an outcome's status to the API's payment status.
var apiStatus = map[string]string{
	"posted":   "succeeded",
	"rejected": "rejected",
	"failed":   "failed",
	"pending":  "pending_external",
}

// outcomeDetail is what the status row keeps of an outcome for GET /v1/payments/{id}.
type outcomeDetail struct {
	Fees      []feeView      `json:"fees"`
	Rewards   []rewardView   `json:"rewards"`
	Decisions []decisionView `json:"decisions"`
}

type feeView struct {
	Code     string `json:"code"`
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
	VAT      string `json:"vat"`
}

type rewardView struct {
	CampaignID string `json:"campaign_id"`
	Kind       string `json:"kind"`
	Amount     string `json:"amount"`
	Currency   string `json:"currency"`
	Points     int64  `json:"points,omitempty"`
}

type decisionView struct {
	Stage    string   `json:"stage"`
	Decision string   `json:"decision"`
	Reasons  []string `json:"reasons"`
}

func (s *Server) detailOf(o *schemas.PaymentOutcome) outcomeDetail {
	d := outcomeDetail{Fees: []feeView{}, Rewards: []rewardView{}, Decisions: []decisionView{}}
	for _, f := range o.Fees {
		exp := s.exponent(f.Amount.Currency)
		d.Fees = append(d.Fees, feeView{Code: f.Code, Amount: f.Amount.Amount.StringFixed(exp),
			Currency: f.Amount.Currency, VAT: f.VAT.Amount.StringFixed(exp)})
	}
	for _, r := range o.Rewards {
		d.Rewards = append(d.Rewards, rewardView{CampaignID: r.Campaign, Kind: r.Kind,
			Amount: r.Amount.Amount.StringFixed(s.exponent(r.Amount.Currency)), Currency: r.Amount.Currency, Points: r.Points})
	}
	for _, x := range o.Decisions {
		reasons := x.Reasons
		if reasons == nil {
			reasons = []string{}
		}
		d.Decisions = append(d.Decisions, decisionView{Stage: x.Stage, Decision: x.Decision, Reasons: reasons})
	}
	return d
}

// applyOutcomesSQL inserts a batch of outcomes and returns, for each one applied, what its
// webhook event needs. Each outcome finds its status row by one primary-key probe. Joined
// plainly, the planner weighed a few hundred probes against one pass over a young table
// and read all of payment_status into a hash table instead: with auto_explain at 3,300
// payments/s, 161 batches of a 30-second run did, 35 ms each at the median and 7.4 s in
// all, the costliest statement of the run. A lateral subquery with OFFSET 0 is not merged
// into a join.
const applyOutcomesSQL = `WITH s AS (
	     SELECT u.id, u.status, u.reason, u.detail, u.at, u.event, p.channel_key, p.type, p.amount, p.currency,
	            p.source_wallet_id, p.destination_wallet_id, p.reference, p.created_at
	     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
	          AS u(id, status, reason, detail, at, event)
	     CROSS JOIN LATERAL (SELECT * FROM payment_status WHERE payment_id = u.id OFFSET 0) p),
	 o AS (
	     INSERT INTO payment_outcomes AS o (payment_id, status, reason_code, detail, completed_at, outcome_event)
	     SELECT id, status, nullif(reason, ''), detail::json,
	            CASE WHEN status IN ('pending_external', 'processing') THEN NULL ELSE at END, event
	     FROM s
	     ON CONFLICT (payment_id) DO UPDATE
	         SET status = excluded.status, reason_code = excluded.reason_code, detail = excluded.detail,
	             completed_at = excluded.completed_at, outcome_event = excluded.outcome_event
	         WHERE o.status NOT IN ('succeeded', 'rejected', 'failed') AND o.outcome_event <> excluded.outcome_event
	     RETURNING o.payment_id, o.status, o.reason_code, o.detail, o.completed_at, o.outcome_event)
	 SELECT o.payment_id, s.channel_key, s.type, o.status, coalesce(o.reason_code, ''), s.amount, s.currency,
	        coalesce(s.source_wallet_id, ''), coalesce(s.destination_wallet_id, ''), coalesce(s.reference, ''),
	        o.detail, s.created_at, o.completed_at, o.outcome_event,
	        EXISTS (SELECT 1 FROM webhooks w WHERE w.channel_key = s.channel_key AND w.deleted_at IS NULL)
	 FROM o JOIN s ON s.id = o.payment_id`

// ApplyOutcomes writes a batch of outcomes to the status store, queues their webhooks and
// wakes the requests waiting for them. Applying an outcome twice changes nothing, and a
// final status (succeeded, rejected, failed) is never overwritten.
func (s *Server) ApplyOutcomes(ctx context.Context, outcomes []*schemas.PaymentOutcome) error {
	// The last outcome of a payment in the batch wins: a partition keeps a payment's order.
	last := map[string]int{}
	for i, o := range outcomes {
		last[o.PaymentID] = i
	}
	var ids, statuses, reasons, details, events []string
	var ats []time.Time
	for i, o := range outcomes {
		if last[o.PaymentID] != i {
			continue
		}
		st, ok := apiStatus[o.Status]
		if o.Status == "pending" && o.ReasonCode == "under_review" {
			st = "processing" // held by risk for an operator, not waiting for a bank
		}
		if !ok {
			s.log.Warn("outcome with an unknown status", "payment", o.PaymentID, "status", o.Status)
			continue
		}
		b, err := json.Marshal(s.detailOf(o))
		if err != nil {
			return err
		}
		ids, statuses, reasons = append(ids, o.PaymentID), append(statuses, st), append(reasons, o.ReasonCode)
		details, events, ats = append(details, string(b)), append(events, o.EventID), append(ats, o.OccurredAt)
	}
	if len(ids) == 0 {
		return nil
	}
	// Outcomes are inserted rather than written over the status rows: a table that takes
	// only inserts leaves autovacuum nothing to come back for (see migration 00012). Only
	// a payment that waited on a counterparty has its outcome row updated when it ends.
	rows, err := s.pool.Query(ctx, applyOutcomesSQL,
		ids, statuses, reasons, details, ats, events)
	if err != nil {
		return fmt.Errorf("applying outcomes: %w", err)
	}
	type changed struct {
		channel, event string
		payment        Payment
		hooked         bool // the channel has a webhook: only then is the event built
	}
	var done []changed
	for rows.Next() {
		var c changed
		var amount decimal.Decimal
		var detail []byte
		p := &c.payment
		if err := rows.Scan(&p.ID, &c.channel, &p.Type, &p.Status, &p.ReasonCode, &amount, &p.Currency,
			&p.SourceWalletID, &p.DestinationWalletID, &p.Reference, &detail, &p.CreatedAt, &p.CompletedAt, &c.event, &c.hooked); err != nil {
			rows.Close()
			return fmt.Errorf("applying outcomes: %w", err)
		}
		if c.hooked {
			p.Amount = amount.StringFixed(s.exponent(p.Currency))
			var d struct{ Fees, Rewards, Decisions json.RawMessage }
			_ = json.Unmarshal(detail, &d)
			p.Fees, p.Rewards, p.Decisions = orEmpty(d.Fees), orEmpty(d.Rewards), orEmpty(d.Decisions)
		}
		done = append(done, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("applying outcomes: %w", err)
	}
	// Most channels poll or wait rather than subscribe: building and shipping an event per
	// payment for them took a few per cent of a busy ingress's CPU, for nothing.
	hooks := make([]webhooks.Event, 0, len(done))
	for _, c := range done {
		if !c.hooked {
			continue
		}
		payload, err := json.Marshal(map[string]any{"type": "payment." + c.payment.Status, "event_id": c.event, "payment": c.payment})
		if err != nil {
			return err
		}
		hooks = append(hooks, webhooks.Event{ChannelKey: c.channel, Type: "payment." + c.payment.Status, ID: c.event, Payload: payload})
	}
	if _, err := s.webhooks.EnqueueAll(ctx, hooks); err != nil {
		return err
	}
	for _, c := range done {
		s.waiters.wake(c.payment.ID)
	}
	return nil
}

// ReadOutcomes consumes payments.outcomes (committed records only) into the status store
// until ctx ends. Offsets are committed after each batch is applied: a crash re-reads at
// most one batch, which ApplyOutcomes tolerates.
func (s *Server) ReadOutcomes(ctx context.Context, opts ...kgo.Opt) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.ConsumerGroup(string(catalog.GroupIngress)),
		kgo.ConsumeTopics(string(catalog.PaymentsOutcomes)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollRecords(ctx, 1000)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			s.log.Error("reading outcomes", "topic", t, "partition", p, "err", err)
		})
		var batch []*schemas.PaymentOutcome
		fs.EachRecord(func(r *kgo.Record) {
			v, err := s.serde.Decode(catalog.PaymentsOutcomes, r.Value)
			if err != nil {
				s.log.Error("undecodable outcome skipped", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
				return
			}
			if o, ok := v.(*schemas.PaymentOutcome); ok {
				batch = append(batch, o)
			}
		})
		for {
			err := s.ApplyOutcomes(ctx, batch)
			if err == nil {
				break
			}
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return nil
			}
			s.log.Error("applying outcomes, retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("committing outcome offsets", "err", err)
		}
	}
}

// waiters lets requests in Prefer: wait mode sleep until their payment's outcome arrives.
type waiters struct {
	mu sync.Mutex
	m  map[string][]chan struct{}
}

func (w *waiters) add(id string) chan struct{} {
	c := make(chan struct{}, 1)
	w.mu.Lock()
	if w.m == nil {
		w.m = map[string][]chan struct{}{}
	}
	w.m[id] = append(w.m[id], c)
	w.mu.Unlock()
	return c
}

func (w *waiters) remove(id string, c chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cs := w.m[id]
	for i, x := range cs {
		if x == c {
			cs = append(cs[:i], cs[i+1:]...)
			break
		}
	}
	if len(cs) == 0 {
		delete(w.m, id)
	} else {
		w.m[id] = cs
	}
}

func (w *waiters) wake(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.m[id] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}
