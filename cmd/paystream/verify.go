package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/paystream/paystream/ledger"
)

type verifyCmd struct {
	JSON bool `help:"Print the report as JSON."`
	Full bool `help:"Check every transfer again instead of only those since the last passing run."`
}

func (verifyCmd) Help() string {
	return "Checks every ledger invariant of DESIGN.md guarantee 6 on a live database " +
		"(PAYSTREAM_DATABASE_URL, or the private server of a running paystream dev on --data) " +
		"and prints each with pass/fail and counts. Exits 1 if any invariant fails."
}

// errInvariants makes verify exit non-zero after printing its report.
var errInvariants = errors.New("ledger invariants violated")

func (v verifyCmd) Run(a *app) error {
	pool, err := connect(a)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer pool.Close()
	verify := ledger.Verify
	if v.Full {
		verify = ledger.VerifyAll
	}
	rep, err := verify(a.ctx, pool)
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
