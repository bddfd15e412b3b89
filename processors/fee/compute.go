package fee

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/schemas"
)

// Party is what the rules know of a wallet that may be charged.
type Party struct {
	Known      bool // false when the payment has no such wallet
	FeeGroup   string
	WalletType string
	KYCLevel   int
}

// Facts are everything Compute looks at, gathered by the stage or the preview.
type Facts struct {
	Subsidiary string
	Type       string
	Operation  string
	Method     string
	Amount     schemas.Money
	At         time.Time
	Exponent   int32           // of Amount.Currency
	VATRate    decimal.Decimal // on fees, in the subsidiary at At
	Payer      Party
	Merchant   Party
}

// NewFacts takes a payment's own facts; the caller adds the parties and the VAT rate.
func NewFacts(p *schemas.Payment, subsidiary string, exponent int32) Facts {
	return Facts{Subsidiary: subsidiary, Type: p.Type, Operation: p.Operation, Method: p.Method,
		Amount: p.Amount, At: p.CreatedAt, Exponent: exponent}
}

// Compute prices a payment: every definition that matches adds a line, in the order of
// defs; a fee that comes to zero adds none, so a free payment gets an empty slice. The fee
// is fixed + rate × amount, clamped to [Min, Max], rounded to the currency's exponent by
// the definition's rounding (half-up by default); VAT is the fee times the VAT rate,
// rounded half-up.
func Compute(defs []Definition, f Facts) ([]schemas.FeeLine, error) {
	if f.Exponent < 0 {
		return nil, fmt.Errorf("computing fees: exponent %d of %s", f.Exponent, f.Amount.Currency)
	}
	lines := []schemas.FeeLine{}
	for _, d := range defs {
		if !d.Matches(f) {
			continue
		}
		amount, err := d.Fee(f.Amount.Amount, f.Exponent)
		if err != nil {
			return nil, fmt.Errorf("computing fee %s: %w", d.Code, err)
		}
		if !amount.IsPositive() {
			continue
		}
		rate := f.VATRate
		if d.VATExempt {
			rate = decimal.Zero
		}
		lines = append(lines, schemas.FeeLine{
			Code:    LineCode(d.PaidBy, d.Code),
			Amount:  schemas.Money{Amount: amount, Currency: f.Amount.Currency},
			VATRate: rate.String(),
			VAT:     schemas.Money{Amount: amount.Mul(rate).Round(f.Exponent), Currency: f.Amount.Currency},
		})
	}
	return lines, nil
}

// Fee is the definition's fee on amount, before VAT.
func (d Definition) Fee(amount decimal.Decimal, exp int32) (decimal.Decimal, error) {
	fee := d.Fixed.Add(d.Rate.Mul(amount))
	if d.Min.Valid && fee.LessThan(d.Min.Decimal) {
		fee = d.Min.Decimal
	}
	if d.Max.Valid && fee.GreaterThan(d.Max.Decimal) {
		fee = d.Max.Decimal
	}
	return d.Rounding.Round(fee, exp)
}

// Matches reports whether d prices a payment with these facts.
func (d Definition) Matches(f Facts) bool {
	if d.Disabled || d.Subsidiary != f.Subsidiary || d.Currency != f.Amount.Currency || d.Operation != f.Operation {
		return false
	}
	if !anyOr(d.PaymentType, f.Type) || !anyOr(d.Method, f.Method) {
		return false
	}
	a := f.Amount.Amount
	if d.AmountFrom.Valid && a.LessThan(d.AmountFrom.Decimal) {
		return false
	}
	if d.AmountTo.Valid && !a.LessThan(d.AmountTo.Decimal) {
		return false
	}
	if !d.ValidFrom.IsZero() && f.At.Before(d.ValidFrom) {
		return false
	}
	if !d.ValidTo.IsZero() && !f.At.Before(d.ValidTo) {
		return false
	}
	party := f.Payer
	if d.PaidBy == PaidByMerchant {
		party = f.Merchant
	}
	if !party.Known {
		return false // nobody to charge
	}
	if !anyOr(d.FeeGroup, party.FeeGroup) || !anyOr(d.WalletType, party.WalletType) {
		return false
	}
	return d.KYCLevel == nil || *d.KYCLevel == party.KYCLevel
}

// anyOr is true when a selector is empty (matches any value) or equals v.
func anyOr(selector, v string) bool { return selector == "" || selector == v }
