package main

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/ledger"
)

// seedDev creates the demo subsidiary on a fresh database; on a reused one it finds it there.
func seedDev(ctx context.Context, l *ledger.Ledger, subsidiary string) error {
	err := l.CreateSubsidiary(ctx, ledger.Subsidiary{ID: subsidiary, Name: "paystream demo", BaseCurrency: "USD"},
		ledger.VATRate{Category: "fee", ValidFrom: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), Rate: decimal.RequireFromString("0.1")})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation: seeded by an earlier run
		return nil
	}
	return err
}
