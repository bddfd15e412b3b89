package schemas

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/shopspring/decimal"
)

// Money is an exact amount in one currency.
type Money struct {
	Amount   decimal.Decimal
	Currency string // ISO 4217
}

// ErrInvalidMoney is wrapped by every error about an amount or currency on the wire.
var ErrInvalidMoney = errors.New("invalid money")

var (
	amountPattern   = regexp.MustCompile(`^-?(0|[1-9][0-9]{0,39})(\.[0-9]{1,18})?$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// Validate checks the currency code; every decimal.Decimal is a valid amount.
func (m Money) Validate() error {
	if !currencyPattern.MatchString(m.Currency) {
		return fmt.Errorf("%w: currency %q is not an ISO 4217 code", ErrInvalidMoney, m.Currency)
	}
	return nil
}

// String is "12.5 EUR".
func (m Money) String() string { return m.Amount.String() + " " + m.Currency }

func (m Money) native() (map[string]any, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	a := m.Amount.String()
	if !amountPattern.MatchString(a) {
		return nil, fmt.Errorf("%w: amount %s has more digits than the wire allows", ErrInvalidMoney, a)
	}
	return map[string]any{"amount": a, "currency": m.Currency}, nil
}

func parseMoney(amount, currency string) (Money, error) {
	if !amountPattern.MatchString(amount) {
		return Money{}, fmt.Errorf("%w: amount %q is not a plain decimal", ErrInvalidMoney, amount)
	}
	d, err := decimal.NewFromString(amount)
	if err != nil {
		return Money{}, fmt.Errorf("%w: amount %q: %w", ErrInvalidMoney, amount, err)
	}
	m := Money{Amount: d, Currency: currency}
	return m, m.Validate()
}
