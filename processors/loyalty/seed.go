package loyalty

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/ledger"
)

// Demo campaign ids and the demo budget.
const (
	DemoDiscount = "demo-discount"
	DemoPoints   = "demo-points"
	demoFundID   = "seed-fund-" + DemoDiscount
)

// DemoBudget is what SeedDemo funds the demo discount with.
var DemoBudget = decimal.RequireFromString("1000.00")

// SeedDemo installs the demo campaigns of a subsidiary, in USD: a 5 % discount on
// merchant payments (at most 20.00 per payment) funded with 1000.00 from the subsidiary's
// adjustment account, and 1 point per 1 USD on merchant payments. It opens the accounts
// they need (budget, adjustment, points liability) when missing. Seeding twice changes
// nothing: existing campaigns are kept and the funding posting is idempotent.
func SeedDemo(ctx context.Context, pool *pgxpool.Pool, subsidiary string) error {
	led, err := ledger.New(ctx, pool)
	if err != nil {
		return fmt.Errorf("seeding demo campaigns: %w", err)
	}
	rules := NewRules(pool, led)
	for _, c := range DemoCampaigns(subsidiary) {
		if _, err := rules.Get(ctx, c.ID); err == nil {
			continue
		} else if !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("seeding demo campaigns: %w", err)
		}
		if _, err := rules.Create(ctx, c); err != nil {
			return fmt.Errorf("seeding demo campaigns: %w", err)
		}
	}
	if _, err := systemAccount(ctx, led, subsidiary, ledger.PointsLiability, PointsCurrency, ledger.Rules{}); err != nil {
		return fmt.Errorf("seeding demo campaigns: %w", err)
	}
	source, err := systemAccount(ctx, led, subsidiary, ledger.Adjustments, "USD", ledger.Rules{})
	if err != nil {
		return fmt.Errorf("seeding demo campaigns: %w", err)
	}
	fund, err := rules.FundingPosting(ctx, DemoDiscount, demoFundID, source.ID, DemoBudget)
	if err != nil {
		return fmt.Errorf("seeding demo campaigns: %w", err)
	}
	if _, err := led.Post(ctx, fund); err != nil {
		return fmt.Errorf("seeding demo campaigns: funding %s: %w", DemoDiscount, err)
	}
	return nil
}

func systemAccount(ctx context.Context, led *ledger.Ledger, sub string, p ledger.Purpose, cur string, r ledger.Rules) (ledger.Account, error) {
	a, err := led.SystemAccount(ctx, sub, p, cur, "")
	if errors.Is(err, ledger.ErrNotFound) {
		a, err = led.OpenSystemAccount(ctx, sub, p, cur, "", r)
	}
	return a, err
}

// DemoCampaigns are the campaigns SeedDemo installs.
func DemoCampaigns(subsidiary string) []Campaign {
	dec := decimal.RequireFromString
	return []Campaign{
		{ID: DemoDiscount, Subsidiary: subsidiary, Currency: "USD", Name: "5% off at merchants", PaymentTypes: []string{"merchant_payment"},
			Kind: Discount, Rate: dec("0.05"), MaxReward: decimal.NewNullDecimal(dec("20.00"))},
		{ID: DemoPoints, Subsidiary: subsidiary, Currency: "USD", Name: "1 point per USD at merchants", PaymentTypes: []string{"merchant_payment"},
			Kind: Points, PointsPerUnit: decimal.NewNullDecimal(dec("1"))},
	}
}
