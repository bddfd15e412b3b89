package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Subsidiary is a legal entity with its own chart of accounts and VAT rules.
type Subsidiary struct {
	ID           string // short code, e.g. "SG01"
	Name         string
	BaseCurrency string
}

// VATRate applies to a category of service from a date on.
type VATRate struct {
	Category  string
	ValidFrom time.Time
	Rate      decimal.Decimal // 0.07 for 7 %
}

// CreateSubsidiary registers a subsidiary with its VAT rate table.
func (l *Ledger) CreateSubsidiary(ctx context.Context, s Subsidiary, vat ...VATRate) error {
	if _, ok := l.currencies[s.BaseCurrency]; !ok {
		return fieldError("base_currency", ErrUnknownCurrency, s.BaseCurrency)
	}
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("creating subsidiary: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO subsidiaries (id, name, base_currency) VALUES ($1, $2, $3)`,
		s.ID, s.Name, s.BaseCurrency); err != nil {
		return fmt.Errorf("creating subsidiary %s: %w", s.ID, err)
	}
	for _, v := range vat {
		if _, err := tx.Exec(ctx, `INSERT INTO vat_rates (subsidiary_id, category, valid_from, rate) VALUES ($1, $2, $3, $4)`,
			s.ID, v.Category, v.ValidFrom, v.Rate); err != nil {
			return fmt.Errorf("creating VAT rate %s: %w", v.Category, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("creating subsidiary: %w", err)
	}
	return nil
}

// VATRateAt returns the rate of a category in force at a time.
func (l *Ledger) VATRateAt(ctx context.Context, subsidiary, category string, at time.Time) (decimal.Decimal, error) {
	var r decimal.Decimal
	err := l.pool.QueryRow(ctx, `SELECT rate FROM vat_rates WHERE subsidiary_id = $1 AND category = $2 AND valid_from <= $3
		ORDER BY valid_from DESC LIMIT 1`, subsidiary, category, at).Scan(&r)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("reading VAT rate %s/%s: %w", subsidiary, category, notFound(err))
	}
	return r, nil
}
