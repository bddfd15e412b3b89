package risk

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/processors/pipeline"
	"github.com/paystream/paystream/processors/rulecache"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// Scores: an approved payment scores below ScoreReview, in proportion to how close it
// takes the wallet to its tightest limit; a reviewed one ScoreReview; a rejected one
// ScoreReject. Decisions come from the rules' actions, never from the score.
const (
	ScoreReview = 700
	ScoreReject = 1000
	scoreMaxOK  = 499
)

// earliest is a lower bound on CreatedAt; anything before is a malformed record.
var earliest = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

// Stage is the risk stage. It is safe for concurrent use; its per-wallet state is the
// runner's.
type Stage struct {
	pool    *pgxpool.Pool
	ledger  *ledger.Ledger
	parties *pipeline.Parties
	rules   *rulecache.Cache[*ruleSet]
	cfg     Config
}

// New returns the stage with its rules loaded from pool; l reads wallets and users, and
// pool also takes held payments (risk_reviews).
func New(ctx context.Context, pool *pgxpool.Pool, l *ledger.Ledger, cfg Config) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuring risk: %w", err)
	}
	cfg = cfg.withDefaults()
	s := &Stage{pool: pool, ledger: l, cfg: cfg,
		parties: pipeline.NewParties(l, func(*schemas.Payment) string { return "" }),
		rules:   rulecache.New(loadRules(pool, l), cfg.RefreshInterval, cfg.MaxStale, cfg.Logger)}
	if err := s.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("starting risk: %w", err)
	}
	return s, nil
}

// FollowWallets takes the wallets of a batch from another stage's read of the same batch
// (validation's, when the two are fused in one hop) instead of reading them again.
func (s *Stage) FollowWallets(leader *pipeline.Parties) { s.parties.Follow(leader) }

// Prepare reads the wallets of a whole batch at once.
func (s *Stage) Prepare(ctx context.Context, ins []*processors.Input) error {
	return s.parties.Prepare(ctx, ins)
}

// Refresh reloads the rules now instead of at the next refresh interval.
func (s *Stage) Refresh(ctx context.Context) error { return s.rules.Refresh(ctx) }

// Definition is the stage's wiring for the runner's registry.
func (s *Stage) Definition() processors.Definition {
	return processors.Definition{Name: pipeline.Risk, Input: catalog.PaymentsValidated, Group: catalog.GroupRisk,
		Outputs: []catalog.Topic{catalog.PaymentsScreened, catalog.PaymentsOutcomes}, Stateful: true, Stage: s}
}

// finding is one rule's verdict on a payment.
type finding struct {
	code, action string
	detail       string // for the outcome's reason text; never names a person
}

