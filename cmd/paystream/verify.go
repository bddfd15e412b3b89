package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors/loyalty"
)

type verifyCmd struct {
	JSON bool `help:"Print the report as JSON."`
	Full bool `help:"Check every transfer again instead of only those since the last passing run."`
}

func (verifyCmd) Help() string {
	return "Checks every ledger invariant of DESIGN.md guarantee 6 on a live database " +
		"(PAYSTREAM_DATABASE_URL, or the private server of a running paystream dev on --data) " +
		"and the campaigns' budget bookkeeping, and prints each with pass/fail and counts. Exits 1 if any fails."
}

// errInvariants makes verify exit non-zero after printing its report.
var errInvariants = errors.New("ledger invariants violated")

func (v verifyCmd) Run(a *app) error {
	pool, err := connect(a)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer pool.Close()
	rep, err := runVerify(a.ctx, pool, v.Full)
	if err != nil {
		return err
	}
	if v.JSON {
		enc := json.NewEncoder(a.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"ok": rep.OK(), "checks": rep.Checks}); err != nil {
			return err
		}
	} else {
		fmt.Fprint(a.out, rep.String())
	}
	if !rep.OK() {
		return errInvariants
	}
	fmt.Fprintf(a.out, "all %d invariants hold\n", len(rep.Checks))
	return nil
}

// runVerify checks the ledger's invariants (from scratch with full) and then the
// campaigns' budget bookkeeping.
func runVerify(ctx context.Context, pool *pgxpool.Pool, full bool) (ledger.Report, error) {
	verify := ledger.Verify
	if full {
		verify = ledger.VerifyAll
	}
	rep, err := verify(ctx, pool)
	if err != nil {
		return ledger.Report{}, err
	}
	budgets, err := loyalty.VerifyBudgets(ctx, pool)
	if err != nil {
		return ledger.Report{}, err
	}
	rep.Checks = append(rep.Checks, budgets)
	return rep, nil
}
