package risk

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/ledger"
)

// AllTypes in a Limit sums payments of every type.
const AllTypes = "*"

// Types are the payment types of schemas.Payment.Type.
var Types = []string{"topup", "withdrawal", "transfer", "merchant_payment", "bill_payment", "airtime_topup", "refund", "hold"}

// ErrInvalidRule is wrapped by every error about a rule that cannot be stored.
var ErrInvalidRule = errors.New("invalid rule")

// ErrNoSuchRule is returned when removing a rule that does not exist.
var ErrNoSuchRule = errors.New("no such rule")

var (
	currencyPattern = regexp.MustCompile(`^[A-Z]{3,4}$`)
	codePattern     = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

// Limit caps what one wallet may do in a rolling window: at most MaxCount payments and
// MaxAmount in total, of one type (or AllTypes) in one currency, for wallets whose user
// has KYCLevel. The payment that would go over is refused or reviewed, per Action.
type Limit struct {
	KYCLevel  int
	Type      string
	Window    Window
	Currency  string
	MaxCount  *int             // nil: no count limit
	MaxAmount *decimal.Decimal // nil: no amount limit
	Action    string           // DecisionReject (default when empty) or DecisionReview
}

// Validate checks l.
func (l Limit) Validate() error {
	var errs []error
	bad := func(field string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: field %s: %s", ErrInvalidRule, field, fmt.Sprintf(format, args...)))
	}
	if l.KYCLevel < 0 || l.KYCLevel > 3 {
		bad("KYCLevel", "%d, must be 0 to 3", l.KYCLevel)
	}
	if l.Type != AllTypes && !slices.Contains(Types, l.Type) {
		bad("Type", "%q is neither a payment type nor %q", l.Type, AllTypes)
	}
	if !slices.Contains(Windows, l.Window) {
		bad("Window", "%q is not hour, day or month", l.Window)
	}
	if !currencyPattern.MatchString(l.Currency) {
		bad("Currency", "%q is not a currency code", l.Currency)
	}
	if l.MaxCount == nil && l.MaxAmount == nil {
		bad("MaxCount", "a limit needs MaxCount, MaxAmount or both")
	}
	if l.MaxCount != nil && *l.MaxCount < 0 {
		bad("MaxCount", "%d, must not be negative", *l.MaxCount)
	}
	if l.MaxAmount != nil && l.MaxAmount.IsNegative() {
		bad("MaxAmount", "%s, must not be negative", l.MaxAmount)
	}
	if l.Action != "" && l.Action != DecisionReject && l.Action != DecisionReview {
		bad("Action", "%q is not reject or review", l.Action)
	}
	return errors.Join(errs...)
}

// Settings are the stage-wide rules: the unusual-amount rule flags a payment above
// AnomalyMultiplier times the wallet's running average amount in its currency (over about
// its last AnomalyLastPayments approved payments), once it has made AnomalyMinPayments.
type Settings struct {
	AnomalyAction       string // "off", DecisionReview (default) or DecisionReject
	AnomalyMultiplier   decimal.Decimal
	AnomalyMinPayments  int
	AnomalyLastPayments int
}

// Validate checks s.
func (s Settings) Validate() error {
	var errs []error
	if s.AnomalyAction != "off" && s.AnomalyAction != DecisionReview && s.AnomalyAction != DecisionReject {
		errs = append(errs, fmt.Errorf("%w: field AnomalyAction: %q is not off, review or reject", ErrInvalidRule, s.AnomalyAction))
	}
	if !s.AnomalyMultiplier.GreaterThan(decimal.NewFromInt(1)) {
		errs = append(errs, fmt.Errorf("%w: field AnomalyMultiplier: %s, must be above 1", ErrInvalidRule, s.AnomalyMultiplier))
	}
	if s.AnomalyMinPayments < 1 || s.AnomalyLastPayments < 1 {
		errs = append(errs, fmt.Errorf("%w: fields AnomalyMinPayments and AnomalyLastPayments must be at least 1", ErrInvalidRule))
	}
	return errors.Join(errs...)
}

// WatchEntry puts a user's payments, as payer or payee, to review or rejection.
type WatchEntry struct {
	User   ledger.UserID
	Action string // DecisionReview or DecisionReject
	// ReasonCode is the code decisions carry; default watch_listed.
	ReasonCode string
}

type limitKey struct {
	level    int
	typ      string
	window   Window
	currency string
}

// ruleSet is one consistent load of every rule.
type ruleSet struct {
	settings Settings
	limits   map[limitKey]limitRule
	watch    map[ledger.UserID]WatchEntry
	// anomaly is settings.AnomalyMultiplier as a fraction.
	anomaly fraction
}

// limitRule is a Limit with its MaxAmount in minor units of its currency, when that is a
// whole number (ok).
type limitRule struct {
	Limit
	maxMinor uint64
	minorOK  bool
}

// Rules reads and changes the stage's limits and settings; `paystream rules` uses it. A
// change is in force in running stages within their Config.RefreshInterval.
type Rules struct{ pool *pgxpool.Pool }

// NewRules returns the rules store on a migrated database.
func NewRules(pool *pgxpool.Pool) *Rules { return &Rules{pool: pool} }

// SetLimit creates or replaces the limit of (KYCLevel, Type, Window, Currency).
func (r *Rules) SetLimit(ctx context.Context, l Limit) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if l.Action == "" {
		l.Action = DecisionReject
	}
	_, err := r.pool.Exec(ctx, `INSERT INTO risk_limits (kyc_level, payment_type, time_window, currency, max_count, max_amount, action)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (kyc_level, payment_type, time_window, currency) DO UPDATE
		SET max_count = $5, max_amount = $6, action = $7, updated_at = now()`,
		l.KYCLevel, l.Type, l.Window, l.Currency, l.MaxCount, l.MaxAmount, l.Action)
	if err != nil {
		return fmt.Errorf("setting risk limit: %w", err)
	}
	return nil
}

