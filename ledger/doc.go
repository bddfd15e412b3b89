// Package ledger is paystream's double-entry ledger on PostgreSQL: subsidiaries, users,
// wallets and their accounts, immutable transfers applied as all-or-nothing postings,
// holds, balances, statements and the invariant checks behind `paystream verify`.
//
// It owns the ledger tables: nothing else writes them. It never trusts a caller for
// balance rules (they are enforced under row locks in the database transaction), never
// posts a payment id twice, and never rounds an amount.
//
// # How a batch is applied
//
// PostBatch runs one transaction: it looks the payment ids up (replays answer from the
// stored outcome), locks every balance row the batch will write in (account, shard)
// order through the primary key, decides each posting in order against the locked
// balances in Go (int64 minor units), then writes outcomes, transfers with their account
// items, and balances with set-based statements (INSERT ... SELECT FROM unnest) in one
// round trip and commits. Sorted lock order means concurrent batches wait for each other but cannot
// deadlock. An outcome insert that meets a payment id stored meanwhile by another
// transaction rolls the whole batch back and decides it again, so a payment id posts
// at most once without a claim round trip.
//
// # Hot accounts
//
// An account opened with Rules.Shards = n has n+1 balance rows. Shard 0 takes every debit
// of an account with a balance rule (no-overdraft, credit-only), where it is checked
// under lock; credits, and debits of accounts without a rule (fee revenue, VAT payable),
// go to shard 1 + partition % n, so batches from different partitions do not queue
// behind one row. A debit on shard 0 counts the other shards' available balance read in
// the same statement: those shards only ever gain credits, so a stale read understates
// the balance and can never let a debit overdraw. Account items carry the running
// balance of their shard; an account's balance, now or at a time, sums its shards.
//
// # Account items
//
// Every transfer has one account item per side: the running posted and pending balance
// of that side's balance row right after it. They are columns of the transfer row
// (debit_balance, credit_balance, ...), and two indexes, (debit_account_id, created_at,
// id, debit_shard) and the same for the credit side, make them an account's items in
// statement order: a statement page merges two bounded index scans, a balance at a time
// is one backward index read per side and balance row. Storing them on the transfer row
// rather than in a table of their own saves a heap tuple and its WAL per side, which was
// most of the cost of a posting.
// Fee revenue, VAT payable, merchants and campaign budgets should be opened with shards.
//
// # Payment types
//
// payment_types.go builds and documents the postings of every payment type of
// DESIGN.md; hold.go has the balance-transaction operations (reserve, adjust, capture,
// void, refund, cancel, credit, authorize, expiry).
package ledger
