package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
)

// AccountID identifies an account.
type AccountID int64

// Purpose says what an account is for.
type Purpose string

// Wallet account purposes.
const (
	Main       Purpose = "main"
	Restricted Purpose = "restricted" // spendable only at the merchant categories in AllowedMCC
	Reserve    Purpose = "reserve"
	Deposit    Purpose = "deposit"
	Points     Purpose = "points"
)

// System account purposes (per subsidiary and currency; Ref names the connector, campaign
// or counter-subsidiary where there are several).
const (
	Safeguarding      Purpose = "safeguarding"
	ConnectorClearing Purpose = "connector_clearing"
	FeeRevenue        Purpose = "fee_revenue"
	VATPayable        Purpose = "vat_payable"
	CampaignBudget    Purpose = "campaign_budget"
	InterSubsidiary   Purpose = "inter_subsidiary"
	FXPosition        Purpose = "fx_position"
	PointsLiability   Purpose = "points_liability"
	Adjustments       Purpose = "adjustment"
)

// Rules are an account's balance rules and options.
type Rules struct {
	// NoOverdraft refuses a debit that would take credits - debits (posted, less pending
	// debits) below MinBalance; a negative MinBalance is an overdraft limit. Without it
	// debits are allowed whatever the balance.
	NoOverdraft bool
	MinBalance  decimal.Decimal
	// CreditOnly refuses every debit.
	CreditOnly bool
	// AllowedMCC lists the merchant categories a restricted account may pay.
	AllowedMCC []string
	// Shards spreads credits over this many balance rows so postings from different
	// partitions do not wait for each other; for hot accounts (fee revenue, VAT,
	// merchants, campaign budgets). 0 keeps one row.
	Shards int
	// ShardDebits spreads debits over the shards as well, each shard keeping its own
	// balance at or above zero, so debits from different partitions do not wait for each
	// other either (campaign budgets paying rewards). A shard can run dry while others
	// hold funds: Rebalance evens them out. Needs Shards > 0 and a zero MinBalance.
	ShardDebits bool
}

// WalletRules are the usual rules of a customer's wallet account: no overdraft.
var WalletRules = Rules{NoOverdraft: true}

// Account is a ledger account.
type Account struct {
	ID         AccountID
	Subsidiary string
	Wallet     WalletID // 0 for system accounts
	Purpose    Purpose
	Ref        string
	Currency   string
	Rules      Rules
	Frozen     bool
	Closed     bool
}

// accountMeta is what never changes about an account, cached by the Ledger.
type accountMeta struct {
	currency    string
	subsidiary  string
	shards      int
	noOverdraft bool
	creditOnly  bool
	shardDebits bool
}

// OpenWalletAccount opens the account of a wallet for a currency and purpose.
func (l *Ledger) OpenWalletAccount(ctx context.Context, wallet WalletID, currency string, purpose Purpose, r Rules) (Account, error) {
	w, err := l.GetWallet(ctx, wallet)
	if err != nil {
		return Account{}, err
	}
	return l.openAccount(ctx, Account{Subsidiary: w.Subsidiary, Wallet: wallet, Purpose: purpose, Currency: currency, Rules: r})
}

// OpenSystemAccount opens a system account of a subsidiary.
func (l *Ledger) OpenSystemAccount(ctx context.Context, subsidiary string, purpose Purpose, currency, ref string, r Rules) (Account, error) {
	return l.openAccount(ctx, Account{Subsidiary: subsidiary, Purpose: purpose, Ref: ref, Currency: currency, Rules: r})
}

