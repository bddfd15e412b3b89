package fee

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/ledger"
)

// SeedDemo installs the demo fee set of a subsidiary, in USD: a P2P fee of 0.5 % (min
// 0.10, max 5.00) paid by the payer, and a merchant fee (MDR) of 1.5 % paid by the
// merchant, both with the subsidiary's VAT on fees, which is set to 10 % from 2020-01-01
// if the subsidiary has none for that date. Definitions whose code already exists in the
// subsidiary are left alone, so seeding twice changes nothing.
func SeedDemo(ctx context.Context, pool *pgxpool.Pool, subsidiary string) error {
	led, err := ledger.New(ctx, pool)
	if err != nil {
		return fmt.Errorf("seeding demo fees: %w", err)
	}
	if _, err := led.EnsureVATRate(ctx, subsidiary, ledger.VATRate{Category: VATCategory,
		ValidFrom: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), Rate: decimal.RequireFromString("0.10")}); err != nil {
		return fmt.Errorf("seeding demo fees: %w", err)
	}
	rules := NewRules(pool, led)
	have, err := rules.List(ctx, subsidiary, true)
	if err != nil {
		return fmt.Errorf("seeding demo fees: %w", err)
	}
	for _, d := range DemoDefinitions(subsidiary) {
		exists := false
		for _, h := range have {
			exists = exists || h.Code == d.Code
		}
		if exists {
			continue
		}
		if _, err := rules.Create(ctx, d); err != nil {
			return fmt.Errorf("seeding demo fees: %w", err)
		}
	}
	return nil
}

// DemoDefinitions is the demo fee set SeedDemo installs.
func DemoDefinitions(subsidiary string) []Definition {
	dec := decimal.RequireFromString
	return []Definition{
		{Code: "p2p_fee", Subsidiary: subsidiary, Currency: "USD", PaymentType: "transfer", Rate: dec("0.005"),
			Min: decimal.NewNullDecimal(dec("0.10")), Max: decimal.NewNullDecimal(dec("5.00")), PaidBy: PaidByPayer, Rounding: HalfUp},
		{Code: "mdr", Subsidiary: subsidiary, Currency: "USD", PaymentType: "merchant_payment", Rate: dec("0.015"),
			PaidBy: PaidByMerchant, Rounding: HalfUp},
	}
}
