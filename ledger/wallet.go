package ledger

import (
	"context"
	"fmt"
)

// WalletID identifies a wallet.
type WalletID int64

// WalletStatus says what a wallet may do: a frozen wallet receives but cannot pay, a closed
// one does neither.
type WalletStatus string

// Wallet statuses.
const (
	WalletActive WalletStatus = "active"
	WalletFrozen WalletStatus = "frozen"
	WalletClosed WalletStatus = "closed"
)

// Wallet is the contract between a subsidiary and a user; it holds wallet accounts.
type Wallet struct {
	ID         WalletID
	UserID     UserID
	Subsidiary string
	Status     WalletStatus
	FeeGroup   string
}

// CreateWallet opens an active wallet for a user in a subsidiary.
func (l *Ledger) CreateWallet(ctx context.Context, w Wallet) (Wallet, error) {
	if w.FeeGroup == "" {
		w.FeeGroup = "default"
	}
	w.Status = WalletActive
	err := l.pool.QueryRow(ctx, `INSERT INTO wallets (user_id, subsidiary_id, fee_group) VALUES ($1, $2, $3) RETURNING id`,
		w.UserID, w.Subsidiary, w.FeeGroup).Scan(&w.ID)
	if err != nil {
		return Wallet{}, fmt.Errorf("creating wallet: %w", err)
	}
	return w, nil
}

// GetWallet reads a wallet.
func (l *Ledger) GetWallet(ctx context.Context, id WalletID) (Wallet, error) {
	w := Wallet{ID: id}
	err := l.pool.QueryRow(ctx, `SELECT user_id, subsidiary_id, status, fee_group FROM wallets WHERE id = $1`, id).
		Scan(&w.UserID, &w.Subsidiary, &w.Status, &w.FeeGroup)
	if err != nil {
		return Wallet{}, fmt.Errorf("reading wallet %d: %w", id, notFound(err))
	}
	return w, nil
}

// SetWalletStatus freezes, closes or reactivates a wallet and its accounts. The flags are
// copied onto the accounts because postings read accounts, not wallets, under lock.
func (l *Ledger) SetWalletStatus(ctx context.Context, id WalletID, s WalletStatus) error {
	switch s {
	case WalletActive, WalletFrozen, WalletClosed:
	default:
		return fieldError("status", ErrInvalid, s)
	}
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("setting wallet status: %w", err)
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `UPDATE wallets SET status = $2 WHERE id = $1`, id, s)
	if err != nil {
		return fmt.Errorf("setting wallet status: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fieldError("wallet", ErrNotFound, id)
	}
	// Lock the balance rows first, in the order postings do, so a status change waits for
	// postings in flight and postings after it read the new flags.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM account_balances WHERE account_id IN
		(SELECT id FROM accounts WHERE wallet_id = $1) ORDER BY account_id, shard FOR UPDATE`, id); err != nil {
		return fmt.Errorf("locking wallet accounts: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE accounts SET frozen = $2, closed = $3 WHERE wallet_id = $1`,
		id, s == WalletFrozen, s == WalletClosed); err != nil {
		return fmt.Errorf("setting wallet accounts status: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("setting wallet status: %w", err)
	}
	return nil
}