func (l *Ledger) openAccount(ctx context.Context, a Account) (Account, error) {
	if _, ok := l.currencies[a.Currency]; !ok {
		return Account{}, fieldError("currency", ErrUnknownCurrency, a.Currency)
	}
	if a.Rules.Shards < 0 || a.Rules.Shards > 64 {
		return Account{}, fieldError("shards", ErrInvalid, a.Rules.Shards)
	}
	if a.Rules.ShardDebits && (a.Rules.Shards == 0 || !a.Rules.MinBalance.IsZero()) {
		return Account{}, fieldError("shard_debits", ErrInvalid, a.Rules.Shards)
	}
	var wallet *WalletID
	if a.Wallet != 0 {
		wallet = &a.Wallet
	}
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return Account{}, fmt.Errorf("opening account: %w", err)
	}
	defer tx.Rollback(ctx)
	err = tx.QueryRow(ctx, `INSERT INTO accounts (subsidiary_id, wallet_id, purpose, ref, currency, no_overdraft, min_balance,
			credit_only, allowed_mcc, shards, shard_debits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		a.Subsidiary, wallet, a.Purpose, a.Ref, a.Currency, a.Rules.NoOverdraft, a.Rules.MinBalance,
		a.Rules.CreditOnly, a.Rules.AllowedMCC, a.Rules.Shards, a.Rules.ShardDebits).Scan(&a.ID)
	if err != nil {
		return Account{}, fmt.Errorf("opening %s account: %w", a.Purpose, err)
	}
	var floor *decimal.Decimal
	if a.Rules.NoOverdraft && (a.Rules.Shards == 0 || a.Rules.ShardDebits) {
		floor = &a.Rules.MinBalance
	}
	// Shard 0 of a ShardDebits account takes nothing, so the floor matters on the others.
	if _, err := tx.Exec(ctx, `INSERT INTO account_balances (account_id, shard, floor) SELECT $1, g, $3 FROM generate_series(0, $2) g`,
		a.ID, a.Rules.Shards, floor); err != nil {
		return Account{}, fmt.Errorf("opening balance rows: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Account{}, fmt.Errorf("opening account: %w", err)
	}
	return a, nil
}

const accountColumns = `id, subsidiary_id, coalesce(wallet_id, 0), purpose, ref, currency, no_overdraft, min_balance,
	credit_only, coalesce(allowed_mcc, '{}'), shards, shard_debits, frozen, closed`

func scanAccount(row pgx.Row) (Account, error) {
	var a Account
	err := row.Scan(&a.ID, &a.Subsidiary, &a.Wallet, &a.Purpose, &a.Ref, &a.Currency, &a.Rules.NoOverdraft,
		&a.Rules.MinBalance, &a.Rules.CreditOnly, &a.Rules.AllowedMCC, &a.Rules.Shards, &a.Rules.ShardDebits, &a.Frozen, &a.Closed)
	return a, notFound(err)
}

// GetAccount reads an account.
func (l *Ledger) GetAccount(ctx context.Context, id AccountID) (Account, error) {
	a, err := scanAccount(l.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = $1`, id))
	if err != nil {
		return Account{}, fmt.Errorf("reading account %d: %w", id, err)
	}
	return a, nil
}

// WalletAccount looks up a wallet's account by currency and purpose.
func (l *Ledger) WalletAccount(ctx context.Context, wallet WalletID, currency string, purpose Purpose) (Account, error) {
	a, err := scanAccount(l.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts
		WHERE wallet_id = $1 AND currency = $2 AND purpose = $3`, wallet, currency, purpose))
	if err != nil {
		return Account{}, fmt.Errorf("looking up %s %s account of wallet %d: %w", purpose, currency, wallet, err)
	}
	return a, nil
}

// SystemAccount looks up a subsidiary's system account.
func (l *Ledger) SystemAccount(ctx context.Context, subsidiary string, purpose Purpose, currency, ref string) (Account, error) {
	a, err := scanAccount(l.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts
		WHERE wallet_id IS NULL AND subsidiary_id = $1 AND purpose = $2 AND currency = $3 AND ref = $4`,
		subsidiary, purpose, currency, ref))
	if err != nil {
		return Account{}, fmt.Errorf("looking up %s %s account of %s: %w", purpose, currency, subsidiary, err)
	}
	return a, nil
}

// CloseAccount closes an account: it takes no more transfers.
func (l *Ledger) CloseAccount(ctx context.Context, id AccountID) error {
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("closing account: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM account_balances WHERE account_id = $1 ORDER BY shard FOR UPDATE`, id); err != nil {
		return fmt.Errorf("closing account: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE accounts SET closed = true WHERE id = $1`, id); err != nil {
		return fmt.Errorf("closing account: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("closing account: %w", err)
	}
	return nil
}

// meta returns the cached immutable facts of accounts, loading the missing ones.
func (l *Ledger) meta(ctx context.Context, q querier, ids []AccountID) (map[AccountID]accountMeta, error) {
	out := make(map[AccountID]accountMeta, len(ids))
	var missing []int64
	for _, id := range ids {
		if _, ok := out[id]; ok {
			continue
		}
		if m, ok := l.accounts.Load(id); ok {
			out[id] = m.(accountMeta)
			continue
		}
		missing = append(missing, int64(id))
	}
	if len(missing) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT id, currency, subsidiary_id, shards, no_overdraft, credit_only, shard_debits FROM accounts WHERE id = ANY($1)`, missing)
	if err != nil {
		return nil, fmt.Errorf("reading accounts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id AccountID
		var m accountMeta
		if err := rows.Scan(&id, &m.currency, &m.subsidiary, &m.shards, &m.noOverdraft, &m.creditOnly, &m.shardDebits); err != nil {
			return nil, fmt.Errorf("reading accounts: %w", err)
		}
		l.accounts.Store(id, m)
		out[id] = m
	}
	return out, rows.Err()
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
