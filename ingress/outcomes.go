package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
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

// applyOutcomesSQL inserts a batch of outcomes, for the payments this ingress accepted,
// and returns the ids of those applied: the caller has the rest, and sending it back cost
// the server a row of output for every outcome. An outcome of a payment accepted here in
// the last answerDelay is known to have its status row (ours); any other probes the row
// by key, which took about a third of the statement's time. A lateral or EXISTS subquery
// with OFFSET 0 is not merged into a join, which the planner would have read all of a
// young payment_status for (auto_explain at 3,300 payments/s: 161 batches
// of a 30-second run, 35 ms each at the median). It runs on the pool of generic plans
// (see Server.keyPool), so it is not planned afresh for every batch either; an earlier
// form that also joined the status rows back for the webhook events took half as long
// again (8.4-9.3 ms against 5.9-6.5 for 300 outcomes, idle server), and most channels
// have no webhook.
const applyOutcomesSQL = `INSERT INTO payment_outcomes AS o (payment_id, status, reason_code, detail, completed_at, outcome_event)
	 SELECT u.id, u.status, nullif(u.reason, ''), u.detail::json,
	        CASE WHEN u.status IN ('pending_external', 'processing') THEN NULL ELSE u.at END, u.event
	 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::bool[])
	      AS u(id, status, reason, detail, at, event, ours)
	 WHERE u.ours OR EXISTS (SELECT FROM payment_status p WHERE p.payment_id = u.id OFFSET 0)
	 ON CONFLICT (payment_id) DO UPDATE
	     SET status = excluded.status, reason_code = excluded.reason_code, detail = excluded.detail,
	         completed_at = excluded.completed_at, outcome_event = excluded.outcome_event
	     WHERE o.status NOT IN ('succeeded', 'rejected', 'failed') AND o.outcome_event <> excluded.outcome_event
	 RETURNING o.payment_id`

// hookedChannelsSQL lists the channels with a webhook; it rides in the same round trip.
const hookedChannelsSQL = `SELECT coalesce(array_agg(DISTINCT channel_key), '{}') FROM webhooks WHERE deleted_at IS NULL`

// hookedPaymentsSQL reads what the webhook events of applied outcomes need, for the
// channels with a webhook only.
const hookedPaymentsSQL = `SELECT p.payment_id, p.channel_key, p.type, p.amount, p.currency, coalesce(p.source_wallet_id, ''),
	        coalesce(p.destination_wallet_id, ''), coalesce(p.reference, ''), p.created_at
	 FROM unnest($1::text[]) AS u(id)
	 CROSS JOIN LATERAL (SELECT * FROM payment_status WHERE payment_id = u.id OFFSET 0) p
	 WHERE p.channel_key = ANY($2)`

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
	var kept []appliedOutcome // what each row holds once applied, in the order of ids
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
		a := appliedOutcome{p: Payment{ID: o.PaymentID, Status: st, ReasonCode: o.ReasonCode}, detail: b, event: o.EventID}
		if terminal(st) {
			// as the column holds it: whole microseconds, read back in the local zone
			at := o.OccurredAt.Truncate(time.Microsecond).Local()
			a.p.CompletedAt = &at
		}
		kept = append(kept, a)
	}
	if len(ids) == 0 {
		return nil
	}
	var done []appliedOutcome
	var hooked []string
	// Outcomes are inserted rather than written over the status rows: a table that takes
	// only inserts leaves autovacuum nothing to come back for (see migration 00012). Only
	// a payment that waited on a counterparty has its outcome row updated when it ends.
	// A payment whose answer this server still holds was accepted here: its status row
	// needs no probe. Once the outcome row is in, the answer is no longer needed either.
	ours := s.delayed.holds(ids)
	b := &pgx.Batch{}
	b.Queue(hookedChannelsSQL).QueryRow(func(r pgx.Row) error { return r.Scan(&hooked) })
	b.Queue(applyOutcomesSQL, ids, statuses, reasons, details, ats, events, ours).Query(func(rows pgx.Rows) error {
		index := make(map[string]int, len(ids))
		for i, id := range ids {
			index[id] = i
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			done = append(done, kept[index[id]])
		}
		return rows.Err()
	})
	if err := s.keyPool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("applying outcomes: %w", err)
	}
	s.delayed.drop(ids)
	if len(hooked) > 0 && len(done) > 0 {
		hooks, err := s.outcomeEvents(ctx, hooked, done)
		if err != nil {
			return err
		}
		if _, err := s.webhooks.EnqueueAll(ctx, hooks); err != nil {
			return err
		}
	}
	for _, a := range done {
		s.waiters.wake(a.p.ID)
	}
	return nil
}

// appliedOutcome is an outcome the status store took.
type appliedOutcome struct {
	p      Payment
	detail []byte
	event  string
}

// outcomeEvents builds the webhook events of applied outcomes whose channel has a webhook.
// Most channels poll or wait rather than subscribe: building and shipping an event per
// payment for them took a few per cent of a busy ingress's CPU, for nothing.
func (s *Server) outcomeEvents(ctx context.Context, hooked []string, done []appliedOutcome) ([]webhooks.Event, error) {
	byID := make(map[string]*appliedOutcome, len(done))
	ids := make([]string, len(done))
	for i := range done {
		byID[done[i].p.ID], ids[i] = &done[i], done[i].p.ID
	}
	rows, err := s.keyPool.Query(ctx, hookedPaymentsSQL, ids, hooked)
	if err != nil {
		return nil, fmt.Errorf("reading hooked payments: %w", err)
	}
	defer rows.Close()
	var hooks []webhooks.Event
	for rows.Next() {
		var id, channel string
		var amount decimal.Decimal
		var r Payment
		if err := rows.Scan(&id, &channel, &r.Type, &amount, &r.Currency, &r.SourceWalletID,
			&r.DestinationWalletID, &r.Reference, &r.CreatedAt); err != nil {
			return nil, fmt.Errorf("reading hooked payments: %w", err)
		}
		a := byID[id]
		p := a.p
		p.Type, p.Currency, p.SourceWalletID, p.DestinationWalletID, p.Reference, p.CreatedAt =
			r.Type, r.Currency, r.SourceWalletID, r.DestinationWalletID, r.Reference, r.CreatedAt
		s.fill(&p, amount, a.detail)
		payload, err := json.Marshal(map[string]any{"type": "payment." + p.Status, "event_id": a.event, "payment": p})
		if err != nil {
			return nil, err
		}
		hooks = append(hooks, webhooks.Event{ChannelKey: channel, Type: "payment." + p.Status, ID: a.event, Payload: payload})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading hooked payments: %w", err)
	}
	return hooks, nil
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
