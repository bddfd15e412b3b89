package loyalty

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/paystream/paystream/processors/stagetest"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/processors/pipeline"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// env is subsidiary SG01 with two customers and a merchant, and the adjustment account
// budgets are funded from, on a fresh database.
type env struct {
	ctx              context.Context
	db               *testenv.DB
	led              *ledger.Ledger
	rules            *Rules
	alice, bob, shop string
	adjustments      ledger.AccountID
	fundings         int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db := testenv.Postgres(t)
	led, err := ledger.New(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := led.CreateSubsidiary(ctx, ledger.Subsidiary{ID: "SG01", Name: "Paystream SG", BaseCurrency: "USD"}); err != nil {
		t.Fatal(err)
	}
	wallet := func(kind ledger.UserKind) string {
		u, err := led.CreateUser(ctx, ledger.User{Kind: kind, DisplayName: string(kind)})
		if err != nil {
			t.Fatal(err)
		}
		w, err := led.CreateWallet(ctx, ledger.Wallet{UserID: u.ID, Subsidiary: "SG01"})
		if err != nil {
			t.Fatal(err)
		}
		return ledger.WalletRef(w.ID)
	}
	adj, err := led.OpenSystemAccount(ctx, "SG01", ledger.Adjustments, "USD", "", ledger.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	return &env{ctx: ctx, db: db, led: led, rules: NewRules(db.Pool, led), alice: wallet(ledger.Customer),
		bob: wallet(ledger.Customer), shop: wallet(ledger.Merchant), adjustments: adj.ID}
}

func (e *env) create(t *testing.T, c Campaign) Campaign {
	t.Helper()
	c, err := e.rules.Create(e.ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fund posts amount into a campaign's budget through the ledger, as the CLI will.
func (e *env) fund(t *testing.T, campaignID, amount string) {
	t.Helper()
	e.fundings++
	p, err := e.rules.FundingPosting(e.ctx, campaignID, fmt.Sprintf("fund-%s-%d", campaignID, e.fundings), e.adjustments, dec(amount))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.led.Post(e.ctx, p); err != nil {
		t.Fatal(err)
	}
}

func (e *env) stage(t *testing.T) *Stage {
	t.Helper()
	s, err := New(e.db.Pool, e.led, Config{RefreshInterval: time.Hour, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// pay is a merchant payment from alice to the shop.
func (e *env) pay(id string, opts ...func(*schemas.Payment)) *schemas.Payment {
	return newTestPayment(append([]func(*schemas.Payment){payID(id), func(p *schemas.Payment) {
		p.PayerWallet, p.PayeeWallet = e.alice, e.shop
	}}, opts...)...)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// memState is the runner's per-partition state for direct calls; it keeps every write,
// as a committed transaction would.
type memState map[string][]byte

func (m memState) Get(k string) ([]byte, bool)  { v, ok := m[k]; return v, ok }
func (m memState) Set(k string, v []byte) error { m[k] = append([]byte(nil), v...); return nil }
func (m memState) Delete(k string)              { delete(m, k) }

// process runs one payment through the stage as a batch of its own, as the runner would:
// Prepare, Process, Finish.
func process(t *testing.T, s *Stage, st processors.State, p *schemas.Payment) []schemas.Reward {
	t.Helper()
	return processBatch(t, s, st, p)[0]
}

// processBatch runs payments through the stage as one batch and returns their rewards.
func processBatch(t *testing.T, s *Stage, st processors.State, ps ...*schemas.Payment) [][]schemas.Reward {
	t.Helper()
	ctx := context.Background()
	ins := make([]*processors.Input, len(ps))
	for i, p := range ps {
		ins[i] = &processors.Input{Topic: catalog.PaymentsPriced, Batch: 7, Value: p}
	}
	if err := s.Prepare(ctx, ins); err != nil {
		t.Fatal(err)
	}
	var rewards [][]schemas.Reward
	for _, in := range ins {
		rewards = append(rewards, rewardsOf(t, s, in, st))
	}
	if err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	return rewards
}

func rewardsOf(t *testing.T, s *Stage, in *processors.Input, st processors.State) []schemas.Reward {
	t.Helper()
	res, err := s.Process(context.Background(), in, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 1 || res.Outputs[0].Topic != catalog.PaymentsRewarded {
		t.Fatalf("outputs %+v, want one on %s", res.Outputs, catalog.PaymentsRewarded)
	}
	out := res.Outputs[0].Value.(*schemas.Payment)
	if out.Rewards == nil {
		t.Fatal("Rewards is nil: the payment is not marked as seen by loyalty")
	}
	return out.Rewards
}

type reward struct {
	campaign, kind, amount string
	points                 int64
}

func checkRewards(t *testing.T, got []schemas.Reward, want ...reward) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("rewards %+v, want %+v", got, want)
	}
	for i, w := range want {
		g := got[i]
		if g.Campaign != w.campaign || g.Kind != w.kind || !g.Amount.Amount.Equal(dec(w.amount)) || g.Points != w.points {
			t.Errorf("reward %d = %+v, want %+v", i, g, w)
		}
	}
}

// springStage is a stage over campaign spring, 2.50 off merchant payments, funded with
// exactly three rewards.
func (e *env) springStage(t *testing.T) *Stage {
	t.Helper()
	e.create(t, campaign(func(c *Campaign) { c.Rate, c.Fixed = decimal.Zero, dec("2.50") }))
	e.fund(t, "spring", "7.50")
	return e.stage(t)
}

func TestBudgetForNRewardsGrantsN(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.springStage(t)
	for i := range 3 {
		checkRewards(t, process(t, s, memState{}, e.pay(fmt.Sprintf("pay_%d", i))), reward{"spring", "discount", "2.5", 0})
	}
	checkRewards(t, process(t, s, memState{}, e.pay("pay_3"))) // the fourth: no budget left
	// A retried payment gets its grant again without spending more.
	checkRewards(t, process(t, s, memState{}, e.pay("pay_1")), reward{"spring", "discount", "2.5", 0})
	b, err := e.rules.Budget(e.ctx, "spring")
	if err != nil {
		t.Fatal(err)
	}
	if !b.Funded.Equal(dec("7.50")) || !b.Granted.Equal(dec("7.50")) || !b.Left.IsZero() || !b.Balance.Posted.Equal(dec("7.50")) {
		t.Errorf("budget %+v, want 7.50 funded, 7.50 granted, nothing left", b)
	}
	// More funding is seen at once: the budget is read per grant, not cached.
	e.fund(t, "spring", "2.50")
	checkRewards(t, process(t, s, memState{}, e.pay("pay_4")), reward{"spring", "discount", "2.5", 0})
	checkRewards(t, process(t, s, memState{}, e.pay("pay_5")))
	// A payment that did not post gives its grant back, once.
	for _, want := range []string{"2.5", "0"} {
		if got, err := e.rules.Release(e.ctx, "pay_4"); err != nil || !got.Equal(dec(want)) {
			t.Fatalf("Release = %s, %v; want %s", got, err, want)
		}
	}
	checkRewards(t, process(t, s, memState{}, e.pay("pay_6")), reward{"spring", "discount", "2.5", 0})
	checkRewards(t, process(t, s, memState{}, e.pay("pay_7")))
}

// A batch's grants are decided in memory from the budget as Prepare read it and written
// by Finish: the budget covers the first payments in order, a retried batch gets the same
// grants back, and a second worker that counted on the same money decides again.
func TestBatchGrantsWithinTheBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.springStage(t)
	var batch []*schemas.Payment
	for i := range 5 {
		batch = append(batch, e.pay(fmt.Sprintf("pay_%d", i)))
	}
	batch = append(batch, e.pay("pay_1")) // a payment twice in one batch is granted once
	spring := reward{"spring", "discount", "2.5", 0}
	want := [][]reward{{spring}, {spring}, {spring}, nil, nil, {spring}}
	check := func(got [][]schemas.Reward) {
		t.Helper()
		for i := range want {
			checkRewards(t, got[i], want[i]...)
		}
	}
	check(processBatch(t, s, memState{}, batch...))
	checkBudget(t, e, "spring", "7.50")
	// The same batch again, as after an aborted transaction: the same payments rewarded,
	// nothing granted twice.
	check(processBatch(t, s, memState{}, batch...))
	checkBudget(t, e, "spring", "7.50")

	// Two workers read the same 5.00 and each promise it to two payments: the first to
	// finish writes, the second's Finish fails and, retried, grants what is left.
	e.fund(t, "spring", "5.00")
	other := e.stage(t)
	ctx := context.Background()
	prepare := func(s *Stage, ids ...string) []*processors.Input {
		var ins []*processors.Input
		for _, id := range ids {
			ins = append(ins, &processors.Input{Topic: catalog.PaymentsPriced, Batch: 9, Value: e.pay(id)})
		}
		if err := s.Prepare(ctx, ins); err != nil {
			t.Fatal(err)
		}
		return ins
	}
	mine, theirs := prepare(s, "pay_a", "pay_b"), prepare(other, "pay_c", "pay_d")
	for _, in := range mine {
		checkRewards(t, rewardsOf(t, s, in, memState{}), spring)
	}
	for _, in := range theirs {
		checkRewards(t, rewardsOf(t, other, in, memState{}), spring)
	}
	if err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Finish(ctx); err == nil {
		t.Fatal("the second worker's grants were written beyond the budget")
	}
	checkBudget(t, e, "spring", "12.50")
	theirs = prepare(other, "pay_c", "pay_d")
	for _, in := range theirs {
		checkRewards(t, rewardsOf(t, other, in, memState{}))
	}
	if err := other.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	checkBudget(t, e, "spring", "12.50")
	// A payment that did not post gives its grant back to the budget.
	if got, err := e.rules.Release(ctx, "pay_a"); err != nil || !got.Equal(dec("2.5")) {
		t.Fatalf("Release = %s, %v; want 2.5", got, err)
	}
	checkRewards(t, processBatch(t, other, memState{}, e.pay("pay_c"))[0], spring)
	checkBudget(t, e, "spring", "12.50")
}

// A batch's grants are written all or nothing; a batch whose money another worker
// promised meanwhile writes none, whichever finished first; the grants of a payment the
// stage could not decide are never written.
func TestBatchGrantsAllOrNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.springStage(t) // 7.50: three rewards of 2.50
	e.create(t, campaign(func(c *Campaign) { c.ID, c.Kind, c.Rate = "thanks", Rebate, dec("0.01") }))
	e.fund(t, "thanks", "1.00") // one rebate of 1.00 on a payment of 100.00
	if err := s.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	other := e.stage(t)
	spring, thanks := reward{"spring", "discount", "2.5", 0}, reward{"thanks", "rebate", "1", 0}
	ctx := context.Background()
	prepare := func(s *Stage, batch uint64, ids ...string) []*processors.Input {
		t.Helper()
		var ins []*processors.Input
		for _, id := range ids {
			ins = append(ins, &processors.Input{Topic: catalog.PaymentsPriced, Batch: batch, Value: e.pay(id)})
		}
		if err := s.Prepare(ctx, ins); err != nil {
			t.Fatal(err)
		}
		return ins
	}
	// Both workers count on the one rebate; spring would fit either way.
	mine, theirs := prepare(s, 1, "pay_a"), prepare(other, 1, "pay_b")
	checkRewards(t, rewardsOf(t, s, mine[0], memState{}), spring, thanks)
	checkRewards(t, rewardsOf(t, other, theirs[0], memState{}), spring, thanks)
	errs := make(chan error, 2)
	for _, st := range []*Stage{s, other} {
		go func() { errs <- st.Finish(ctx) }()
	}
	var raced int
	for range 2 {
		switch err := <-errs; {
		case errors.Is(err, ErrBudgetRaced):
			raced++
		case err != nil:
			t.Fatal(err)
		}
	}
	if raced != 1 {
		t.Fatalf("%d of two concurrent batches raced, want exactly one", raced)
	}
	checkBudget(t, e, "spring", "2.5")
	checkBudget(t, e, "thanks", "1")

	// A payment whose record goes to the dead-letter topic (here: a capped campaign
	// without state to count in) keeps none of the grants taken for it.
	e.create(t, campaign(func(c *Campaign) { c.ID, c.Kind, c.CapCount = "capped", Rebate, 1 }))
	e.fund(t, "capped", "100.00")
	s2 := e.stage(t)
	ins := prepare(s2, 2, "pay_c")
	if _, err := s2.Process(ctx, ins[0], nil); !processors.IsPermanent(err) {
		t.Fatalf("Process without state: %v, want a permanent error", err)
	}
	if err := s2.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	checkBudget(t, e, "spring", "2.5")
	checkBudget(t, e, "capped", "0")
}

// checkBudget checks what campaign id has granted, and that its stored grants add up to it.
func checkBudget(t *testing.T, e *env, id, granted string) {
	t.Helper()
	b, err := e.rules.Budget(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var stored decimal.Decimal
	if err := e.db.Pool.QueryRow(e.ctx, `SELECT coalesce(sum(amount), 0) FROM campaign_grants WHERE campaign_id = $1`, id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !b.Granted.Equal(dec(granted)) || !stored.Equal(b.Granted) || b.Granted.GreaterThan(b.Funded) {
		t.Errorf("campaign %s: granted %s, stored grants %s, funded %s; want %s granted", id, b.Granted, stored, b.Funded, granted)
	}
}

func TestUnfundedCampaignGrantsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create(t, campaign(func(c *Campaign) { c.Kind, c.PaymentTypes = Rebate, nil }))
	checkRewards(t, process(t, e.stage(t), memState{}, e.pay("pay_1")))
}

func TestCampaignChangesArePickedUpOnRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.stage(t)
	checkRewards(t, process(t, s, memState{}, e.pay("pay_1")))
	e.create(t, campaign(func(c *Campaign) { c.Kind, c.PointsPerUnit = Points, ndec("1") }))
	checkRewards(t, process(t, s, memState{}, e.pay("pay_2"))) // cached: not yet
	if err := s.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	checkRewards(t, process(t, s, memState{}, e.pay("pay_3")), reward{"spring", "points", "0", 100})
	if err := e.rules.Stop(e.ctx, "spring"); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	checkRewards(t, process(t, s, memState{}, e.pay("pay_4")))
	all, err := e.rules.List(e.ctx, "SG01", true)
	if err != nil || len(all) != 1 || !all[0].Stopped {
		t.Errorf("List(all) = %+v, %v; want the stopped campaign", all, err)
	}
}

func TestPerPayerCapsLiveInState(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create(t, campaign(func(c *Campaign) {
		c.ID, c.Kind, c.PaymentTypes, c.Rate, c.CapCount, c.CapAmount = "cashback", Rebate, nil, dec("0.02"), 3, ndec("5.00")
	}))
	e.fund(t, "cashback", "100.00")
	s := e.stage(t)
	st := memState{}
	checkRewards(t, process(t, s, st, e.pay("pay_1")), reward{"cashback", "rebate", "2", 0})
	checkRewards(t, process(t, s, st, e.pay("pay_2")), reward{"cashback", "rebate", "2", 0})
	checkRewards(t, process(t, s, st, e.pay("pay_3")), reward{"cashback", "rebate", "1", 0}) // cut to the 5.00 cap
	checkRewards(t, process(t, s, st, e.pay("pay_4")))
	// Bob has his own cap, in the same partition's state.
	checkRewards(t, process(t, s, st, e.pay("pay_5", func(p *schemas.Payment) { p.PayerWallet = e.bob })), reward{"cashback", "rebate", "2", 0})
	if b, err := e.rules.Budget(e.ctx, "cashback"); err != nil || !b.Granted.Equal(dec("7.00")) {
		t.Errorf("budget %+v, %v; want 7.00 granted", b, err)
	}
}

func TestRandomReductionIsTheSameOnRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create(t, campaign(func(c *Campaign) {
		c.ID, c.Kind, c.Rate, c.RandomMin, c.RandomMax = "lucky", RandomReduction, decimal.Zero, ndec("0.01"), ndec("9.99")
	}))
	e.fund(t, "lucky", "1000.00")
	s := e.stage(t)
	for i := range 5 {
		id := fmt.Sprintf("pay_%d", i)
		want := RandomAmount(id, "lucky", dec("0.01"), dec("9.99"), 2)
		first := process(t, s, memState{}, e.pay(id))
		checkRewards(t, first, reward{"lucky", "random_reduction", want.String(), 0})
		checkRewards(t, process(t, s, memState{}, e.pay(id)), reward{first[0].Campaign, first[0].Kind, first[0].Amount.Amount.String(), 0})
	}
}

func TestOneReductionStacksWithRebatesAndPoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create(t, campaign(func(c *Campaign) { c.ID = "a-first" }))
	e.create(t, campaign(func(c *Campaign) { c.ID, c.Rate = "b-second", dec("0.10") }))
	e.create(t, campaign(func(c *Campaign) { c.ID, c.Kind, c.Rate = "c-cashback", Rebate, dec("0.01") }))
	e.create(t, campaign(func(c *Campaign) { c.ID, c.Kind, c.PointsPerUnit = "d-points", Points, ndec("2") }))
	for _, id := range []string{"a-first", "b-second", "c-cashback"} {
		e.fund(t, id, "100.00")
	}
	checkRewards(t, process(t, e.stage(t), memState{}, e.pay("pay_1")),
		reward{"a-first", "discount", "5", 0}, reward{"c-cashback", "rebate", "1", 0}, reward{"d-points", "points", "0", 200})
	checkRewards(t, process(t, e.stage(t), memState{}, e.pay("pay_2", func(p *schemas.Payment) { p.Operation = "refund" })))
}

func TestDemoCampaigns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for range 2 { // idempotent
		if err := SeedDemo(e.ctx, e.db.Pool, "SG01"); err != nil {
			t.Fatal(err)
		}
	}
	b, err := e.rules.Budget(e.ctx, DemoDiscount)
	if err != nil || !b.Funded.Equal(DemoBudget) {
		t.Fatalf("demo budget %+v, %v; want %s funded once", b, err, DemoBudget)
	}
	if _, err := e.led.SystemAccount(e.ctx, "SG01", ledger.PointsLiability, "PTS", ""); err != nil {
		t.Errorf("points liability account: %v", err)
	}
	s := e.stage(t)
	checkRewards(t, process(t, s, memState{}, e.pay("pay_1", amount("42.50", "USD"))),
		reward{DemoDiscount, "discount", "2.13", 0}, reward{DemoPoints, "points", "0", 42}) // 2.125 half-up
	checkRewards(t, process(t, s, memState{}, e.pay("pay_2", ptype("transfer"))))
}

// TestStageThroughTheRunner runs the loyalty stage in the exactly-once runner on kfake with
// its state changelog: payments in on payments.priced, rewarded payments out on
// payments.rewarded, a once-per-payer campaign counted in the runner's state.
func TestStageThroughTheRunner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create(t, campaign(func(c *Campaign) {
		c.ID, c.Kind, c.PaymentTypes, c.Rate, c.CapCount = "welcome", Rebate, nil, dec("0.10"), 1
	}))
	e.fund(t, "welcome", "1000.00")
	st := stagetest.NewStream(t)
	// The catalog lists the loyalty group as stateful, so its changelog is among the topics.
	if d, err := kadm.NewClient(st.Client()).ListTopics(e.ctx, string(catalog.GroupLoyalty.Changelog())); err != nil || len(d) != 1 {
		t.Fatalf("loyalty changelog topic: %v %v", d, err)
	}
	const n = 12
	var ps []*schemas.Payment
	for i := range n {
		ps = append(ps, e.pay(fmt.Sprintf("pay_%d", i), func(p *schemas.Payment) {
			p.EventID = fmt.Sprintf("ev_%d", i)
			if i%2 == 1 {
				p.PayerWallet = e.bob
			}
			p.Fees = []schemas.FeeLine{}
		}))
	}
	st.Produce(catalog.PaymentsPriced, ps...)
	r := st.Run("loyalty-test", []string{pipeline.Loyalty}, false, e.stage(t).Definition())
	st.WaitCaughtUp(catalog.GroupLoyalty, catalog.PaymentsPriced)
	r.Stop(t)
	byID, _, count := stagetest.ByPayment(st.ReadAll(catalog.PaymentsRewarded))
	if len(byID) != n {
		t.Fatalf("%d rewarded payments, want %d", len(byID), n)
	}
	var got []*schemas.Payment
	for id, p := range byID {
		if count[id] != 1 {
			t.Errorf("payment %s rewarded %d times", id, count[id])
		}
		got = append(got, p)
	}
	rewarded := map[string]int{}
	for _, p := range got {
		if p.Rewards == nil || p.Fees == nil {
			t.Fatalf("payment %s lost its decisions: fees %v rewards %v", p.PaymentID, p.Fees, p.Rewards)
		}
		for _, r := range p.Rewards {
			if r.Campaign != "welcome" || !r.Amount.Amount.Equal(dec("10")) {
				t.Errorf("payment %s reward %+v", p.PaymentID, r)
			}
			rewarded[p.PayerWallet]++
		}
	}
	if rewarded[e.alice] != 1 || rewarded[e.bob] != 1 || len(rewarded) != 2 {
		t.Errorf("rewards per payer %v, want one each for %s and %s", rewarded, e.alice, e.bob)
	}
}

// givePoints opens wallet's points account and credits it from the points liability.
func (e *env) givePoints(t *testing.T, wallet string, points int64) {
	t.Helper()
	liability, err := systemAccount(e.ctx, e.led, "SG01", ledger.PointsLiability, PointsCurrency, ledger.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := ledger.ParseWalletRef(wallet)
	acc, err := e.led.OpenWalletAccount(e.ctx, id, PointsCurrency, ledger.Points, ledger.WalletRules)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.led.Post(e.ctx, ledger.PointsEarning("earn-"+wallet, liability.ID, acc.ID, decimal.NewFromInt(points))); err != nil {
		t.Fatal(err)
	}
}

func TestPointsRedemption(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create(t, campaign(func(c *Campaign) { c.ID = "a-discount" }))
	e.create(t, campaign(func(c *Campaign) {
		c.ID, c.Kind, c.Rate, c.PointValue = "b-redeem", Redemption, decimal.Zero, ndec("0.01")
	}))
	e.create(t, campaign(func(c *Campaign) { c.ID, c.Kind, c.PointsPerUnit = "c-points", Points, ndec("1") }))
	e.fund(t, "a-discount", "100.00")
	e.fund(t, "b-redeem", "5.00")
	e.givePoints(t, e.alice, 500)
	s := e.stage(t)
	redeem := func(id, points string) *schemas.Payment {
		return e.pay(id, func(p *schemas.Payment) { p.Metadata = map[string]string{MetaPointsToRedeem: points} })
	}
	// Redeeming is the payment's price reduction: the discount does not stack on it, points
	// are still earned on the full amount.
	checkRewards(t, process(t, s, memState{}, redeem("pay_1", "300")),
		reward{"b-redeem", "points_redemption", "3", 300}, reward{"c-points", "points", "0", 100})
	// The same payment again (a retried batch) gets the same grant.
	checkRewards(t, process(t, s, memState{}, redeem("pay_1", "300")),
		reward{"b-redeem", "points_redemption", "3", 300}, reward{"c-points", "points", "0", 100})
	checkRewards(t, process(t, s, memState{}, e.pay("pay_2")),
		reward{"a-discount", "discount", "5", 0}, reward{"c-points", "points", "0", 100})

	for _, tc := range []struct {
		name, id, points, reason string
		payer                    string
	}{
		{"budget left is 2.00", "pay_3", "300", ReasonPointsBudgetExhaust, e.alice},
		{"more points than the wallet has", "pay_4", "600", ReasonPointsInsufficient, e.alice},
		{"a wallet without points", "pay_5", "10", ReasonPointsInsufficient, e.bob},
		{"worth more than the payment", "pay_6", "20000", ReasonPointsExceedAmount, e.alice},
		{"malformed", "pay_7", "ten", ReasonPointsInvalid, e.alice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := redeem(tc.id, tc.points)
			p.PayerWallet = tc.payer
			res, err := s.Process(e.ctx, &processors.Input{Value: p}, memState{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Rejected != tc.reason || len(res.Outputs) != 1 || res.Outputs[0].Topic != catalog.PaymentsOutcomes {
				t.Fatalf("result %+v, want a rejection %s on outcomes", res, tc.reason)
			}
			if o := res.Outputs[0].Value.(*schemas.PaymentOutcome); o.Stage != pipeline.Loyalty || o.ReasonCode != tc.reason {
				t.Errorf("outcome %+v", o)
			}
		})
	}
	// What the budget still covers is granted.
	checkRewards(t, process(t, s, memState{}, redeem("pay_8", "200")),
		reward{"b-redeem", "points_redemption", "2", 200}, reward{"c-points", "points", "0", 100})
	// Redemption needs an eligible campaign: not on a transfer.
	p := redeem("pay_9", "10")
	p.Type = "transfer"
	if res, err := s.Process(e.ctx, &processors.Input{Value: p}, memState{}); err != nil || res.Rejected != ReasonPointsUnavailable {
		t.Errorf("redeeming on a transfer: %+v, %v; want %s", res, err, ReasonPointsUnavailable)
	}
}

func TestCampaignsRoundTripThroughTheDatabase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	want := Campaign{ID: "full", Subsidiary: "SG01", Currency: "USD", Name: "All fields", PaymentTypes: []string{"merchant_payment"},
		Merchants: []string{e.shop}, MCCs: []string{"5411", "5812"}, StartsAt: t0, EndsAt: t0.AddDate(0, 1, 0), MinAmount: dec("5.00"),
		CapCount: 4, CapAmount: ndec("25.00"), Kind: RandomReduction, RandomMin: ndec("0.10"), RandomMax: ndec("3.00")}
	e.create(t, want)
	e.create(t, Campaign{ID: "pts", Subsidiary: "SG01", Currency: "USD", Kind: Points, PointsPerUnit: ndec("1.5")})
	got, err := e.rules.List(e.ctx, "SG01", false)
	if err != nil || len(got) != 2 {
		t.Fatalf("List = %+v, %v", got, err)
	}
	g := got[0]
	same := func(a, b decimal.NullDecimal) bool { return a.Valid == b.Valid && a.Decimal.Equal(b.Decimal) }
	if g.ID != want.ID || g.Name != want.Name || fmt.Sprint(g.PaymentTypes, g.Merchants, g.MCCs) != fmt.Sprint(want.PaymentTypes, want.Merchants, want.MCCs) ||
		!g.StartsAt.Equal(want.StartsAt) || !g.EndsAt.Equal(want.EndsAt) || !g.MinAmount.Equal(want.MinAmount) ||
		g.CapCount != 4 || !same(g.CapAmount, want.CapAmount) || g.Kind != RandomReduction || !same(g.RandomMin, want.RandomMin) ||
		!same(g.RandomMax, want.RandomMax) || g.PointsPerUnit.Valid || g.PointValue.Valid || g.Stopped || !g.Granted.IsZero() {
		t.Errorf("stored %+v\nread   %+v", want, g)
	}
	if p := got[1]; p.CapCount != 0 || p.CapAmount.Valid || !same(p.PointsPerUnit, ndec("1.5")) || len(p.PaymentTypes) != 0 || !p.StartsAt.IsZero() {
		t.Errorf("points campaign read back as %+v", p)
	}
	if _, err := e.led.SystemAccount(e.ctx, "SG01", ledger.CampaignBudget, "USD", "full"); err != nil {
		t.Errorf("the cash campaign has no budget account: %v", err)
	}
	if _, err := e.led.SystemAccount(e.ctx, "SG01", ledger.CampaignBudget, "USD", "pts"); err == nil {
		t.Error("a points campaign got a budget account")
	}
	if _, err := e.rules.FundingPosting(e.ctx, "pts", "f1", e.adjustments, dec("1")); err == nil {
		t.Error("funding a points campaign was accepted")
	}
	if err := e.rules.Stop(e.ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("stopping an unknown campaign: %v, want ErrNotFound", err)
	}
}

// The budget check passes on grants the stage made and names a campaign whose total no
// longer matches its grants, or exceeds its funding.
func TestVerifyBudgets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create(t, campaign(func(c *Campaign) { c.Rate, c.Fixed = decimal.Zero, dec("2.50") }))
	e.create(t, campaign(func(c *Campaign) { c.ID, c.Kind, c.PointsPerUnit = "c-points", Points, ndec("1") }))
	e.fund(t, "spring", "5.00")
	s := e.stage(t)
	processBatch(t, s, memState{}, e.pay("pay_1"), e.pay("pay_2"), e.pay("pay_3"))
	verify := func() ledger.Check {
		t.Helper()
		c, err := VerifyBudgets(e.ctx, e.db.Pool)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := verify(); !c.Pass || c.Checked != 2 || c.Violations != 0 {
		t.Fatalf("after two grants: %+v", c)
	}
	for _, tc := range []struct{ name, sql, detail string }{
		{"total apart from its grants", `UPDATE campaigns SET granted = granted + 1 WHERE id = 'spring'`, "spring: granted 6, grants 5.0, funded 5.00"},
		{"granted beyond funding", `UPDATE campaign_grants SET amount = amount + 1 WHERE payment_id = 'pay_1'`, "spring: granted 6, grants 6.0, funded 5.00"},
	} {
		if _, err := e.db.Pool.Exec(e.ctx, tc.sql); err != nil {
			t.Fatal(err)
		}
		if c := verify(); c.Pass || c.Violations != 1 || c.Detail != tc.detail {
			t.Errorf("%s: %+v, want one violation %q", tc.name, c, tc.detail)
		}
	}
}
