package loyalty

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
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

// Config tunes the loyalty stage; zero fields take the defaults stated on each.
type Config struct {
	// RefreshInterval is how old the cached campaigns may get before the next payment
	// reloads them. Default 5s.
	RefreshInterval time.Duration
	// Log receives refresh failures and refused grants. Default slog.Default().
	Log *slog.Logger
	// Now is the clock of rejections. Default time.Now.
	Now func() time.Time
}

// DefaultRefreshInterval is Config.RefreshInterval's default.
const DefaultRefreshInterval = 5 * time.Second

// Validate checks c.
func (c Config) Validate() error {
	if c.RefreshInterval < 0 {
		return fmt.Errorf("field RefreshInterval: %v, must not be negative", c.RefreshInterval)
	}
	return nil
}

// Stage is the loyalty stage.
type Stage struct {
	rules *Rules
	led   *ledger.Ledger
	cfg   Config
	batch *grantBatch // the budget grants of the batch being decided (grants.go)

	snaps *rulecache.Cache[*snapshot]
}

type snapshot struct {
	bySub   map[string][]Campaign
	budgets sync.Map // campaign id -> ledger.AccountID
}

// New returns the loyalty stage over the database of pool.
func New(pool *pgxpool.Pool, led *ledger.Ledger, cfg Config) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuring loyalty stage: %w", err)
	}
	if pool == nil || led == nil {
		return nil, errors.New("configuring loyalty stage: pool and ledger are required")
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Stage{rules: NewRules(pool, led), led: led, cfg: cfg}
	s.snaps = rulecache.New(s.load, cfg.RefreshInterval, staleRules, cfg.Log)
	return s, nil
}

// staleRules is how long the stage keeps deciding on the last rules while reloading them
// fails: a database blip must not stop the chain, an outage must not run on old rules.
const staleRules = time.Minute

// Definition is how the runner registers the stage. It is stateful: per-payer caps are
// counted in the runner's state, keyed by payer wallet and campaign, so they commit with
// the output; catalog.GroupLoyalty needs its changelog topic.
func (s *Stage) Definition() processors.Definition {
	return processors.Definition{Name: pipeline.Loyalty, Input: catalog.PaymentsPriced, Group: catalog.GroupLoyalty,
		Outputs: []catalog.Topic{catalog.PaymentsRewarded, catalog.PaymentsOutcomes}, Stateful: true, Stage: s}
}

// load reads the active campaigns now.
func (s *Stage) load(ctx context.Context) (*snapshot, error) {
	cs, err := s.rules.List(ctx, "", false)
	if err != nil {
		return nil, fmt.Errorf("refreshing campaigns: %w", err)
	}
	snap := &snapshot{bySub: map[string][]Campaign{}}
	for _, c := range cs {
		snap.bySub[c.Subsidiary] = append(snap.bySub[c.Subsidiary], c)
	}
	return snap, nil
}

// Refresh reloads the rules now.
func (s *Stage) Refresh(ctx context.Context) error { return s.snaps.Refresh(ctx) }

// current returns fresh enough rules (see rulecache).
func (s *Stage) current(ctx context.Context) (*snapshot, error) { return s.snaps.Get(ctx) }

// Process applies the campaigns to one payment and forwards it to payments.rewarded.
func (s *Stage) Process(ctx context.Context, in *processors.Input, st processors.State) (processors.Result, error) {
	p, ok := in.Value.(*schemas.Payment)
	if !ok {
		return processors.Result{}, processors.Permanent(fmt.Errorf("rewarding: got %T, want a payment", in.Value))
	}
	rewards, reject, err := s.decide(ctx, in, p, st)
	if err != nil {
		return processors.Result{}, err
	}
	if reject != "" {
		return pipeline.Reject(p, pipeline.Loyalty, "rejected", reject, "the points redemption asked for cannot be made", s.cfg.Now()), nil
	}
	p.Rewards = rewards
	return processors.Result{Outputs: []processors.Output{pipeline.Forward(p, catalog.PaymentsRewarded)}}, nil
}

