package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
)

// GetUser reads a user.
func (l *Ledger) GetUser(ctx context.Context, id UserID) (User, error) {
	u := User{ID: id}
	err := l.pool.QueryRow(ctx, `SELECT kind, display_name, kyc_level, status FROM users WHERE id = $1`, id).
		Scan(&u.Kind, &u.DisplayName, &u.KYCLevel, &u.Status)
	if err != nil {
		return User{}, fmt.Errorf("reading user %d: %w", id, notFound(err))
	}
	return u, nil
}

// WalletAccounts returns a wallet's accounts, ordered by id.
func (l *Ledger) WalletAccounts(ctx context.Context, wallet WalletID) ([]Account, error) {
	rows, err := l.pool.Query(ctx, `SELECT `+accountColumns+` FROM accounts WHERE wallet_id = $1 ORDER BY id`, wallet)
	if err != nil {
		return nil, fmt.Errorf("listing accounts of wallet %d: %w", wallet, err)
	}
	accs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Account, error) { return scanAccount(r) })
	if err != nil {
		return nil, fmt.Errorf("listing accounts of wallet %d: %w", wallet, err)
	}
	return accs, nil
}

// SetWalletType records the wallet type that selects fee definitions and limits.
func (l *Ledger) SetWalletType(ctx context.Context, id WalletID, walletType string) error {
	tag, err := l.pool.Exec(ctx, `UPDATE wallets SET wallet_type = $2 WHERE id = $1`, id, walletType)
	if err != nil {
		return fmt.Errorf("setting wallet type: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fieldError("wallet", ErrNotFound, id)
	}
	return nil
}

// WalletType returns the wallet's type.
func (l *Ledger) WalletType(ctx context.Context, id WalletID) (string, error) {
	var t string
	if err := l.pool.QueryRow(ctx, `SELECT wallet_type FROM wallets WHERE id = $1`, id).Scan(&t); err != nil {
		return "", fmt.Errorf("reading wallet type: %w", notFound(err))
	}
	return t, nil
}

// HoldByPayment returns the hold a payment placed.
func (l *Ledger) HoldByPayment(ctx context.Context, paymentID string) (Hold, error) {
	return scanHold(l.pool.QueryRow(ctx, `SELECT `+holdColumns+` FROM holds WHERE payment_id = $1 ORDER BY id LIMIT 1`, paymentID))
}

// PostedAmount sums the transfers with the given codes of the payments' postings.
func (l *Ledger) PostedAmount(ctx context.Context, paymentIDs []string, codes ...Code) (decimal.Decimal, error) {
	var sum decimal.Decimal
	cs := make([]string, len(codes))
	for i, c := range codes {
		cs[i] = string(c)
	}
	err := l.pool.QueryRow(ctx, `SELECT coalesce(sum(t.amount), 0) FROM postings p
		JOIN transfers t ON t.id = ANY (p.transfer_ids)
		WHERE p.payment_id = ANY ($1) AND p.status = 'posted' AND t.code = ANY ($2)`, paymentIDs, cs).Scan(&sum)
	if err != nil {
		return decimal.Zero, fmt.Errorf("summing posted transfers: %w", err)
	}
	return sum, nil
}
