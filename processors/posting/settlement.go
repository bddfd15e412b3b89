package posting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/connectors"
	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/processors/pipeline"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// rememberExternal keeps what the settlement stage needs to finish a payment when its
// counterparty answers. Re-recording (a retried batch) keeps the first copy.
func (s *Stage) rememberExternal(ctx context.Context, p *schemas.Payment) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO pending_external (payment_id, payment) VALUES ($1, $2)
		ON CONFLICT (payment_id) DO NOTHING`, p.PaymentID, b)
	if err != nil {
		return fmt.Errorf("recording pending payment %s: %w", p.PaymentID, err)
	}
	return nil
}

// Settlement is the stage that finishes payments on their connector's answer: a paid-out
// withdrawal captures its hold, a refused one voids it; a collected top-up credits the
// wallet from the connector's clearing account, a refused one ends failed.
type Settlement struct {
	ledger *ledger.Ledger
	pool   *pgxpool.Pool
	acc    *accounts
	now    func() time.Time
}

// NewSettlement returns the settlement stage.
func NewSettlement(l *ledger.Ledger, pool *pgxpool.Pool) *Settlement {
	return &Settlement{ledger: l, pool: pool, acc: &accounts{l: l, m: map[string]ledger.AccountID{}}, now: time.Now}
}

// Definition is the stage's wiring.
func (s *Settlement) Definition() processors.Definition {
	return processors.Definition{Name: "settlement", Input: catalog.ConnectorResults, Group: catalog.GroupSettlement,
		Outputs: []catalog.Topic{catalog.PaymentsOutcomes}, Stage: s}
}

// Process applies one connector result.
func (s *Settlement) Process(ctx context.Context, in *processors.Input, _ processors.State) (processors.Result, error) {
	res, ok := in.Value.(*schemas.ConnectorResult)
	if !ok {
		return processors.Result{}, processors.Permanent(fmt.Errorf("settlement got %T", in.Value))
	}
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT payment FROM pending_external WHERE payment_id = $1`, res.PaymentID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return processors.Result{}, processors.Permanent(fmt.Errorf("result for %s, which waits for no connector", res.PaymentID))
	}
	if err != nil {
		return processors.Result{}, fmt.Errorf("reading pending payment %s: %w", res.PaymentID, err)
	}
	var p schemas.Payment
	if err := json.Unmarshal(raw, &p); err != nil {
		return processors.Result{}, processors.Permanent(fmt.Errorf("decoding pending payment %s: %w", res.PaymentID, err))
	}
	if res.Status == connectors.Unknown {
		// Neither done nor refused: the next file or an inquiry decides; keep waiting.
		return processors.Result{}, nil
	}
	succeeded := res.Status == connectors.Succeeded
	key := ledger.OpKey{Owner: "paystream", ExternalID: p.PaymentID + "/settle"}
	switch {
	case p.Type == "withdrawal":
		h, err := s.ledger.HoldByPayment(ctx, p.PaymentID)
		if err != nil {
			return processors.Result{}, fmt.Errorf("finding the hold of %s: %w", p.PaymentID, err)
		}
		if succeeded {
			_, err = s.ledger.Capture(ctx, ledger.CaptureRequest{OpKey: key, HoldID: h.ID, Amount: p.Amount.Amount, Mode: ledger.ReleaseFullReservation})
		} else {
			_, err = s.ledger.Void(ctx, ledger.VoidRequest{OpKey: key, HoldID: h.ID})
		}
		if err != nil {
			return processors.Result{}, fmt.Errorf("settling %s: %w", p.PaymentID, err)
		}
	case p.Type == "topup" && succeeded:
		clearing, err := s.acc.system(ctx, p.Subsidiary, ledger.ConnectorClearing, p.Amount.Currency, res.Connector)
		if err != nil {
			return processors.Result{}, err
		}
		wallet, err := s.acc.wallet(ctx, p.PayeeWallet, p.Amount.Currency)
		if err != nil {
			return processors.Result{}, processors.Permanent(err)
		}
		r, err := s.ledger.PostBatch(ctx, []ledger.Posting{ledger.TopUp(p.PaymentID, clearing, wallet, p.Amount.Amount, p.Amount.Currency, ledger.Fee{})},
			ledger.BatchOptions{Partition: int(in.Partition)})
		if err != nil {
			return processors.Result{}, fmt.Errorf("crediting top-up %s: %w", p.PaymentID, err)
		}
		if r[0].Status != ledger.Posted {
			return pipeline.Reject(&p, "settlement", "", ledger.Reason(r[0].Err), fmt.Sprint(r[0].Err), s.now()), nil
		}
	}
	if _, err := s.pool.Exec(ctx, `UPDATE pending_external SET settled_at = coalesce(settled_at, now()) WHERE payment_id = $1`, p.PaymentID); err != nil {
		return processors.Result{}, fmt.Errorf("marking %s settled: %w", p.PaymentID, err)
	}
	status, reason := pipeline.StatusPosted, ""
	if !succeeded {
		status, reason = pipeline.StatusFailed, res.ReasonCode
		if reason == "" {
			reason = "connector_failed"
		}
	}
	o := pipeline.Outcome(&p, "settlement", status, reason, "", s.now())
	o.Decisions = append(o.Decisions, schemas.Decision{Stage: "settlement", Decision: status, Reasons: []string{res.Connector}})
	return processors.Result{Outputs: []processors.Output{{Topic: catalog.PaymentsOutcomes, Value: o}}}, nil
}
