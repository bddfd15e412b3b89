package ledger

import (
	"strings"
	"testing"
)

// Verify passes on a healthy ledger and names each invariant a tampered database breaks.
func TestVerifyDetectsBrokenInvariants(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		tamper string
		broken []string
	}{
		{"balance row off by one", `UPDATE account_balances SET credits_posted = credits_posted + 1 WHERE account_id = $1 AND shard = 0`,
			[]string{"debits_equal_credits", "balances_equal_transfers", "running_balances", "emoney_safeguarded"}},
		{"overdrawn wallet", `UPDATE accounts SET min_balance = 1000 WHERE id = $1`, []string{"no_overdraft"}},
		// The forged transfer's account items (running balances of zero) are the latest of
		// the payer's balance row, and disagree with it.
		{"transfer in a foreign currency", `INSERT INTO transfers (id, payment_id, code, debit_account_id, credit_account_id,
			debit_shard, credit_shard, amount, currency, created_at, debit_balance, debit_pending_balance, credit_balance,
			credit_pending_balance) VALUES (99999, 'x', 'principal', $1::bigint, $1::bigint + 1, 0, 0, 1, 'EUR', now(), 0, 0, 0, 0)`,
			[]string{"transfer_one_currency", "balances_equal_transfers", "running_balances"}},
		{"over-refunded hold", `ALTER TABLE holds DROP CONSTRAINT holds_check1;
			UPDATE holds SET refunded = captured + 1`, []string{"holds_within_held"}},
		// A one-sided inter-subsidiary leg is valid double entry, yet the pair does not net.
		{"inter-subsidiary not netting", "", []string{"inter_subsidiary_net_zero"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHoldFixture(t, "100")
			res := h.reserve("40")
			if _, err := h.capture(res.HoldID, "40", ReleaseFullReservation); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(h.ctx, h.db.Pool)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() || len(rep.Checks) != len(invariants) {
				t.Fatalf("healthy ledger fails:\n%s", rep)
			}
			if c.tamper == "" {
				if err := h.l.CreateSubsidiary(h.ctx, Subsidiary{ID: "MY01", Name: "MY", BaseCurrency: "USD"}); err != nil {
					t.Fatal(err)
				}
				if _, err := h.l.OpenSystemAccount(h.ctx, "MY01", InterSubsidiary, "USD", h.sub, Rules{}); err != nil {
					t.Fatal(err)
				}
				inter := h.system(InterSubsidiary, "MY01", Rules{})
				h.mustPost(Posting{PaymentID: "one-sided", Transfers: []Transfer{{Code: CodePrincipal, Debit: h.payer.ID, Credit: inter.ID, Amount: d("3"), Currency: "USD"}}})
			}
			for _, stmt := range strings.Split(c.tamper, ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				var args []any
				if strings.Contains(stmt, "$1") {
					args = append(args, h.payer.ID)
				}
				if _, err := h.db.Pool.Exec(h.ctx, stmt, args...); err != nil {
					t.Fatalf("tampering: %v", err)
				}
			}
			rep, err = Verify(h.ctx, h.db.Pool)
			if err != nil {
				t.Fatal(err)
			}
			failed := map[string]bool{}
			for _, ch := range rep.Checks {
				if !ch.Pass {
					failed[ch.Name] = true
				}
			}
			for _, name := range c.broken {
				if !failed[name] {
					t.Errorf("%s not reported:\n%s", name, rep)
				}
			}
			if len(failed) != len(c.broken) || rep.OK() {
				t.Errorf("failed %v, want exactly %v", failed, c.broken)
			}
		})
	}
}

// Verify carries what it has checked: a second run reads only newer transfers and still
// catches a balance that drifts from them.
func TestVerifyIsIncremental(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice, bob := f.wallet("100"), f.wallet("0")
	for range 5 {
		f.mustPost(f.p2p(f.id("inc"), alice, bob, "1", "0.1", "0.01"))
	}
	check := func(wantChecked int64, wantOK bool) {
		t.Helper()
		rep, err := verify(f.ctx, f.db.Pool, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() != wantOK || rep.Checks[0].Checked != wantChecked {
			t.Fatalf("ok %v, %d transfers read; want %v and %d:\n%s", rep.OK(), rep.Checks[0].Checked, wantOK, wantChecked, rep)
		}
	}
	check(16, true) // a funding + 5 × 3
	check(0, true)  // all carried
	f.mustPost(f.p2p(f.id("inc"), alice, bob, "1", "0.1", "0.01"))
	check(3, true)
	if _, err := f.db.Pool.Exec(f.ctx, `UPDATE account_balances SET debits_posted = debits_posted + 1 WHERE account_id = $1`, alice.ID); err != nil {
		t.Fatal(err)
	}
	check(0, false)
	rep, err := VerifyAll(f.ctx, f.db.Pool)
	if err != nil || rep.OK() || rep.Checks[0].Checked != 19 {
		t.Fatalf("full run: %v\n%s", err, rep)
	}
}
