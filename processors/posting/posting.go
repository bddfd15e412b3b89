// Package posting holds the last stages of the chain. The posting stage turns a routed
// payment into ledger postings, applied for a whole Kafka batch in one database
// transaction inside the runner's Kafka transaction, and writes the outcome; for a
// payment that needs a counterparty it places a hold (withdrawal) or nothing (top-up)
// and asks the connector. The settlement stage reads the connector's answer and captures,
// voids or credits. The ledger posts a payment id at most once, so a replayed record gets
// the stored result and re-emits the same outcome: that is what makes the outcome exactly
// once even when the Kafka transaction is retried after the database committed.
package posting

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/connectors"
	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/processors/fee"
	"github.com/paystream/paystream/processors/pipeline"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// Reason codes of the posting stage besides the ledger's (ledger.Reason).
const (
	ReasonNoAccount     = "account_not_found"
	ReasonHoldNotFound  = "hold_not_found"
	ReasonRefundTooHigh = "refund_exceeds_payment"
	ReasonUnsupported   = "unsupported_payment"
)

// Stage is the posting stage.
type Stage struct {
	ledger *ledger.Ledger
	pool   *pgxpool.Pool
	acc    *accounts
	now    func() time.Time

	// ReleaseRewards gives back a campaign's promise when a payment with cash rewards is
	// not posted (loyalty.Rules.Release); nil when loyalty does not run.
	ReleaseRewards func(ctx context.Context, paymentID string) error

	mu           sync.Mutex
	prepared     map[string]ledger.Result // by payment id, for the batch being processed
	postings     map[string]ledger.Posting
	batchRefunds map[string]decimal.Decimal // refunded per target by the batch being prepared
	rejected     map[string]rejection       // decided by Prepare without the ledger
	holdOps      map[string]ledger.OpResult // holds and captures decided by Prepare, by payment id
}

// New returns the posting stage.
func New(l *ledger.Ledger, pool *pgxpool.Pool) *Stage {
	return &Stage{ledger: l, pool: pool, acc: &accounts{l: l, m: map[string]ledger.AccountID{}}, now: time.Now,
		prepared: map[string]ledger.Result{}, postings: map[string]ledger.Posting{}, batchRefunds: map[string]decimal.Decimal{},
		rejected: map[string]rejection{}, holdOps: map[string]ledger.OpResult{}}
}

// Definition is the stage's wiring.
func (s *Stage) Definition() processors.Definition {
	return processors.Definition{Name: pipeline.Posting, Input: catalog.PaymentsRouted, Group: catalog.GroupPosting,
		Outputs: []catalog.Topic{catalog.PaymentsOutcomes, catalog.ConnectorRequests}, Stage: s}
}

// batched reports whether a payment is posted with PostBatch (linked transfers, no hold).
func batched(p *schemas.Payment) bool {
	if p.Operation == "refund" || (p.Operation == "" && p.Type == "refund") {
		return true
	}
	return p.Operation == "" && (p.Type == "transfer" || p.Type == "merchant_payment")
}

// Prepare posts every batched payment of the Kafka batch in one database transaction,
// then places and captures its holds in another.
func (s *Stage) Prepare(ctx context.Context, ins []*processors.Input) error {
	s.mu.Lock()
	clear(s.batchRefunds)
	clear(s.prepared)
	clear(s.postings)
	clear(s.rejected)
	clear(s.holdOps)
	s.mu.Unlock()
	if err := s.postBatch(ctx, ins); err != nil {
		return err
	}
	return s.holdBatch(ctx, ins)
}