// DeleteLimit removes the limit of (level, typ, window, currency).
func (r *Rules) DeleteLimit(ctx context.Context, level int, typ string, window Window, currency string) error {
	tag, err := r.pool.Exec(ctx, `DELETE FROM risk_limits WHERE kyc_level = $1 AND payment_type = $2 AND time_window = $3
		AND currency = $4`, level, typ, window, currency)
	if err != nil {
		return fmt.Errorf("deleting risk limit: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("deleting risk limit %d/%s/%s/%s: %w", level, typ, window, currency, ErrNoSuchRule)
	}
	return nil
}

// ListLimits returns every limit ordered by level, type, window and currency.
func (r *Rules) ListLimits(ctx context.Context) ([]Limit, error) {
	rows, err := r.pool.Query(ctx, `SELECT kyc_level, payment_type, time_window, currency, max_count, max_amount, action
		FROM risk_limits ORDER BY kyc_level, payment_type, array_position(ARRAY['hour', 'day', 'month'], time_window), currency`)
	if err != nil {
		return nil, fmt.Errorf("listing risk limits: %w", err)
	}
	ls, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Limit, error) {
		var l Limit
		err := row.Scan(&l.KYCLevel, &l.Type, &l.Window, &l.Currency, &l.MaxCount, &l.MaxAmount, &l.Action)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing risk limits: %w", err)
	}
	return ls, nil
}

// Settings reads the stage-wide settings.
func (r *Rules) Settings(ctx context.Context) (Settings, error) {
	var s Settings
	err := r.pool.QueryRow(ctx, `SELECT anomaly_action, anomaly_multiplier, anomaly_min_payments, anomaly_last_payments
		FROM risk_settings`).Scan(&s.AnomalyAction, &s.AnomalyMultiplier, &s.AnomalyMinPayments, &s.AnomalyLastPayments)
	if err != nil {
		return Settings{}, fmt.Errorf("reading risk settings: %w", err)
	}
	return s, nil
}

// SetSettings replaces the stage-wide settings.
func (r *Rules) SetSettings(ctx context.Context, s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if _, err := r.pool.Exec(ctx, `UPDATE risk_settings SET anomaly_action = $1, anomaly_multiplier = $2,
		anomaly_min_payments = $3, anomaly_last_payments = $4, updated_at = now()`,
		s.AnomalyAction, s.AnomalyMultiplier, s.AnomalyMinPayments, s.AnomalyLastPayments); err != nil {
		return fmt.Errorf("setting risk settings: %w", err)
	}
	return nil
}

// WatchList reads and changes the watch list; `paystream rules watch ...` uses it.
type WatchList struct{ pool *pgxpool.Pool }

// NewWatchList returns the watch list on a migrated database.
func NewWatchList(pool *pgxpool.Pool) *WatchList { return &WatchList{pool: pool} }

