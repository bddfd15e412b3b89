package loyalty

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/schemas"
)

// Kind is what a campaign gives.
type Kind string

// Reward kinds; they are also the Kind of the schemas.Reward the stage records.
const (
	// Discount lowers what the customer pays a merchant; the budget pays the merchant
	// the difference.
	Discount Kind = "discount"
	// RandomReduction is a discount of a random amount within bounds, drawn from the
	// payment id so a retried payment gets the same amount.
	RandomReduction Kind = "random_reduction"
	// Rebate (cashback) credits the customer from the budget after the payment.
	Rebate Kind = "rebate"
	// Points credits loyalty points (currency PTS) from the points liability account; it
	// uses no budget.
	Points Kind = "points"
	// Redemption lets the customer pay part of a merchant payment with points (payment
	// metadata MetaPointsToRedeem); the budget pays the merchant their value.
	Redemption Kind = "points_redemption"
)

// MetaPointsToRedeem is the payment metadata key through which a channel asks to pay
// part of a merchant payment with points: a whole number of points.
const MetaPointsToRedeem = "points_to_redeem"

// Cash reports whether the kind pays money out of the campaign's budget.
func (k Kind) Cash() bool {
	return k == Discount || k == RandomReduction || k == Rebate || k == Redemption
}

// reducesPrice reports whether the kind lowers what the customer pays from the wallet;
// only one such reward applies to a payment.
func (k Kind) reducesPrice() bool { return k == Discount || k == RandomReduction || k == Redemption }

// Campaign is one loyalty rule. Empty lists match any value.
type Campaign struct {
	ID         string // [a-z0-9_-]{1,40}; also the ref of its budget account
	Subsidiary string
	Currency   string // of the payments it applies to and of its budget
	Name       string
	Stopped    bool

	PaymentTypes []string
	Merchants    []string  // payee wallet refs
	MCCs         []string  // merchant category codes of the payment
	StartsAt     time.Time // inclusive; zero is open
	EndsAt       time.Time // exclusive; zero is open
	MinAmount    decimal.Decimal
	// CapCount bounds how many rewards one payer wallet gets from the campaign; 0 is none.
	CapCount int
	// CapAmount bounds the total one payer wallet gets (points for a points campaign); a
	// reward that would pass it is cut to what is left.
	CapAmount decimal.NullDecimal

	Kind Kind
	// Discount and Rebate give Fixed + Rate × amount (Rate 0.05 is 5 %), at most MaxReward.
	Rate      decimal.Decimal
	Fixed     decimal.Decimal
	MaxReward decimal.NullDecimal
	// RandomReduction gives an amount in [RandomMin, RandomMax] in steps of the currency's
	// smallest unit.
	RandomMin decimal.NullDecimal
	RandomMax decimal.NullDecimal
	// Points gives floor(amount × PointsPerUnit) points.
	PointsPerUnit decimal.NullDecimal
	// Redemption values each redeemed point at PointValue.
	PointValue decimal.NullDecimal

	// Granted is what the stage has promised from the budget so far (read only).
	Granted decimal.Decimal
}

// ErrInvalidCampaign is wrapped by every error about a campaign's content.
var ErrInvalidCampaign = errors.New("invalid campaign")

var idPattern = regexp.MustCompile(`^[a-z0-9_-]{1,40}$`)