// Process screens one payment. Database errors are transient: the runner retries the
// batch, and the state writes of the failed attempt are discarded with it.
func (s *Stage) Process(ctx context.Context, in *processors.Input, st processors.State) (processors.Result, error) {
	p, ok := in.Value.(*schemas.Payment)
	if !ok {
		return processors.Result{}, processors.Permanent(fmt.Errorf("screening: %T is not a payment", in.Value))
	}
	rules, err := s.rules.Get(ctx)
	if err != nil {
		return processors.Result{}, fmt.Errorf("screening payment: %w", err)
	}
	now := s.cfg.Now().UTC()
	// An operation acts on a payment that was screened when it was made; screening it
	// again would count a capture as a second payment.
	if p.Operation != "" {
		return s.approve(p, 0, nil, now), nil
	}
	subject := p.PayerWallet
	if subject == "" {
		subject = p.PayeeWallet // a top-up: the credited wallet is the key
	}
	ids, ok := walletIDs(p)
	cur, curOK := s.ledger.Currency(p.Amount.Currency)
	amount, whole := minorUnits(p.Amount.Amount, cur.Exponent)
	if !ok || !curOK || p.CreatedAt.Before(earliest) || !p.Amount.Amount.IsPositive() ||
		!whole && !p.Amount.Amount.Equal(p.Amount.Amount.Truncate(cur.Exponent)) {
		return s.reject(p, []finding{{code: ReasonInvalidRecord, detail: "the payment record is malformed"}}, now), nil
	}
	parties, err := s.parties.Get(ctx, "", ids...)
	if err != nil {
		return processors.Result{}, fmt.Errorf("screening payment: %w", err)
	}
	subjectID, _ := ledger.ParseWalletRef(subject)
	party, ok := parties[subjectID]
	if !ok {
		return s.reject(p, []finding{{code: ReasonWalletNotFound, detail: "the wallet does not exist"}}, now), nil
	}

	typeKey, allKey := stateKey(subject, p.Type, p.Amount.Currency), stateKey(subject, AllTypes, p.Amount.Currency)
	byType, all := s.load(st, subject, typeKey), s.load(st, subject, allKey)
	at := unitOf(p.CreatedAt)
	byType.advance(at)
	all.advance(at)
	if !whole {
		amount = toMinor(p.Amount.Amount, cur.Exponent)
	}

	var found []finding
	score := 0 // the closest the payment takes the wallet to a limit
	for _, c := range []struct {
		typ, label string
		c          *counters
	}{{p.Type, p.Type, byType}, {AllTypes, "all", all}} {
		for _, w := range Windows {
			l, ok := rules.limits[limitKey{party.User.KYCLevel, c.typ, w, p.Amount.Currency}]
			if !ok {
				continue
			}
			sum := c.c.sum(w)
			if l.MaxCount != nil {
				n, limit := sum.count+1, uint64(*l.MaxCount)
				if n > limit {
					found = append(found, finding{code: ReasonVelocity, action: l.Action,
						detail: fmt.Sprintf("more than %d %s payments in %s per %s", *l.MaxCount, c.label, l.Currency, w)})
				} else if limit > 0 {
					score = max(score, ratioScore(n, limit))
				}
			}
			if l.MaxAmount != nil {
				over, near := l.turnover(satAdd(sum.amount, amount), cur.Exponent)
				if over {
					found = append(found, finding{code: ReasonTurnover, action: l.Action,
						detail: fmt.Sprintf("%s payments above %s %s per %s", c.label, l.MaxAmount, l.Currency, w)})
				} else {
					score = max(score, near)
				}
			}
		}
	}
	for _, id := range ids {
		if pt, ok := parties[id]; ok {
			if e, ok := rules.watch[pt.User.ID]; ok {
				found = append(found, finding{code: e.ReasonCode, action: e.Action, detail: "a party is on the watch list"})
			}
		}
	}
	if set := rules.settings; set.AnomalyAction != "off" && all.n >= uint64(set.AnomalyMinPayments) &&
		rules.unusual(amount, all.avg) {
		found = append(found, finding{code: ReasonUnusualAmount, action: set.AnomalyAction,
			detail: fmt.Sprintf("more than %s times the wallet's average amount", set.AnomalyMultiplier)})
	}

	switch decide(found) {
	case DecisionReject:
		return s.reject(p, found, now), nil
	case DecisionReview:
		return s.hold(ctx, p, found, now)
	}
	// Only approved payments count: a refused one must not use up the wallet's limits.
	byType.add(at, amount)
	all.add(at, amount)
	all.observe(amount, rules.settings.AnomalyLastPayments)
	for _, e := range []struct {
		key string
		c   *counters
	}{{typeKey, byType}, {allKey, all}} {
		b, err := e.c.encodeWithin(s.cfg.MaxStateValueBytes)
		if err != nil {
			return processors.Result{}, processors.Permanent(err)
		}
		if err := st.Set(e.key, b); err != nil {
			return processors.Result{}, fmt.Errorf("keeping risk state: %w", err)
		}
	}
	return s.approve(p, score, nil, now), nil
}

// turnover reports whether total minor units of the limit's currency (exponent exp) go
// over its MaxAmount, and if not, the score of how close they come.
func (l limitRule) turnover(total uint64, exp int32) (over bool, score int) {
	if l.minorOK {
		// total is whole, so it is above MaxAmount exactly when it is above the whole
		// minor units of MaxAmount.
		if total > l.maxMinor {
			return true, 0
		}
		if l.maxMinor == 0 {
			return false, 0
		}
		return false, ratioScore(total, l.maxMinor)
	}
	t := fromMinor(total, exp)
	if t.GreaterThan(*l.MaxAmount) {
		return true, 0
	}
	if !l.MaxAmount.IsPositive() {
		return false, 0
	}
	return false, min(scoreMaxOK, int(t.Div(*l.MaxAmount).Mul(decimal.NewFromInt(scoreMaxOK+1)).IntPart()))
}

