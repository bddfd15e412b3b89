package ledger

import (
	"slices"

	"github.com/shopspring/decimal"
)

// balance is one locked balance row with the mutable account facts read under its lock.
type balance struct {
	dPend, dPost, cPend, cPost decimal.Decimal
	// others is the available balance on the account's other shards, for shard 0 of a hot
	// account with a balance rule. Those shards only ever gain credits, so a stale value
	// understates the balance and can never let a debit overdraw.
	others     decimal.Decimal
	minBalance decimal.Decimal
	frozen     bool
	closed     bool
	allowedMCC []string
	dirty      bool
}

func (b *balance) available() decimal.Decimal {
	return b.cPost.Sub(b.dPost).Sub(b.dPend).Add(b.others)
}

// leg is one transfer to apply: amount moves posted funds, pending changes the pending
// columns of both sides (negative releases a reservation).
type leg struct {
	code        Code
	debit       AccountID
	credit      AccountID
	debitShard  int16 // -1: chosen by the engine
	creditShard int16
	amount      decimal.Decimal
	pending     decimal.Decimal
	currency    string
	mcc         string
	paymentID   string
	holdID      int64
}

// checkDebit applies a leg's debit side to b, or says why it may not. A change that does
// not lower the available balance is allowed even below the minimum, so releases and
// captures of reserved funds always go through.
func checkDebit(b *balance, m accountMeta, l leg) error {
	adds := l.amount.IsPositive() || l.pending.IsPositive()
	if adds {
		switch {
		case b.closed:
			return fieldError("debit", ErrAccountClosed, l.debit)
		case b.frozen:
			return fieldError("debit", ErrAccountFrozen, l.debit)
		case m.creditOnly:
			return fieldError("debit", ErrCreditOnly, l.debit)
		case len(b.allowedMCC) > 0 && !slices.Contains(b.allowedMCC, l.mcc):
			return fieldError("mcc", ErrMCCNotAllowed, l.mcc)
		}
	}
	if b.dPend.Add(l.pending).IsNegative() {
		return fieldError("pending", ErrInvalid, l.pending)
	}
	if m.noOverdraft {
		before := b.available()
		after := before.Sub(l.amount).Sub(l.pending)
		if after.LessThan(b.minBalance) && after.LessThan(before) {
			return fieldError("debit", ErrInsufficientFunds, l.debit)
		}
	}
	return nil
}

func checkCredit(b *balance, l leg) error {
	if b.closed && (l.amount.IsPositive() || l.pending.IsPositive()) {
		return fieldError("credit", ErrAccountClosed, l.credit)
	}
	if b.cPend.Add(l.pending).IsNegative() {
		return fieldError("pending", ErrInvalid, l.pending)
	}
	return nil
}

// shardFor picks the balance row a side of a leg lands on. Debits of accounts with a
// balance rule stay on shard 0 where they serialise and are checked; everything else on
// a hot account spreads by partition.
func shardFor(m accountMeta, debit bool, partition int) int16 {
	if m.shards == 0 || (debit && (m.noOverdraft || m.creditOnly)) {
		return 0
	}
	if partition < 0 {
		partition = -partition
	}
	return int16(1 + partition%m.shards)
}
