package fee

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// PaidBy says which party a fee is charged to.
type PaidBy string

// Parties a fee can be charged to.
const (
	// PaidByPayer charges the paying customer: the payer wallet, or the credited wallet of
	// a top-up (which has no payer).
	PaidByPayer PaidBy = "payer"
	// PaidByMerchant charges the payee wallet (the merchant of a merchant payment).
	PaidByMerchant PaidBy = "merchant"
)

// Rounding is how a computed fee is brought to the currency's exponent.
type Rounding string

// Rounding modes. Fees are never negative, so half-up is half away from zero.
const (
	HalfUp Rounding = "half_up" // the default, DESIGN.md "Money"
	Down   Rounding = "down"
	Up     Rounding = "up"
)

// Round brings d to exp fraction digits.
func (r Rounding) Round(d decimal.Decimal, exp int32) (decimal.Decimal, error) {
	switch r {
	case HalfUp, "":
		return d.Round(exp), nil
	case Down:
		return d.RoundFloor(exp), nil
	case Up:
		return d.RoundCeil(exp), nil
	}
	return decimal.Decimal{}, fmt.Errorf("%w: rounding %q", ErrInvalidDefinition, r)
}

// Operations a definition can price besides new payments.
var operations = []string{"", "capture", "void", "adjust", "refund"}

// Definition is one fee rule. Empty selectors match any value.
type Definition struct {
	ID         int64
	Code       string // names the fee on the payment: [a-z0-9_]{1,40}
	Subsidiary string
	Currency   string

	PaymentType string
	// Operation "" prices new payments only; capture, void, adjust or refund prices that
	// operation, which is otherwise free.
	Operation  string
	FeeGroup   string // of the charged party's wallet
	WalletType string // of the charged party's wallet
	KYCLevel   *int   // of the charged party's user
	Method     string
	AmountFrom decimal.NullDecimal // inclusive
	AmountTo   decimal.NullDecimal // exclusive
	ValidFrom  time.Time           // inclusive; zero is open
	ValidTo    time.Time           // exclusive; zero is open

	Fixed     decimal.Decimal
	Rate      decimal.Decimal // a fraction: 0.005 is 0.5 %
	Min       decimal.NullDecimal
	Max       decimal.NullDecimal
	PaidBy    PaidBy
	VATExempt bool
	Rounding  Rounding
	Disabled  bool
}

// ErrInvalidDefinition is wrapped by every error about a definition's content.
var ErrInvalidDefinition = errors.New("invalid fee definition")

var codePattern = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)

// Validate checks d on its own; exponent is the fraction digits of d.Currency, which fixed
// amounts, clamps and range bounds may not exceed.
func (d Definition) Validate(exponent int32) error {
	var errs []error
	bad := func(field string, v any, why string) {
		errs = append(errs, fmt.Errorf("%w: field %s %v: %s", ErrInvalidDefinition, field, v, why))
	}
	if !codePattern.MatchString(d.Code) {
		bad("Code", d.Code, "must match [a-z0-9_]{1,40}")
	}
	if d.Subsidiary == "" {
		bad("Subsidiary", d.Subsidiary, "required")
	}
	if d.Currency == "" {
		bad("Currency", d.Currency, "required")
	}
	if !slices.Contains(operations, d.Operation) {
		bad("Operation", d.Operation, "must be empty or one of capture, void, adjust, refund")
	}
	if d.PaidBy != PaidByPayer && d.PaidBy != PaidByMerchant {
		bad("PaidBy", d.PaidBy, "must be payer or merchant")
	}
	if _, err := d.Rounding.Round(decimal.Zero, 0); err != nil {
		bad("Rounding", d.Rounding, "must be half_up, down or up")
	}
	if d.Rate.IsNegative() || d.Rate.GreaterThanOrEqual(decimal.NewFromInt(1)) {
		bad("Rate", d.Rate, "must be a fraction in [0, 1)")
	}
	for name, v := range map[string]decimal.NullDecimal{"Fixed": {Decimal: d.Fixed, Valid: true},
		"Min": d.Min, "Max": d.Max, "AmountFrom": d.AmountFrom, "AmountTo": d.AmountTo} {
		if !v.Valid {
			continue
		}
		if v.Decimal.IsNegative() {
			bad(name, v.Decimal, "must not be negative")
		}
		if !v.Decimal.Equal(v.Decimal.Truncate(exponent)) {
			bad(name, v.Decimal, fmt.Sprintf("%s allows %d fraction digits", d.Currency, exponent))
		}
	}
	if d.Min.Valid && d.Max.Valid && d.Min.Decimal.GreaterThan(d.Max.Decimal) {
		bad("Min", d.Min.Decimal, "is above Max")
	}
	if d.AmountFrom.Valid && d.AmountTo.Valid && !d.AmountFrom.Decimal.LessThan(d.AmountTo.Decimal) {
		bad("AmountFrom", d.AmountFrom.Decimal, "must be below AmountTo")
	}
	if !d.ValidFrom.IsZero() && !d.ValidTo.IsZero() && !d.ValidFrom.Before(d.ValidTo) {
		bad("ValidFrom", d.ValidFrom, "must be before ValidTo")
	}
	if d.KYCLevel != nil && (*d.KYCLevel < 0 || *d.KYCLevel > 3) {
		bad("KYCLevel", *d.KYCLevel, "must be 0 to 3")
	}
	return errors.Join(errs...)
}

// LineCode is the code a definition's fee line carries: the party charged, a colon, and
// the definition's code ("payer:p2p_fee", "merchant:mdr").
func LineCode(paidBy PaidBy, code string) string { return string(paidBy) + ":" + code }

// SplitLineCode reads a fee line's code back into the party charged and the definition's
// code; ok is false for a code not made by LineCode.
func SplitLineCode(lineCode string) (paidBy PaidBy, code string, ok bool) {
	p, c, found := strings.Cut(lineCode, ":")
	if !found || (PaidBy(p) != PaidByPayer && PaidBy(p) != PaidByMerchant) || c == "" {
		return "", "", false
	}
	return PaidBy(p), c, true
}