// unusual reports whether amount is above the anomaly multiplier times avg.
func (rs *ruleSet) unusual(amount, avg uint64) bool {
	if rs.anomaly.ok {
		return rs.anomaly.exceeds(amount, avg)
	}
	return decimal.NewFromUint64(amount).GreaterThan(rs.settings.AnomalyMultiplier.Mul(decimal.NewFromUint64(avg)))
}

// stateKey names one wallet's counters of one type (or AllTypes) and currency; the wallet
// is the record's key, so the entry lives on the record's partition.
func stateKey(wallet, typ, currency string) string { return wallet + "/" + typ + "/" + currency }

// load reads a state entry. An unreadable one (a bug, or state written by a newer
// version) starts over rather than stopping the wallet's payments for good; it is logged.
func (s *Stage) load(st processors.State, wallet, key string) *counters {
	b, ok := st.Get(key)
	if !ok {
		return newCounters()
	}
	c, err := decodeCounters(b)
	if err != nil {
		s.cfg.Logger.Error("risk state unreadable; counting again from zero", "wallet", wallet, "state_key", key, "err", err)
		return newCounters()
	}
	return c
}

func walletIDs(p *schemas.Payment) ([]ledger.WalletID, bool) {
	var ids []ledger.WalletID
	for _, ref := range []string{p.PayerWallet, p.PayeeWallet} {
		if ref == "" {
			continue
		}
		id, ok := ledger.ParseWalletRef(ref)
		if !ok {
			return nil, false
		}
		ids = append(ids, id)
	}
	return ids, len(ids) > 0
}

func decide(found []finding) string {
	d := DecisionApprove
	for _, f := range found {
		switch f.action {
		case DecisionReject:
			return DecisionReject
		case DecisionReview:
			d = DecisionReview
		}
	}
	return d
}

func codes(found []finding) []string {
	cs := []string{}
	for _, f := range found {
		if !slices.Contains(cs, f.code) {
			cs = append(cs, f.code)
		}
	}
	return cs
}

func (s *Stage) approve(p *schemas.Payment, score int, found []finding, now time.Time) processors.Result {
	p.Risk = &schemas.Risk{Decision: DecisionApprove, Score: score, ReasonCodes: codes(found), At: now}
	return processors.Result{Outputs: []processors.Output{pipeline.Forward(p, catalog.PaymentsScreened)}}
}

func (s *Stage) reject(p *schemas.Payment, found []finding, now time.Time) processors.Result {
	p.Risk = &schemas.Risk{Decision: DecisionReject, Score: ScoreReject, ReasonCodes: codes(found), At: now}
	first := found[0]
	for _, f := range found {
		if f.action == DecisionReject {
			first = f
			break
		}
	}
	return pipeline.Reject(p, pipeline.Risk, "", first.code, first.detail, now)
}

// hold queues p for an operator and tells the channel it is pending. The queue insert is
// idempotent, so a batch the runner retries, or a replay, queues the payment once.
func (s *Stage) hold(ctx context.Context, p *schemas.Payment, found []finding, now time.Time) (processors.Result, error) {
	record, err := json.Marshal(p)
	if err != nil {
		return processors.Result{}, processors.Permanent(fmt.Errorf("encoding payment for review: %w", err))
	}
	wallet := p.PayerWallet
	if wallet == "" {
		wallet = p.PayeeWallet
	}
	cs := codes(found)
	if _, err := s.pool.Exec(ctx, `INSERT INTO risk_reviews (payment_id, wallet, payment_type, amount, currency, score,
			reason_codes, record) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (payment_id) DO NOTHING`,
		p.PaymentID, wallet, p.Type, p.Amount.Amount, p.Amount.Currency, ScoreReview, cs, record); err != nil {
		return processors.Result{}, fmt.Errorf("queueing payment for review: %w", err)
	}
	p.Risk = &schemas.Risk{Decision: DecisionReview, Score: ScoreReview, ReasonCodes: cs, At: now}
	o := pipeline.Outcome(p, pipeline.Risk, pipeline.StatusPending, ReasonUnderReview, "held for an operator's review", now)
	return processors.Result{Outputs: []processors.Output{{Topic: catalog.PaymentsOutcomes, Value: o}}}, nil
}
