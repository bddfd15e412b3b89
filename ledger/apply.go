package ledger

import (
	"slices"

	"github.com/shopspring/decimal"
)

// balance is one locked balance row, in minor units, with the mutable account facts read
// under its lock.
type balance struct {
	dPend, dPost, cPend, cPost int64
	// others is the available balance on the account's other shards, for shard 0 of a hot
	// account with a balance rule. Those shards only ever gain credits, so a stale value
	// understates the balance and can never let a debit overdraw.
	others     int64
	minBalance int64
	frozen     bool
	closed     bool
	allowedMCC []string
	currency   string
	dirty      bool
	// tid is the row's ctid as locked ("(block,offset)"): no one else can move a row this
	// transaction has locked, so the update finds it without an index descent.
	tid string
}

func (b *balance) available() int64 { return b.cPost - b.dPost - b.dPend + b.others }

// leg is one transfer to apply: amount moves posted funds, pending changes the pending
// columns of both sides (negative releases a reservation). The engine fills amt and pend,
// the same in minor units.
type leg struct {
	code        Code
	debit       AccountID
	credit      AccountID
	debitShard  int16 // -1: chosen by the engine
	creditShard int16
	amount      decimal.Decimal
	pending     decimal.Decimal
	amt, pend   int64
	currency    string
	mcc         string
	paymentID   string
	holdID      int64
}

// checkDebit says whether a leg's debit side may apply to b. A change that does not
// lower the available balance is allowed even below the minimum, so releases and
// captures of reserved funds always go through.
func checkDebit(b *balance, m accountMeta, l *leg) error {
	if l.amt > 0 || l.pend > 0 {
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
	if b.dPend+l.pend < 0 {
		return fieldError("pending", ErrInvalid, l.pending)
	}
	if m.noOverdraft {
		before := b.available()
		after := before - l.amt - l.pend
		if after < b.minBalance && after < before {
			return fieldError("debit", ErrInsufficientFunds, l.debit)
		}
	}
	return nil
}

func checkCredit(b *balance, l *leg) error {
	if b.closed && (l.amt > 0 || l.pend > 0) {
		return fieldError("credit", ErrAccountClosed, l.credit)
	}
	if b.cPend+l.pend < 0 {
		return fieldError("pending", ErrInvalid, l.pending)
	}
	return nil
}

// shardFor picks the balance row a side of a leg lands on. Debits of accounts with a
// balance rule stay on shard 0 where they serialise and are checked against the whole
// account, unless the account checks each shard on its own; everything else on a hot
// account spreads by partition.
func shardFor(m accountMeta, debit bool, partition int) int16 {
	if m.shards == 0 || (debit && (m.noOverdraft || m.creditOnly) && !m.shardDebits) {
		return 0
	}
	if partition < 0 {
		partition = -partition
	}
	return int16(1 + partition%m.shards)
}