// Validate checks c on its own; exponent is the fraction digits of c.Currency.
func (c Campaign) Validate(exponent int32) error {
	var errs []error
	bad := func(field string, v any, why string) {
		errs = append(errs, fmt.Errorf("%w: field %s %v: %s", ErrInvalidCampaign, field, v, why))
	}
	if !idPattern.MatchString(c.ID) {
		bad("ID", c.ID, "must match [a-z0-9_-]{1,40}")
	}
	if c.Subsidiary == "" || c.Currency == "" {
		bad("Subsidiary/Currency", c.Subsidiary+"/"+c.Currency, "required")
	}
	if !c.StartsAt.IsZero() && !c.EndsAt.IsZero() && !c.StartsAt.Before(c.EndsAt) {
		bad("StartsAt", c.StartsAt, "must be before EndsAt")
	}
	if c.CapCount < 0 {
		bad("CapCount", c.CapCount, "must not be negative")
	}
	money := map[string]decimal.NullDecimal{"MinAmount": {Decimal: c.MinAmount, Valid: true}}
	switch c.Kind {
	case Discount, Rebate:
		if !c.Fixed.IsPositive() && !c.Rate.IsPositive() {
			bad("Rate", c.Rate, "a discount or rebate needs a Rate or a Fixed amount")
		}
		if c.Rate.IsNegative() || c.Rate.GreaterThan(decimal.NewFromInt(1)) {
			bad("Rate", c.Rate, "must be a fraction in [0, 1]")
		}
		money["Fixed"], money["MaxReward"] = decimal.NullDecimal{Decimal: c.Fixed, Valid: true}, c.MaxReward
		money["CapAmount"] = c.CapAmount
	case RandomReduction:
		if !c.RandomMin.Valid || !c.RandomMax.Valid || c.RandomMin.Decimal.GreaterThan(c.RandomMax.Decimal) || !c.RandomMax.Decimal.IsPositive() {
			bad("RandomMin", c.RandomMin.Decimal, "a random reduction needs 0 <= RandomMin <= RandomMax, RandomMax > 0")
		}
		money["RandomMin"], money["RandomMax"], money["CapAmount"] = c.RandomMin, c.RandomMax, c.CapAmount
	case Points:
		if !c.PointsPerUnit.Valid || !c.PointsPerUnit.Decimal.IsPositive() {
			bad("PointsPerUnit", c.PointsPerUnit.Decimal, "a points campaign needs a positive PointsPerUnit")
		}
		if c.CapAmount.Valid && !c.CapAmount.Decimal.IsInteger() {
			bad("CapAmount", c.CapAmount.Decimal, "a points cap is a whole number of points")
		}
	case Redemption:
		if !c.PointValue.Valid || !c.PointValue.Decimal.IsPositive() {
			bad("PointValue", c.PointValue.Decimal, "a points redemption campaign needs a positive PointValue")
		}
		if c.CapCount != 0 || c.CapAmount.Valid {
			bad("CapCount", c.CapCount, "a points redemption campaign has no per-payer caps: points are the customer's own")
		}
	default:
		bad("Kind", c.Kind, "must be discount, random_reduction, rebate, points or points_redemption")
	}
	// The ledger posts a discount or a points part only as part of a merchant payment.
	if c.Kind.reducesPrice() && (len(c.PaymentTypes) == 0 || slices.ContainsFunc(c.PaymentTypes, func(t string) bool { return t != "merchant_payment" })) {
		bad("PaymentTypes", c.PaymentTypes, "a discount or points redemption applies to merchant_payment only; list it")
	}
	for name, v := range money {
		if v.Valid && (v.Decimal.IsNegative() || !v.Decimal.Equal(v.Decimal.Truncate(exponent))) {
			bad(name, v.Decimal, fmt.Sprintf("must be a non-negative %s amount with at most %d fraction digits", c.Currency, exponent))
		}
	}
	return errors.Join(errs...)
}

// Eligible reports whether p qualifies for c. Operations (capture, void, adjust, refund)
// never do.
func (c Campaign) Eligible(p *schemas.Payment) bool {
	if c.Stopped || p.Operation != "" || c.Subsidiary != p.Subsidiary || c.Currency != p.Amount.Currency {
		return false
	}
	if len(c.PaymentTypes) > 0 && !slices.Contains(c.PaymentTypes, p.Type) {
		return false
	}
	if len(c.Merchants) > 0 && !slices.Contains(c.Merchants, p.PayeeWallet) {
		return false
	}
	if len(c.MCCs) > 0 && !slices.Contains(c.MCCs, p.MCC) {
		return false
	}
	if !c.StartsAt.IsZero() && p.CreatedAt.Before(c.StartsAt) {
		return false
	}
	if !c.EndsAt.IsZero() && !p.CreatedAt.Before(c.EndsAt) {
		return false
	}
	return !p.Amount.Amount.LessThan(c.MinAmount)
}

// Reward is what c gives on p before caps and budget, rounded half-up to exp fraction
// digits; ok is false when it comes to nothing. A price reduction always leaves at least
// one smallest unit to pay, so the payment keeps a principal.
func (c Campaign) Reward(p *schemas.Payment, exp int32) (r schemas.Reward, ok bool) {
	amount := p.Amount.Amount
	r = schemas.Reward{Campaign: c.ID, Kind: string(c.Kind), Amount: schemas.Money{Amount: decimal.Zero, Currency: p.Amount.Currency}}
	var v decimal.Decimal
	switch c.Kind {
	case Discount, Rebate:
		v = c.Fixed.Add(c.Rate.Mul(amount)).Round(exp)
		if c.MaxReward.Valid && v.GreaterThan(c.MaxReward.Decimal) {
			v = c.MaxReward.Decimal
		}
	case RandomReduction:
		v = RandomAmount(p.PaymentID, c.ID, c.RandomMin.Decimal, c.RandomMax.Decimal, exp)
	case Points:
		r.Points = amount.Mul(c.PointsPerUnit.Decimal).Floor().IntPart()
		return r, r.Points > 0
	case Redemption:
		return r, false // asked for by the payment, see Redeem
	default:
		return r, false
	}
	if c.Kind.reducesPrice() {
		if most := amount.Sub(decimal.New(1, -exp)); v.GreaterThan(most) {
			v = most
		}
	}
	r.Amount.Amount = v
	return r, v.IsPositive()
}

