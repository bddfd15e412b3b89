package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
)

// Currency is a row of the currencies table.
type Currency struct {
	Code     string
	Exponent int32 // fraction digits allowed in an amount
	IsPoints bool  // the loyalty points "currency": never part of e-money totals
}

// currencies is the immutable table of currency rules loaded once by New.
type currencies map[string]Currency

func loadCurrencies(ctx context.Context, pool *pgxpool.Pool) (currencies, error) {
	rows, err := pool.Query(ctx, `SELECT code, exponent, is_points FROM currencies`)
	if err != nil {
		return nil, fmt.Errorf("loading currencies: %w", err)
	}
	defer rows.Close()
	cs := currencies{}
	for rows.Next() {
		var c Currency
		if err := rows.Scan(&c.Code, &c.Exponent, &c.IsPoints); err != nil {
			return nil, fmt.Errorf("loading currencies: %w", err)
		}
		cs[c.Code] = c
	}
	return cs, rows.Err()
}

// checkAmount refuses amounts that are not positive or carry more fraction digits than
// the currency allows; it never rounds.
func (cs currencies) checkAmount(field string, amount decimal.Decimal, currency string) error {
	c, ok := cs[currency]
	if !ok {
		return fieldError("currency", ErrUnknownCurrency, currency)
	}
	if !amount.IsPositive() {
		return fieldError(field, ErrNotPositive, amount)
	}
	if !amount.Equal(amount.Truncate(c.Exponent)) {
		return fieldError(field, ErrTooManyDecimals, amount)
	}
	if _, ok := toUnits(amount, c.Exponent); !ok {
		return fieldError(field, ErrTooLarge, amount)
	}
	return nil
}