// postBatch posts every batched payment of the Kafka batch in one database transaction.
func (s *Stage) postBatch(ctx context.Context, ins []*processors.Input) error {
	var ps []ledger.Posting
	partition := 0
	for _, in := range ins {
		p, ok := in.Value.(*schemas.Payment)
		if !ok || !batched(p) {
			continue
		}
		partition = int(in.Partition)
		posting, err := s.build(ctx, p)
		if err != nil {
			var reject rejection
			if errors.As(err, &reject) {
				s.mu.Lock()
				s.rejected[p.PaymentID] = reject
				s.mu.Unlock()
				continue
			}
			return err
		}
		ps = append(ps, posting)
	}
	if len(ps) == 0 {
		return nil
	}
	results, err := s.ledger.PostBatch(ctx, ps, ledger.BatchOptions{Partition: partition})
	if err != nil {
		return fmt.Errorf("posting batch: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range results {
		s.prepared[r.PaymentID] = r
		s.postings[r.PaymentID] = ps[i]
	}
	return nil
}

// holdBatch places and captures the holds of the Kafka batch in one database transaction,
// after its postings, as Process would one by one. What it cannot decide (a capture of a
// hold the batch itself places, a wallet it cannot find) is left to Process.
func (s *Stage) holdBatch(ctx context.Context, ins []*processors.Input) error {
	var ops []ledger.HoldOp
	var pids []string
	for _, in := range ins {
		p, ok := in.Value.(*schemas.Payment)
		if !ok || batched(p) {
			continue
		}
		switch {
		case p.Operation == "capture":
			ops = append(ops, ledger.HoldOp{Capture: &ledger.PaymentCapture{OpKey: opKey(p), TargetPaymentID: p.TargetPaymentID,
				Amount: p.Amount.Amount, Mode: captureMode(p)}})
		case p.Operation == "void" || p.Operation == "adjust" || p.Type != "hold":
			continue
		default:
			r, err := s.reserveRequest(ctx, p, int(in.Partition))
			if err != nil {
				continue
			}
			ops = append(ops, ledger.HoldOp{Reserve: &r})
		}
		pids = append(pids, p.PaymentID)
	}
	if len(ops) == 0 {
		return nil
	}
	results, err := s.ledger.HoldBatch(ctx, ops)
	if err != nil {
		return fmt.Errorf("holding batch: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range results {
		if !r.Alone {
			s.holdOps[pids[i]] = r
		}
	}
	return nil
}

// decided is what holdBatch decided for a hold payment or capture of the batch.
func (s *Stage) decided(p *schemas.Payment) (ledger.OpResult, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.holdOps[p.PaymentID]
	return r, ok
}

func captureMode(p *schemas.Payment) ledger.CaptureMode {
	if p.CaptureMode == "keep_rest" {
		return ledger.KeepRemainingReservation
	}
	return ledger.ReleaseFullReservation
}

// rejection is a payment the stage ends without asking the ledger.
type rejection struct{ code, detail string }

func (r rejection) Error() string { return r.code + ": " + r.detail }

// build turns a batched payment into its linked transfers.
func (s *Stage) build(ctx context.Context, p *schemas.Payment) (ledger.Posting, error) {
	cur := p.Amount.Currency
	payer, err := s.acc.wallet(ctx, p.PayerWallet, cur)
	if err != nil {
		return ledger.Posting{}, s.accountErr(err)
	}
	payee, err := s.acc.wallet(ctx, p.PayeeWallet, cur)
	if err != nil {
		return ledger.Posting{}, s.accountErr(err)
	}
	fees, err := s.fees(ctx, p, payer, payee)
	if err != nil {
		return ledger.Posting{}, err
	}
	var posting ledger.Posting
	switch {
	case p.Operation == "refund" || p.Type == "refund":
		if err := s.checkRefund(ctx, p); err != nil {
			return ledger.Posting{}, err
		}
		posting = ledger.RefundPayment(p.PaymentID, payer, payee, p.Amount.Amount, cur)
		posting.Transfers = append(posting.Transfers, fees.transfers(cur)...)
		return posting, nil
	case p.Type == "transfer":
		posting = ledger.P2P(p.PaymentID, payer, payee, p.Amount.Amount, cur, ledger.Fee{})
	case p.Type == "merchant_payment":
		r, err := s.rewards(ctx, p, payer)
		if err != nil {
			return ledger.Posting{}, err
		}
		if r.redemption != nil {
			c := *r.redemption
			c.Customer, c.Merchant, c.Currency, c.MCC = payer, payee, cur, p.MCC
			posting = ledger.CombinationPayment(p.PaymentID, c, ledger.Fee{})
			// CombinationPayment charges its fee to the merchant; ours follow the definitions.
		} else {
			posting = ledger.MerchantPayment(p.PaymentID, payer, payee, p.Amount.Amount, cur, p.MCC, ledger.Fee{}, r.discount)
		}
		posting.Transfers = append(posting.Transfers, r.extra...)
	default:
		return ledger.Posting{}, rejection{ReasonUnsupported, "cannot post a " + p.Type}
	}
	posting.Transfers = append(posting.Transfers, fees.transfers(cur)...)
	return posting, nil
}

func (s *Stage) accountErr(err error) error {
	if errors.Is(err, errNoAccount) {
		return rejection{ReasonNoAccount, err.Error()}
	}
	return err
}

// feeSet is the fee transfers of a payment: each line charged to the party its definition
// names (payer:… or merchant:…), into fee revenue and VAT payable.
type feeSet struct {
	lines      []ledger.Fee
	revenue    ledger.AccountID
	vatPayable ledger.AccountID
}

func (f feeSet) transfers(currency string) []ledger.Transfer {
	var ts []ledger.Transfer
	for _, l := range f.lines {
		if l.Amount.IsPositive() {
			ts = append(ts, ledger.Transfer{Code: ledger.CodeFee, Debit: l.Payer, Credit: f.revenue, Amount: l.Amount, Currency: currency})
		}
		if l.VAT.IsPositive() {
			ts = append(ts, ledger.Transfer{Code: ledger.CodeVAT, Debit: l.Payer, Credit: f.vatPayable, Amount: l.VAT, Currency: currency})
		}
	}
	return ts
}

// fees sums the payment's fee lines per paying party.
func (s *Stage) fees(ctx context.Context, p *schemas.Payment, payer, payee ledger.AccountID) (feeSet, error) {
	var f feeSet
	byParty := map[fee.PaidBy]*ledger.Fee{}
	var order []fee.PaidBy
	for _, l := range p.Fees {
		party, _, ok := fee.SplitLineCode(l.Code)
		if !ok {
			party = fee.PaidByPayer // a line without a party is the payer's
		}
		if byParty[party] == nil {
			acc := payer
			if party == fee.PaidByMerchant {
				acc = payee
			}
			byParty[party] = &ledger.Fee{Payer: acc}
			order = append(order, party)
		}
		byParty[party].Amount = byParty[party].Amount.Add(l.Amount.Amount)
		byParty[party].VAT = byParty[party].VAT.Add(l.VAT.Amount)
	}
	if len(order) == 0 {
		return f, nil
	}
	for _, party := range order {
		f.lines = append(f.lines, *byParty[party])
	}
	var err error
	if f.revenue, err = s.acc.system(ctx, p.Subsidiary, ledger.FeeRevenue, p.Amount.Currency, ""); err != nil {
		return f, err
	}
	if f.vatPayable, err = s.acc.system(ctx, p.Subsidiary, ledger.VATPayable, p.Amount.Currency, ""); err != nil {
		return f, err
	}
	return f, nil
}

// rewardSet is how a merchant payment's rewards post.
type rewardSet struct {
	discount   ledger.Discount
	redemption *ledger.Combination
	extra      []ledger.Transfer // cashback and points earned
}

// rewards turns the loyalty stage's rewards into transfers: a discount or random
// reduction is paid to the merchant by the campaign budget, a rebate credits the customer
// from it, points are credited from the points liability, and a points redemption makes
// the payment a combination of points and balance.
func (s *Stage) rewards(ctx context.Context, p *schemas.Payment, customer ledger.AccountID) (rewardSet, error) {
	var r rewardSet
	cur := p.Amount.Currency
	for _, rw := range p.Rewards {
		switch rw.Kind {
		case "discount", "random_reduction", "rebate", "points_redemption":
			budget, err := s.acc.system(ctx, p.Subsidiary, ledger.CampaignBudget, cur, rw.Campaign)
			if err != nil {
				return r, err
			}
			switch rw.Kind {
			case "rebate":
				r.extra = append(r.extra, ledger.Transfer{Code: ledger.CodeReward, Debit: budget, Credit: customer, Amount: rw.Amount.Amount, Currency: cur})
			case "points_redemption":
				points, err := s.acc.points(ctx, p.PayerWallet)
				if err != nil {
					return r, err
				}
				liability, err := s.acc.system(ctx, p.Subsidiary, ledger.PointsLiability, "PTS", "")
				if err != nil {
					return r, err
				}
				value := rw.Amount.Amount
				r.redemption = &ledger.Combination{CustomerPoints: points, PointsLiability: liability, Budget: budget,
					Points: decimal.NewFromInt(rw.Points), PointsValue: value, Balance: p.Amount.Amount.Sub(value)}
			default:
				if r.discount.Budget != 0 && r.discount.Budget != budget {
					return r, rejection{ReasonUnsupported, "discounts from two campaigns on one payment"}
				}
				r.discount.Budget, r.discount.Amount = budget, r.discount.Amount.Add(rw.Amount.Amount)
			}
		case "points", "points_earned":
			if rw.Points <= 0 {
				continue
			}
			points, err := s.acc.points(ctx, p.PayerWallet)
			if err != nil {
				return r, err
			}
			liability, err := s.acc.system(ctx, p.Subsidiary, ledger.PointsLiability, "PTS", "")
			if err != nil {
				return r, err
			}
			r.extra = append(r.extra, ledger.Transfer{Code: ledger.CodePoints, Debit: liability, Credit: points,
				Amount: decimal.NewFromInt(rw.Points), Currency: "PTS"})
		}
	}
	return r, nil
}

// checkRefund keeps the refunds of a payment within what it paid. The refunds of one
// payment all come from its payee's wallet, so they share a partition and are decided in
// order; refunds earlier in the same batch (not yet posted) count through batchRefunds.
func (s *Stage) checkRefund(ctx context.Context, p *schemas.Payment) error {
	if p.TargetPaymentID == "" {
		return rejection{ReasonUnsupported, "a refund names the payment it refunds"}
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO payment_refunds (payment_id, target, amount) VALUES ($1, $2, $3)
		ON CONFLICT (payment_id) DO NOTHING`, p.PaymentID, p.TargetPaymentID, p.Amount.Amount); err != nil {
		return fmt.Errorf("recording refund of %s: %w", p.TargetPaymentID, err)
	}
	paid, err := s.ledger.PostedAmount(ctx, []string{p.TargetPaymentID}, ledger.CodePrincipal, ledger.CodeDiscount)
	if err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, `SELECT payment_id FROM payment_refunds WHERE target = $1 AND payment_id <> $2`,
		p.TargetPaymentID, p.PaymentID)
	if err != nil {
		return fmt.Errorf("reading refunds of %s: %w", p.TargetPaymentID, err)
	}
	earlier, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("reading refunds of %s: %w", p.TargetPaymentID, err)
	}
	refunded, err := s.ledger.PostedAmount(ctx, earlier, ledger.CodeRefund)
	if err != nil {
		return err
	}
	s.mu.Lock()
	refunded = refunded.Add(s.batchRefunds[p.TargetPaymentID])
	s.mu.Unlock()
	if paid.IsZero() {
		return rejection{ReasonUnsupported, "nothing was paid by " + p.TargetPaymentID}
	}
	if refunded.Add(p.Amount.Amount).GreaterThan(paid) {
		return rejection{ReasonRefundTooHigh, fmt.Sprintf("refunds would reach %s of %s paid", refunded.Add(p.Amount.Amount), paid)}
	}
	s.mu.Lock()
	s.batchRefunds[p.TargetPaymentID] = s.batchRefunds[p.TargetPaymentID].Add(p.Amount.Amount)
	s.mu.Unlock()
	return nil
}

// Process writes the payment's outcome, posting it first when Prepare did not.
func (s *Stage) Process(ctx context.Context, in *processors.Input, _ processors.State) (processors.Result, error) {
	p, ok := in.Value.(*schemas.Payment)
	if !ok {
		return processors.Result{}, processors.Permanent(fmt.Errorf("posting got %T", in.Value))
	}
	res, err := s.process(ctx, p, int(in.Partition))
	var reject rejection
	if errors.As(err, &reject) {
		return pipeline.Reject(p, pipeline.Posting, "", reject.code, reject.detail, s.now()), nil
	}
	return res, err
}

func (s *Stage) process(ctx context.Context, p *schemas.Payment, partition int) (processors.Result, error) {
	switch {
	case batched(p):
		return s.posted(ctx, p, partition)
	case p.Operation == "capture" || p.Operation == "void" || p.Operation == "adjust":
		if r, ok := s.decided(p); ok {
			return s.opOutcome(p, r.Err)
		}
		return s.holdOperation(ctx, p)
	case p.Type == "hold":
		if r, ok := s.decided(p); ok {
			return s.opOutcome(p, r.Err)
		}
		return s.reserve(ctx, p, partition)
	case p.Route != nil && p.Route.Kind == "connector":
		return s.external(ctx, p, partition)
	}
	return processors.Result{}, rejection{ReasonUnsupported, "cannot post a " + p.Type}
}

// posted answers a batched payment from Prepare's result, posting it alone if Prepare
// did not see it (a fused hop).
func (s *Stage) posted(ctx context.Context, p *schemas.Payment, partition int) (processors.Result, error) {
	s.mu.Lock()
	r, ok := s.prepared[p.PaymentID]
	posting := s.postings[p.PaymentID]
	reject, rejected := s.rejected[p.PaymentID]
	s.mu.Unlock()
	if rejected {
		if len(p.Rewards) > 0 && s.ReleaseRewards != nil {
			if err := s.ReleaseRewards(ctx, p.PaymentID); err != nil {
				return processors.Result{}, fmt.Errorf("releasing rewards of %s: %w", p.PaymentID, err)
			}
		}
		return processors.Result{}, reject
	}
	if !ok {
		var err error
		if posting, err = s.build(ctx, p); err != nil {
			return processors.Result{}, err
		}
		rs, err := s.ledger.PostBatch(ctx, []ledger.Posting{posting}, ledger.BatchOptions{Partition: partition})
		if err != nil {
			return processors.Result{}, fmt.Errorf("posting %s: %w", p.PaymentID, err)
		}
		r = rs[0]
	}
	if r.Status != ledger.Posted && len(p.Rewards) > 0 && s.ReleaseRewards != nil {
		if err := s.ReleaseRewards(ctx, p.PaymentID); err != nil {
			return processors.Result{}, fmt.Errorf("releasing rewards of %s: %w", p.PaymentID, err)
		}
	}
	return s.outcomeOf(p, r, posting), nil
}

// outcomeOf turns a ledger result into the payment's outcome.
func (s *Stage) outcomeOf(p *schemas.Payment, r ledger.Result, posting ledger.Posting) processors.Result {
	if r.Status != ledger.Posted {
		code := ledger.Reason(r.Err)
		if code == "" {
			code = "posting_refused"
		}
		detail := ""
		if r.Err != nil {
			detail = r.Err.Error()
		}
		return pipeline.Reject(p, pipeline.Posting, "", code, detail, s.now())
	}
	o := pipeline.Outcome(p, pipeline.Posting, pipeline.StatusPosted, "", "", s.now())
	o.Decisions = append(o.Decisions, schemas.Decision{Stage: pipeline.Posting, Decision: pipeline.StatusPosted, Reasons: []string{}})
	for i, t := range posting.Transfers {
		line := schemas.PostingLine{Code: string(t.Code), DebitAccount: ledger.AccountRef(t.Debit),
			CreditAccount: ledger.AccountRef(t.Credit), Amount: schemas.Money{Amount: t.Amount, Currency: t.Currency}}
		if i < len(r.TransferIDs) {
			line.TransferID = strconv.FormatInt(r.TransferIDs[i], 10)
		}
		o.Postings = append(o.Postings, line)
	}
	return processors.Result{Outputs: []processors.Output{{Topic: catalog.PaymentsOutcomes, Value: o}}}
}

// opKey makes a payment's hold operations idempotent: one operation per payment id.
func opKey(p *schemas.Payment) ledger.OpKey {
	return ledger.OpKey{Owner: "paystream", ExternalID: p.PaymentID}
}

// reserve places a hold for a hold payment, in favour of the payee.
func (s *Stage) reserve(ctx context.Context, p *schemas.Payment, partition int) (processors.Result, error) {
	r, err := s.reserveRequest(ctx, p, partition)
	if err != nil {
		return processors.Result{}, s.accountErr(err)
	}
	_, err = s.ledger.Reserve(ctx, r)
	return s.opOutcome(p, err)
}

// reserveRequest is a hold payment's reservation on the payer in favour of the payee.
func (s *Stage) reserveRequest(ctx context.Context, p *schemas.Payment, partition int) (ledger.ReserveRequest, error) {
	cur := p.Amount.Currency
	payer, err := s.acc.wallet(ctx, p.PayerWallet, cur)
	if err != nil {
		return ledger.ReserveRequest{}, err
	}
	payee, err := s.acc.wallet(ctx, p.PayeeWallet, cur)
	if err != nil {
		return ledger.ReserveRequest{}, err
	}
	return ledger.ReserveRequest{OpKey: opKey(p), PaymentID: p.PaymentID, Account: payer,
		Counter: payee, Amount: p.Amount.Amount, Currency: cur, MCC: p.MCC, Partition: partition}, nil
}

// holdOperation captures, voids or adjusts the hold of the target payment.
func (s *Stage) holdOperation(ctx context.Context, p *schemas.Payment) (processors.Result, error) {
	h, err := s.ledger.HoldByPayment(ctx, p.TargetPaymentID)
	if errors.Is(err, ledger.ErrNotFound) {
		return processors.Result{}, rejection{ReasonHoldNotFound, "no hold for " + p.TargetPaymentID}
	}
	if err != nil {
		return processors.Result{}, err
	}
	switch p.Operation {
	case "capture":
		_, err = s.ledger.Capture(ctx, ledger.CaptureRequest{OpKey: opKey(p), HoldID: h.ID, Amount: p.Amount.Amount, Mode: captureMode(p)})
	case "void":
		_, err = s.ledger.Void(ctx, ledger.VoidRequest{OpKey: opKey(p), HoldID: h.ID})
	case "adjust":
		_, err = s.ledger.AdjustReservation(ctx, ledger.AdjustRequest{OpKey: opKey(p), HoldID: h.ID, Delta: p.Amount.Amount.Sub(h.Held)})
	}
	return s.opOutcome(p, err)
}

// opOutcome turns a hold operation's answer into an outcome: a refusal by the ledger is
// a rejection, anything else is retried.
func (s *Stage) opOutcome(p *schemas.Payment, err error) (processors.Result, error) {
	if err != nil {
		if code := ledger.Reason(err); code != "" || isLedgerRefusal(err) {
			if code == "" {
				code = "operation_refused"
			}
			return pipeline.Reject(p, pipeline.Posting, "", code, err.Error(), s.now()), nil
		}
		return processors.Result{}, err
	}
	o := pipeline.Outcome(p, pipeline.Posting, pipeline.StatusPosted, "", "", s.now())
	o.Decisions = append(o.Decisions, schemas.Decision{Stage: pipeline.Posting, Decision: pipeline.StatusPosted, Reasons: []string{}})
	return processors.Result{Outputs: []processors.Output{{Topic: catalog.PaymentsOutcomes, Value: o}}}, nil
}

func isLedgerRefusal(err error) bool {
	for _, s := range []error{ledger.ErrHoldExceeded, ledger.ErrRefundExceeded, ledger.ErrUnknownHold,
		ledger.ErrIdempotencyConflict, ledger.ErrAlreadyCancelled, ledger.ErrRefundsOutstanding, ledger.ErrInvalid} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// external starts a payment that needs a counterparty: a withdrawal reserves its amount
// (and fee) on the wallet first; a top-up credits nothing until the bank confirms.
func (s *Stage) external(ctx context.Context, p *schemas.Payment, partition int) (processors.Result, error) {
	cur := p.Amount.Currency
	wallet := p.PayerWallet
	op := connectors.OpPayout
	if p.Type == "topup" {
		wallet, op = p.PayeeWallet, connectors.OpCollect
	}
	acc, err := s.acc.wallet(ctx, wallet, cur)
	if err != nil {
		return processors.Result{}, s.accountErr(err)
	}
	if p.Type == "withdrawal" {
		clearing, err := s.acc.system(ctx, p.Subsidiary, ledger.ConnectorClearing, cur, p.Route.Connector)
		if err != nil {
			return processors.Result{}, err
		}
		if _, err := s.ledger.Reserve(ctx, ledger.ReserveRequest{OpKey: opKey(p), PaymentID: p.PaymentID, Account: acc,
			Counter: clearing, Amount: p.Amount.Amount, Currency: cur, Partition: partition}); err != nil {
			return s.opOutcome(p, err)
		}
	}
	if err := s.rememberExternal(ctx, p); err != nil {
		return processors.Result{}, err
	}
	req := &schemas.ConnectorRequest{
		Meta:      schemas.Meta{EventID: pipeline.NewEventID(), PaymentID: p.PaymentID, Trace: p.Trace},
		CreatedAt: s.now().UTC(), Connector: p.Route.Connector, Operation: op,
		IdempotencyKey: p.PaymentID + "/" + op, Amount: p.Amount, Account: wallet,
		Details: map[string]string{"type": p.Type, "method": p.Method},
	}
	o := pipeline.Outcome(p, pipeline.Posting, pipeline.StatusPending, "", "waiting for "+p.Route.Connector, s.now())
	o.Decisions = append(o.Decisions, schemas.Decision{Stage: pipeline.Posting, Decision: pipeline.StatusPending, Reasons: []string{}})
	return processors.Result{Outputs: []processors.Output{
		{Topic: catalog.ConnectorRequests, Value: req},
		{Topic: catalog.PaymentsOutcomes, Value: o},
	}}, nil
}