// Add puts a user on the watch list, or changes the user's entry.
func (w *WatchList) Add(ctx context.Context, e WatchEntry) error {
	if e.ReasonCode == "" {
		e.ReasonCode = ReasonWatchListed
	}
	if e.Action != DecisionReview && e.Action != DecisionReject {
		return fmt.Errorf("%w: field Action: %q is not review or reject", ErrInvalidRule, e.Action)
	}
	if !codePattern.MatchString(e.ReasonCode) {
		return fmt.Errorf("%w: field ReasonCode: %q is not a reason code (a-z, 0-9, _)", ErrInvalidRule, e.ReasonCode)
	}
	_, err := w.pool.Exec(ctx, `INSERT INTO risk_watch_list (user_id, action, reason_code) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET action = $2, reason_code = $3`, e.User, e.Action, e.ReasonCode)
	if err != nil {
		return fmt.Errorf("adding to the watch list: %w", err)
	}
	return nil
}

// Remove takes a user off the watch list.
func (w *WatchList) Remove(ctx context.Context, user ledger.UserID) error {
	tag, err := w.pool.Exec(ctx, `DELETE FROM risk_watch_list WHERE user_id = $1`, user)
	if err != nil {
		return fmt.Errorf("removing from the watch list: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("removing %s from the watch list: %w", ledger.UserRef(user), ErrNoSuchRule)
	}
	return nil
}

// List returns the watch list ordered by user.
func (w *WatchList) List(ctx context.Context) ([]WatchEntry, error) {
	rows, err := w.pool.Query(ctx, `SELECT user_id, action, reason_code FROM risk_watch_list ORDER BY user_id`)
	if err != nil {
		return nil, fmt.Errorf("listing the watch list: %w", err)
	}
	es, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (WatchEntry, error) {
		var e WatchEntry
		err := row.Scan(&e.User, &e.Action, &e.ReasonCode)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing the watch list: %w", err)
	}
	return es, nil
}

func loadRules(pool *pgxpool.Pool, l *ledger.Ledger) func(context.Context) (*ruleSet, error) {
	r, w := NewRules(pool), NewWatchList(pool)
	return func(ctx context.Context) (*ruleSet, error) {
		s, err := r.Settings(ctx)
		if err != nil {
			return nil, err
		}
		ls, err := r.ListLimits(ctx)
		if err != nil {
			return nil, err
		}
		es, err := w.List(ctx)
		if err != nil {
			return nil, err
		}
		rs := &ruleSet{settings: s, limits: make(map[limitKey]limitRule, len(ls)), watch: make(map[ledger.UserID]WatchEntry, len(es)),
			anomaly: fractionOf(s.AnomalyMultiplier)}
		for _, lim := range ls {
			r := limitRule{Limit: lim}
			if cur, ok := l.Currency(lim.Currency); ok && lim.MaxAmount != nil {
				r.maxMinor, r.minorOK = minorUnits(*lim.MaxAmount, cur.Exponent)
			}
			rs.limits[limitKey{lim.KYCLevel, lim.Type, lim.Window, lim.Currency}] = r
		}
		for _, e := range es {
			rs.watch[e.User] = e
		}
		return rs, nil
	}
}

// SeedDemo installs the demo rule set `paystream dev` starts with, in USD and EUR: at KYC
// level 0, at most 5 transfers an hour and 20 a day, 1,000 a day and 3,000 a month over
// every type; each level above multiplies counts by 2 and amounts by 10; level 3 has only
// a monthly turnover review above 1,000,000. Rules an operator already set are kept.
func SeedDemo(ctx context.Context, pool *pgxpool.Pool) error {
	b := &pgx.Batch{}
	q := func(level int, typ string, w Window, cur string, count *int, amount *decimal.Decimal, action string) {
		b.Queue(`INSERT INTO risk_limits (kyc_level, payment_type, time_window, currency, max_count, max_amount, action)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`, level, typ, w, cur, count, amount, action)
	}
	for _, cur := range []string{"USD", "EUR"} {
		for level := range 3 {
			mul := 1 << level
			hour, day := 5*mul, 20*mul
			dayAmount := decimal.New(1000, 0).Mul(decimal.New(1, int32(level)))
			monthAmount := decimal.New(3000, 0).Mul(decimal.New(1, int32(level)))
			q(level, "transfer", Hour, cur, &hour, nil, DecisionReject)
			q(level, "transfer", Day, cur, &day, nil, DecisionReject)
			q(level, AllTypes, Day, cur, nil, &dayAmount, DecisionReject)
			q(level, AllTypes, Month, cur, nil, &monthAmount, DecisionReview)
		}
		million := decimal.New(1_000_000, 0)
		q(3, AllTypes, Month, cur, nil, &million, DecisionReview)
	}
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("seeding risk rules: %w", err)
	}
	return nil
}
