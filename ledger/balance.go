package ledger

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Balance of an account, summed over its balance rows. Balances are credits minus debits:
// e-money accounts are positive, asset accounts (safeguarding, clearing) negative.
type Balance struct {
	Account        AccountID
	DebitsPending  decimal.Decimal
	DebitsPosted   decimal.Decimal
	CreditsPending decimal.Decimal
	CreditsPosted  decimal.Decimal
	Posted         decimal.Decimal // credits posted - debits posted
	Pending        decimal.Decimal // credits pending - debits pending
	Available      decimal.Decimal // posted less pending debits: what may be spent
}

func (b *Balance) derive() {
	b.Posted = b.CreditsPosted.Sub(b.DebitsPosted)
	b.Pending = b.CreditsPending.Sub(b.DebitsPending)
	b.Available = b.Posted.Sub(b.DebitsPending)
}

// Balance returns an account's balance now.
func (l *Ledger) Balance(ctx context.Context, id AccountID) (Balance, error) {
	b := Balance{Account: id}
	var n int
	err := l.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(debits_pending), 0), coalesce(sum(debits_posted), 0),
		coalesce(sum(credits_pending), 0), coalesce(sum(credits_posted), 0) FROM account_balances WHERE account_id = $1`, id).
		Scan(&n, &b.DebitsPending, &b.DebitsPosted, &b.CreditsPending, &b.CreditsPosted)
	if err != nil {
		return Balance{}, fmt.Errorf("reading balance of %d: %w", id, err)
	}
	if n == 0 {
		return Balance{}, fieldError("account", ErrNotFound, id)
	}
	b.derive()
	return b, nil
}

// BalanceAt is an account's balance as it stood at a time.
type BalanceAt struct {
	Account AccountID
	At      time.Time
	Posted  decimal.Decimal
	Pending decimal.Decimal // credits pending - debits pending
}

// BalanceAt returns an account's balance at a time: for each balance row, the running
// balance of its last item at or before the time (one index read per row).
func (l *Ledger) BalanceAt(ctx context.Context, id AccountID, at time.Time) (BalanceAt, error) {
	b := BalanceAt{Account: id, At: at}
	err := l.pool.QueryRow(ctx, `SELECT coalesce(sum(x.balance), 0), coalesce(sum(x.pending_balance), 0)
		FROM account_balances r CROSS JOIN LATERAL (`+lastItem("r.account_id", "r.shard", "$2")+`) x
		WHERE r.account_id = $1`, id, at).Scan(&b.Posted, &b.Pending)
	if err != nil {
		return BalanceAt{}, fmt.Errorf("reading balance of %d at %s: %w", id, at, err)
	}
	return b, nil
}

// lastItem is the SQL of a balance row's last account item at or before a time (balance,
// pending_balance), or no row: the later of the last debit side and the last credit side,
// each one backward index read.
func lastItem(account, shard, at string) string {
	r := strings.NewReplacer("$A", account, "$S", shard, "$T", at)
	return r.Replace(`SELECT balance, pending_balance FROM (
		(SELECT created_at, id, debit_balance AS balance, debit_pending_balance AS pending_balance FROM transfers
			WHERE debit_account_id = $A AND debit_shard = $S AND created_at <= $T ORDER BY created_at DESC, id DESC LIMIT 1)
		UNION ALL
		(SELECT created_at, id, credit_balance, credit_pending_balance FROM transfers
			WHERE credit_account_id = $A AND credit_shard = $S AND created_at <= $T ORDER BY created_at DESC, id DESC LIMIT 1)) s
		ORDER BY created_at DESC, id DESC LIMIT 1`)
}