// RandomAmount draws an amount in [min, max] in steps of 10^-exp from the payment and
// campaign ids alone, so every retry of a payment draws the same.
func RandomAmount(paymentID, campaignID string, min, max decimal.Decimal, exp int32) decimal.Decimal {
	steps := max.Sub(min).Shift(exp).Floor()
	if !steps.IsPositive() {
		return min
	}
	h := sha256.Sum256([]byte(paymentID + "\x00" + campaignID))
	// The modulo bias is below 2^-40 for any realistic number of steps.
	k := decimal.NewFromUint64(binary.BigEndian.Uint64(h[:8])).Mod(steps.Add(decimal.NewFromInt(1)))
	return min.Add(k.Shift(-exp))
}

// Usage is what one payer wallet has had from one campaign.
type Usage struct {
	Count int
	Total decimal.Decimal // currency units, or points for a points campaign
}

// ApplyCap cuts r to what the campaign's per-payer caps leave after u; ok is false when
// nothing is left.
func (c Campaign) ApplyCap(r schemas.Reward, u Usage) (schemas.Reward, bool) {
	if c.CapCount > 0 && u.Count >= c.CapCount {
		return r, false
	}
	if !c.CapAmount.Valid {
		return r, true
	}
	left := c.CapAmount.Decimal.Sub(u.Total)
	if !left.IsPositive() {
		return r, false
	}
	if c.Kind == Points {
		if l := left.IntPart(); r.Points > l {
			r.Points = l
		}
		return r, r.Points > 0
	}
	if r.Amount.Amount.GreaterThan(left) {
		r.Amount.Amount = left
	}
	return r, true
}

// Add is u after r.
func (u Usage) Add(r schemas.Reward) Usage {
	u.Count++
	if r.Kind == string(Points) {
		u.Total = u.Total.Add(decimal.NewFromInt(r.Points))
	} else {
		u.Total = u.Total.Add(r.Amount.Amount)
	}
	return u
}

// Reasons a requested points redemption ends the payment.
const (
	ReasonPointsInvalid       = "points_invalid"
	ReasonPointsUnavailable   = "points_redemption_unavailable"
	ReasonPointsExceedAmount  = "points_exceed_amount"
	ReasonPointsInsufficient  = "points_insufficient"
	ReasonPointsBudgetExhaust = "points_budget_exhausted"
)

// maxRedeem bounds the points one payment may redeem: far above any real balance.
const maxRedeem = 1_000_000_000_000

// PointsToRedeem reads the points a payment asks to redeem; 0 when it asks none, and a
// reason code when the request is malformed.
func PointsToRedeem(p *schemas.Payment) (int64, string) {
	v, ok := p.Metadata[MetaPointsToRedeem]
	if !ok {
		return 0, ""
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > maxRedeem || strconv.FormatInt(n, 10) != v {
		return 0, ReasonPointsInvalid
	}
	return n, ""
}

// Redeem is what redeeming points on p through c is worth: points × PointValue, rounded
// down to exp fraction digits so a point never pays for more than its value. It returns a
// reason code when the points are worth more than the payment or nothing at all.
func (c Campaign) Redeem(p *schemas.Payment, points int64, exp int32) (schemas.Reward, string) {
	v := decimal.NewFromInt(points).Mul(c.PointValue.Decimal).RoundFloor(exp)
	if v.GreaterThan(p.Amount.Amount) {
		return schemas.Reward{}, ReasonPointsExceedAmount
	}
	if !v.IsPositive() {
		return schemas.Reward{}, ReasonPointsInvalid
	}
	return schemas.Reward{Campaign: c.ID, Kind: string(Redemption), Points: points,
		Amount: schemas.Money{Amount: v, Currency: p.Amount.Currency}}, ""
}
