package main

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/paystream/paystream/ledger"
)

// seedDev creates the demo subsidiary on a fresh database; on a reused one it finds it there.
// Its VAT rates come with the fee rules (fee.SeedDemo), which price with them.
func seedDev(ctx context.Context, l *ledger.Ledger, subsidiary string) error {
	err := l.CreateSubsidiary(ctx, ledger.Subsidiary{ID: subsidiary, Name: "paystream demo", BaseCurrency: "USD"})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation: seeded by an earlier run
		return nil
	}
	return err
}
