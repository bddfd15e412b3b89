package validation

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
)

// Types are the payment types of schemas.Payment.Type.
var Types = []string{"topup", "withdrawal", "transfer", "merchant_payment", "bill_payment", "airtime_topup", "refund", "hold"}

// ErrInvalidRule is wrapped by every error about a rule that cannot be stored.
var ErrInvalidRule = errors.New("invalid rule")

// ErrNoSuchRule is returned when deleting a rule that does not exist.
var ErrNoSuchRule = errors.New("no such rule")

var currencyPattern = regexp.MustCompile(`^[A-Z]{3,4}$`)

// Settings are the stage-wide rules.
type Settings struct {
	// FrozenMayReceive lets a frozen wallet be credited (it can never pay). Default true.
	FrozenMayReceive bool
	// RequireKYCLimit refuses a payment whose (KYC level, type, currency) has no limit row
	// (type_not_permitted); when false such a payment has no per-transaction limit.
	// Default false.
	RequireKYCLimit bool
}

// KYCLimit is the per-transaction rule for payments of one type in one currency by payers
// of one KYC level.
type KYCLimit struct {
	KYCLevel int
	Type     string
	Currency string
	// Allowed false refuses the type at this level (type_not_permitted).
	Allowed bool
	// Min is the smallest amount allowed (below_minimum under it); zero for none.
	Min decimal.Decimal
	// Max is the largest amount allowed (kyc_limit_exceeded above it); nil for none.
	Max *decimal.Decimal
}

// Validate checks l.
func (l KYCLimit) Validate() error {
	var errs []error
	if l.KYCLevel < 0 || l.KYCLevel > 3 {
		errs = append(errs, fmt.Errorf("%w: field KYCLevel: %d, must be 0 to 3", ErrInvalidRule, l.KYCLevel))
	}
	if !slices.Contains(Types, l.Type) {
		errs = append(errs, fmt.Errorf("%w: field Type: %q is not a payment type", ErrInvalidRule, l.Type))
	}
	if !currencyPattern.MatchString(l.Currency) {
		errs = append(errs, fmt.Errorf("%w: field Currency: %q is not a currency code", ErrInvalidRule, l.Currency))
	}
	if l.Min.IsNegative() {
		errs = append(errs, fmt.Errorf("%w: field Min: %s, must not be negative", ErrInvalidRule, l.Min))
	}
	if l.Max != nil && l.Max.LessThan(l.Min) {
		errs = append(errs, fmt.Errorf("%w: field Max: %s is below Min %s", ErrInvalidRule, l.Max, l.Min))
	}
	return errors.Join(errs...)
}

type limitKey struct {
	level         int
	typ, currency string
}

// ruleSet is one consistent load of every rule.
type ruleSet struct {
	settings Settings
	limits   map[limitKey]KYCLimit
}

// Rules reads and changes the stage's rules; `paystream rules` uses it. A change is in
// force in running stages within their Config.RefreshInterval.
type Rules struct{ pool *pgxpool.Pool }

// NewRules returns the rules store on a migrated database.
func NewRules(pool *pgxpool.Pool) *Rules { return &Rules{pool: pool} }

// Settings reads the stage-wide settings.
func (r *Rules) Settings(ctx context.Context) (Settings, error) {
	var s Settings
	err := r.pool.QueryRow(ctx, `SELECT frozen_may_receive, require_kyc_limit FROM validation_settings`).
		Scan(&s.FrozenMayReceive, &s.RequireKYCLimit)
	if err != nil {
		return Settings{}, fmt.Errorf("reading validation settings: %w", err)
	}
	return s, nil
}

// SetSettings replaces the stage-wide settings.
func (r *Rules) SetSettings(ctx context.Context, s Settings) error {
	if _, err := r.pool.Exec(ctx, `UPDATE validation_settings SET frozen_may_receive = $1, require_kyc_limit = $2,
		updated_at = now()`, s.FrozenMayReceive, s.RequireKYCLimit); err != nil {
		return fmt.Errorf("setting validation settings: %w", err)
	}
	return nil
}

