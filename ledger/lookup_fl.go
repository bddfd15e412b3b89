package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// walletFactsSQL reads users per wallet, as partiesSQL does.
const walletFactsSQL = `SELECT w.id, w.subsidiary_id, w.fee_group, w.wallet_type, w.status, u.kind, u.kyc_level
	FROM wallets w JOIN LATERAL (SELECT kind, kyc_level FROM users WHERE id = w.user_id LIMIT 1) u ON true
	WHERE w.id = ANY ($1)`

// WalletFacts are what the fee and loyalty rules select on, read in one query.
type WalletFacts struct {
	Wallet     WalletID
	Subsidiary string
	FeeGroup   string
	WalletType string
	Status     WalletStatus
	UserKind   UserKind
	KYCLevel   int
}

// GetWalletFacts reads a wallet with its type and its user's kind and KYC level.
func (l *Ledger) GetWalletFacts(ctx context.Context, id WalletID) (WalletFacts, error) {
	f := WalletFacts{Wallet: id}
	err := l.pool.QueryRow(ctx, `SELECT w.subsidiary_id, w.fee_group, w.wallet_type, w.status, u.kind, u.kyc_level
		FROM wallets w JOIN users u ON u.id = w.user_id WHERE w.id = $1`, id).
		Scan(&f.Subsidiary, &f.FeeGroup, &f.WalletType, &f.Status, &f.UserKind, &f.KYCLevel)
	if err != nil {
		return WalletFacts{}, fmt.Errorf("reading wallet facts %d: %w", id, notFound(err))
	}
	return f, nil
}

// EnsureVATRate adds a subsidiary's VAT rate for a category from a date, unless one is
// already set for that date; it reports whether it added it.
func (l *Ledger) EnsureVATRate(ctx context.Context, subsidiary string, v VATRate) (bool, error) {
	tag, err := l.pool.Exec(ctx, `INSERT INTO vat_rates (subsidiary_id, category, valid_from, rate) VALUES ($1, $2, $3, $4)
		ON CONFLICT (subsidiary_id, category, valid_from) DO NOTHING`, subsidiary, v.Category, v.ValidFrom, v.Rate)
	if err != nil {
		return false, fmt.Errorf("adding VAT rate %s/%s: %w", subsidiary, v.Category, err)
	}
	return tag.RowsAffected() == 1, nil
}

// WalletFactsOf reads the facts of many wallets in one query; wallets that do not exist
// are absent from the map. The fee stage reads a whole batch's wallets this way.
func (l *Ledger) WalletFactsOf(ctx context.Context, ids []WalletID) (map[WalletID]WalletFacts, error) {
	out := make(map[WalletID]WalletFacts, len(ids))
	err := l.queryKeys(ctx, len(ids), func(rows pgx.Rows) error {
		for rows.Next() {
			var f WalletFacts
			if err := rows.Scan(&f.Wallet, &f.Subsidiary, &f.FeeGroup, &f.WalletType, &f.Status, &f.UserKind, &f.KYCLevel); err != nil {
				return err
			}
			out[f.Wallet] = f
		}
		return rows.Err()
	}, walletFactsSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("reading wallet facts: %w", err)
	}
	return out, nil
}
