package fee

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/ledger"
)

// Rules manages fee definitions: what `paystream rules fees` calls. Changes reach running
// fee stages at their next refresh.
type Rules struct {
	pool *pgxpool.Pool
	led  *ledger.Ledger
}

// NewRules returns the rules of the database behind pool; led gives currency exponents.
func NewRules(pool *pgxpool.Pool, led *ledger.Ledger) *Rules { return &Rules{pool: pool, led: led} }

// ErrNotFound is returned for a definition id that does not exist.
var ErrNotFound = errors.New("fee definition not found")

// Create validates d and stores it active; it returns d with its id.
func (r *Rules) Create(ctx context.Context, d Definition) (Definition, error) {
	if d.PaidBy == "" {
		d.PaidBy = PaidByPayer
	}
	if d.Rounding == "" {
		d.Rounding = HalfUp
	}
	c, ok := r.led.Currency(d.Currency)
	if !ok {
		return Definition{}, fmt.Errorf("%w: field Currency %q: unknown currency", ErrInvalidDefinition, d.Currency)
	}
	if err := d.Validate(c.Exponent); err != nil {
		return Definition{}, err
	}
	d.Disabled = false
	err := r.pool.QueryRow(ctx, `INSERT INTO fee_definitions (code, subsidiary_id, currency, payment_type, operation,
			fee_group, wallet_type, kyc_level, method, amount_from, amount_to, valid_from, valid_to,
			fixed, rate, fee_min, fee_max, paid_by, vat_exempt, rounding)
		VALUES ($1, $2, $3, NULLIF($4, ''), $5, NULLIF($6, ''), NULLIF($7, ''), $8, NULLIF($9, ''), $10, $11, $12, $13,
			$14, $15, $16, $17, $18, $19, $20) RETURNING id`,
		d.Code, d.Subsidiary, d.Currency, d.PaymentType, d.Operation, d.FeeGroup, d.WalletType, d.KYCLevel, d.Method,
		d.AmountFrom, d.AmountTo, nullTime(d.ValidFrom), nullTime(d.ValidTo), d.Fixed, d.Rate, d.Min, d.Max,
		d.PaidBy, d.VATExempt, d.Rounding).Scan(&d.ID)
	if err != nil {
		return Definition{}, fmt.Errorf("creating fee definition %s: %w", d.Code, err)
	}
	return d, nil
}

// List returns the definitions of a subsidiary ("" for all), oldest first; disabled ones
// only with includeDisabled.
func (r *Rules) List(ctx context.Context, subsidiary string, includeDisabled bool) ([]Definition, error) {
	rows, err := r.pool.Query(ctx, `SELECT `+definitionColumns+` FROM fee_definitions
		WHERE ($1 = '' OR subsidiary_id = $1) AND ($2 OR status = 'active') ORDER BY id`, subsidiary, includeDisabled)
	if err != nil {
		return nil, fmt.Errorf("listing fee definitions: %w", err)
	}
	defs, err := pgx.CollectRows(rows, scanDefinition)
	if err != nil {
		return nil, fmt.Errorf("listing fee definitions: %w", err)
	}
	return defs, nil
}

// Disable stops a definition from applying; it stays listed for the record.
func (r *Rules) Disable(ctx context.Context, id int64) error {
	tag, err := r.pool.Exec(ctx, `UPDATE fee_definitions SET status = 'disabled', updated_at = now() WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("disabling fee definition %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("disabling fee definition %d: %w", id, ErrNotFound)
	}
	return nil
}

const definitionColumns = `id, code, subsidiary_id, currency, coalesce(payment_type, ''), operation,
	coalesce(fee_group, ''), coalesce(wallet_type, ''), kyc_level, coalesce(method, ''), amount_from, amount_to,
	valid_from, valid_to, fixed, rate, fee_min, fee_max, paid_by, vat_exempt, rounding, status`

func scanDefinition(row pgx.CollectableRow) (Definition, error) {
	var d Definition
	var kyc *int16
	var from, to *time.Time
	var status string
	err := row.Scan(&d.ID, &d.Code, &d.Subsidiary, &d.Currency, &d.PaymentType, &d.Operation, &d.FeeGroup,
		&d.WalletType, &kyc, &d.Method, &d.AmountFrom, &d.AmountTo, &from, &to, &d.Fixed, &d.Rate, &d.Min, &d.Max,
		&d.PaidBy, &d.VATExempt, &d.Rounding, &status)
	if kyc != nil {
		k := int(*kyc)
		d.KYCLevel = &k
	}
	if from != nil {
		d.ValidFrom = from.UTC()
	}
	if to != nil {
		d.ValidTo = to.UTC()
	}
	d.Disabled = status != "active"
	return d, err
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