// SetKYCLimit creates or replaces the limit of (l.KYCLevel, l.Type, l.Currency).
func (r *Rules) SetKYCLimit(ctx context.Context, l KYCLimit) error {
	if err := l.Validate(); err != nil {
		return err
	}
	_, err := r.pool.Exec(ctx, `INSERT INTO validation_kyc_limits (kyc_level, payment_type, currency, allowed, min_amount, max_amount)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (kyc_level, payment_type, currency) DO UPDATE SET allowed = $4, min_amount = $5, max_amount = $6,
			updated_at = now()`, l.KYCLevel, l.Type, l.Currency, l.Allowed, l.Min, l.Max)
	if err != nil {
		return fmt.Errorf("setting KYC limit: %w", err)
	}
	return nil
}

// DeleteKYCLimit removes the limit of (level, typ, currency).
func (r *Rules) DeleteKYCLimit(ctx context.Context, level int, typ, currency string) error {
	tag, err := r.pool.Exec(ctx, `DELETE FROM validation_kyc_limits WHERE kyc_level = $1 AND payment_type = $2 AND currency = $3`,
		level, typ, currency)
	if err != nil {
		return fmt.Errorf("deleting KYC limit: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("deleting KYC limit %d/%s/%s: %w", level, typ, currency, ErrNoSuchRule)
	}
	return nil
}

// ListKYCLimits returns every KYC limit ordered by level, type and currency.
func (r *Rules) ListKYCLimits(ctx context.Context) ([]KYCLimit, error) {
	rows, err := r.pool.Query(ctx, `SELECT kyc_level, payment_type, currency, allowed, min_amount, max_amount
		FROM validation_kyc_limits ORDER BY kyc_level, payment_type, currency`)
	if err != nil {
		return nil, fmt.Errorf("listing KYC limits: %w", err)
	}
	ls, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (KYCLimit, error) {
		var l KYCLimit
		err := row.Scan(&l.KYCLevel, &l.Type, &l.Currency, &l.Allowed, &l.Min, &l.Max)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing KYC limits: %w", err)
	}
	return ls, nil
}

func (r *Rules) load(ctx context.Context) (*ruleSet, error) {
	s, err := r.Settings(ctx)
	if err != nil {
		return nil, err
	}
	ls, err := r.ListKYCLimits(ctx)
	if err != nil {
		return nil, err
	}
	rs := &ruleSet{settings: s, limits: make(map[limitKey]KYCLimit, len(ls))}
	for _, l := range ls {
		rs.limits[limitKey{l.KYCLevel, l.Type, l.Currency}] = l
	}
	return rs, nil
}

// SeedDemo installs the demo rule set `paystream dev` starts with: per-transaction limits
// in USD and EUR that grow with the KYC level (level 3 has no maximum), and withdrawals
// refused at level 0. Rules an operator already set are kept.
func SeedDemo(ctx context.Context, pool *pgxpool.Pool) error {
	// Maximum amounts at KYC level 0; each level above multiplies them by 10.
	base := map[string]int64{"topup": 500, "withdrawal": 500, "transfer": 200, "merchant_payment": 500,
		"bill_payment": 300, "airtime_topup": 50, "refund": 1000, "hold": 500}
	b := &pgx.Batch{}
	for _, cur := range []string{"USD", "EUR"} {
		for _, typ := range Types {
			for level := range 4 {
				var max *decimal.Decimal
				if level < 3 {
					m := decimal.New(base[typ], 0).Mul(decimal.New(1, int32(level)))
					max = &m
				}
				allowed := !(typ == "withdrawal" && level == 0)
				b.Queue(`INSERT INTO validation_kyc_limits (kyc_level, payment_type, currency, allowed, min_amount, max_amount)
					VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
					level, typ, cur, allowed, decimal.New(1, -2), max)
			}
		}
	}
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("seeding validation rules: %w", err)
	}
	return nil
}
