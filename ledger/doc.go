// Package ledger is paystream's double-entry ledger on PostgreSQL: subsidiaries, users,
// wallets and their accounts, immutable transfers applied as all-or-nothing postings,
// holds, balances, statements and the invariant checks behind `paystream verify`.
//
// It owns the ledger tables: nothing else writes them. It never trusts a caller for
// balance rules (they are enforced under row locks in the database transaction), never
// posts a payment id twice, and never rounds an amount.
package ledger