// decide returns p's rewards: a points redemption when the payment asks for one, then
// every eligible campaign in creation order, at most one price reduction in all, each cut
// to its per-payer caps, cash ones only if the budget covers them. A redemption that
// cannot be made ends the payment with the reason code returned.
func (s *Stage) decide(ctx context.Context, in *processors.Input, p *schemas.Payment, st processors.State) ([]schemas.Reward, string, error) {
	rewards := []schemas.Reward{}
	if p.Operation != "" {
		return rewards, "", nil
	}
	points, reject := PointsToRedeem(p)
	if reject != "" {
		return nil, reject, nil
	}
	b, err := s.batchOf(ctx, in, p)
	if err != nil {
		return nil, "", err
	}
	// The grants of a payment not decided are taken back: after a permanent error (or a
	// panic) its record goes to the dead-letter topic and the batch goes on. After a
	// transient error the runner aborts the batch without calling Finish, and the next
	// Prepare starts afresh.
	mark, decided := len(b.made), false
	defer func() {
		if !decided {
			b.undo(mark)
		}
	}()
	snap := b.snap
	cur, ok := s.led.Currency(p.Amount.Currency)
	if !ok { // no campaign can name a currency the ledger does not have
		if points > 0 {
			return nil, ReasonPointsUnavailable, nil
		}
		return rewards, "", nil
	}
	customer := p.PayerWallet
	if customer == "" { // a top-up: the credited wallet is the customer
		customer = p.PayeeWallet
	}
	reduced := false
	if points > 0 {
		r, reject, err := s.redeem(ctx, b, p, customer, points, cur.Exponent)
		if err != nil || reject != "" {
			return nil, reject, err
		}
		rewards, reduced = append(rewards, r), true
	}
	for _, c := range snap.bySub[p.Subsidiary] {
		if !c.Eligible(p) || (reduced && c.Kind.reducesPrice()) {
			continue
		}
		r, ok := c.Reward(p, cur.Exponent)
		if !ok {
			continue
		}
		capped := c.CapCount > 0 || c.CapAmount.Valid
		var u Usage
		if capped {
			if u, err = readUsage(st, c.ID, customer); err != nil {
				return nil, "", err
			}
			if r, ok = c.ApplyCap(r, u); !ok {
				continue
			}
		}
		if c.Kind.Cash() {
			amount, ok := b.take(c, p.PaymentID, customer, r.Amount.Amount)
			if !ok {
				s.cfg.Log.Info("campaign budget exhausted", "campaign", c.ID, "payment", p.PaymentID, "wallet", customer)
				continue
			}
			r.Amount.Amount = amount
		}
		if capped {
			if err := writeUsage(st, c.ID, customer, u.Add(r)); err != nil {
				return nil, "", err
			}
		}
		rewards = append(rewards, r)
		reduced = reduced || c.Kind.reducesPrice()
	}
	decided = true
	return rewards, "", nil
}

// redeem values the points p asks to redeem through the first eligible redemption
// campaign, checks the customer has them (a soft check: the ledger refuses to overdraw the
// points account) and has the campaign's budget promise their value.
func (s *Stage) redeem(ctx context.Context, b *grantBatch, p *schemas.Payment, customer string, points int64, exp int32) (schemas.Reward, string, error) {
	var c Campaign
	for _, cand := range b.snap.bySub[p.Subsidiary] {
		if cand.Kind == Redemption && cand.Eligible(p) {
			c = cand
			break
		}
	}
	if c.ID == "" {
		return schemas.Reward{}, ReasonPointsUnavailable, nil
	}
	r, reject := c.Redeem(p, points, exp)
	if reject != "" {
		return schemas.Reward{}, reject, nil
	}
	id, ok := ledger.ParseWalletRef(customer)
	if !ok {
		return schemas.Reward{}, ReasonPointsInsufficient, nil
	}
	acc, err := s.led.WalletAccount(ctx, id, PointsCurrency, ledger.Points)
	if errors.Is(err, ledger.ErrNotFound) {
		return schemas.Reward{}, ReasonPointsInsufficient, nil
	}
	if err != nil {
		return schemas.Reward{}, "", err
	}
	bal, err := s.led.Balance(ctx, acc.ID)
	if err != nil {
		return schemas.Reward{}, "", err
	}
	if bal.Available.LessThan(decimal.NewFromInt(points)) {
		return schemas.Reward{}, ReasonPointsInsufficient, nil
	}
	amount, ok := b.take(c, p.PaymentID, customer, r.Amount.Amount)
	if !ok {
		return schemas.Reward{}, ReasonPointsBudgetExhaust, nil
	}
	r.Amount.Amount = amount
	return r, "", nil
}

// PointsCurrency is the ledger currency of loyalty points.
const PointsCurrency = "PTS"

// usageKey names a payer wallet's usage of a campaign in the partition's state.
func usageKey(campaign, wallet string) string { return "u/" + campaign + "/" + wallet }

func readUsage(st processors.State, campaign, wallet string) (Usage, error) {
	if st == nil {
		return Usage{}, nil
	}
	b, ok := st.Get(usageKey(campaign, wallet))
	if !ok {
		return Usage{}, nil
	}
	n, total, found := strings.Cut(string(b), ":")
	count, err := strconv.Atoi(n)
	if !found || err != nil {
		return Usage{}, processors.Permanent(fmt.Errorf("reading usage of %s by %s: malformed %q", campaign, wallet, b))
	}
	t, err := decimal.NewFromString(total)
	if err != nil {
		return Usage{}, processors.Permanent(fmt.Errorf("reading usage of %s by %s: %w", campaign, wallet, err))
	}
	return Usage{Count: count, Total: t}, nil
}

func writeUsage(st processors.State, campaign, wallet string, u Usage) error {
	if st == nil {
		return processors.Permanent(errors.New("writing usage: the loyalty stage runs without state"))
	}
	return st.Set(usageKey(campaign, wallet), []byte(strconv.Itoa(u.Count)+":"+u.Total.String()))
}
