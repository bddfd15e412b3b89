package loyalty

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/ledger"
)

// Rules manages campaigns: what `paystream rules campaigns` calls. Changes reach running
// loyalty stages at their next refresh.
type Rules struct {
	pool *pgxpool.Pool
	led  *ledger.Ledger
}

// NewRules returns the campaigns of the database behind pool.
func NewRules(pool *pgxpool.Pool, led *ledger.Ledger) *Rules { return &Rules{pool: pool, led: led} }

// ErrNotFound is returned for a campaign id that does not exist.
var ErrNotFound = errors.New("campaign not found")

// BudgetRules are the rules of a campaign's budget account: never below zero, and
// sharded because every partition's postings debit it.
var BudgetRules = ledger.Rules{NoOverdraft: true, Shards: 4}

// Create validates c, opens its budget account (cash campaigns) and stores it active.
func (r *Rules) Create(ctx context.Context, c Campaign) (Campaign, error) {
	cur, ok := r.led.Currency(c.Currency)
	if !ok {
		return Campaign{}, fmt.Errorf("%w: field Currency %q: unknown currency", ErrInvalidCampaign, c.Currency)
	}
	if err := c.Validate(cur.Exponent); err != nil {
		return Campaign{}, err
	}
	if c.Kind.Cash() {
		if _, err := r.BudgetAccount(ctx, c); err != nil {
			return Campaign{}, err
		}
	}
	c.Stopped, c.Granted = false, decimal.Zero
	_, err := r.pool.Exec(ctx, `INSERT INTO campaigns (id, subsidiary_id, currency, name, payment_types, merchants, mccs,
			starts_at, ends_at, min_amount, cap_count, cap_amount, kind, rate, fixed, max_reward, random_min, random_max,
			points_per_unit, point_value) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULLIF($11, 0), $12, $13, $14, $15, $16,
			$17, $18, $19, $20)`,
		c.ID, c.Subsidiary, c.Currency, c.Name, nonNil(c.PaymentTypes), nonNil(c.Merchants), nonNil(c.MCCs),
		nullTime(c.StartsAt), nullTime(c.EndsAt), c.MinAmount, c.CapCount, c.CapAmount, c.Kind, c.Rate, c.Fixed,
		c.MaxReward, c.RandomMin, c.RandomMax, c.PointsPerUnit, c.PointValue)
	if err != nil {
		return Campaign{}, fmt.Errorf("creating campaign %s: %w", c.ID, err)
	}
	return c, nil
}

// BudgetAccount returns the budget account of a campaign (system account campaign_budget,
// ref = campaign id, in the campaign's subsidiary and currency), opening it if needed.
func (r *Rules) BudgetAccount(ctx context.Context, c Campaign) (ledger.Account, error) {
	a, err := r.led.SystemAccount(ctx, c.Subsidiary, ledger.CampaignBudget, c.Currency, c.ID)
	if errors.Is(err, ledger.ErrNotFound) {
		a, err = r.led.OpenSystemAccount(ctx, c.Subsidiary, ledger.CampaignBudget, c.Currency, c.ID, BudgetRules)
	}
	if err != nil {
		return ledger.Account{}, fmt.Errorf("opening the budget of campaign %s: %w", c.ID, err)
	}
	return a, nil
}

// Get reads one campaign.
func (r *Rules) Get(ctx context.Context, id string) (Campaign, error) {
	rows, err := r.pool.Query(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE id = $1`, id)
	if err != nil {
		return Campaign{}, fmt.Errorf("reading campaign %s: %w", id, err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanCampaign)
	if errors.Is(err, pgx.ErrNoRows) {
		return Campaign{}, fmt.Errorf("reading campaign %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Campaign{}, fmt.Errorf("reading campaign %s: %w", id, err)
	}
	return c, nil
}

// List returns the campaigns of a subsidiary ("" for all), oldest first; stopped ones
// only with includeStopped. This order is the order the stage applies them in.
func (r *Rules) List(ctx context.Context, subsidiary string, includeStopped bool) ([]Campaign, error) {
	rows, err := r.pool.Query(ctx, `SELECT `+campaignColumns+` FROM campaigns
		WHERE ($1 = '' OR subsidiary_id = $1) AND ($2 OR status = 'active') ORDER BY created_at, id`, subsidiary, includeStopped)
	if err != nil {
		return nil, fmt.Errorf("listing campaigns: %w", err)
	}
	cs, err := pgx.CollectRows(rows, scanCampaign)
	if err != nil {
		return nil, fmt.Errorf("listing campaigns: %w", err)
	}
	return cs, nil
}

// Stop ends a campaign: it grants nothing more. What is left in its budget stays there
// until an operator moves it.
func (r *Rules) Stop(ctx context.Context, id string) error {
	tag, err := r.pool.Exec(ctx, `UPDATE campaigns SET status = 'stopped', updated_at = now() WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("stopping campaign %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("stopping campaign %s: %w", id, ErrNotFound)
	}
	return nil
}

// Budget is where a cash campaign's money stands.
type Budget struct {
	Account ledger.AccountID
	Funded  decimal.Decimal // credited to the budget account, ever
	Granted decimal.Decimal // promised by the stage, ever
	Left    decimal.Decimal // Funded - Granted: what the stage may still promise
	Balance ledger.Balance  // the account as the ledger has it (rewards posted so far)
}

// Budget returns the budget of a cash campaign.
func (r *Rules) Budget(ctx context.Context, id string) (Budget, error) {
	c, err := r.Get(ctx, id)
	if err != nil {
		return Budget{}, err
	}
	a, err := r.led.SystemAccount(ctx, c.Subsidiary, ledger.CampaignBudget, c.Currency, c.ID)
	if err != nil {
		return Budget{}, fmt.Errorf("reading the budget of campaign %s: %w", id, err)
	}
	bal, err := r.led.Balance(ctx, a.ID)
	if err != nil {
		return Budget{}, fmt.Errorf("reading the budget of campaign %s: %w", id, err)
	}
	return Budget{Account: a.ID, Funded: bal.CreditsPosted, Granted: c.Granted, Left: bal.CreditsPosted.Sub(c.Granted), Balance: bal}, nil
}

// FundingPosting is the posting that funds a campaign's budget from source (the
// subsidiary's adjustment account for a platform-funded campaign, a merchant's wallet
// account for a merchant-funded one): Dr source, Cr budget, code adjustment. paymentID
// makes it idempotent in the ledger.
func (r *Rules) FundingPosting(ctx context.Context, campaignID, paymentID string, source ledger.AccountID, amount decimal.Decimal) (ledger.Posting, error) {
	c, err := r.Get(ctx, campaignID)
	if err != nil {
		return ledger.Posting{}, err
	}
	if !c.Kind.Cash() {
		return ledger.Posting{}, fmt.Errorf("%w: campaign %s gives points and has no budget", ErrInvalidCampaign, c.ID)
	}
	a, err := r.BudgetAccount(ctx, c)
	if err != nil {
		return ledger.Posting{}, err
	}
	return ledger.Posting{PaymentID: paymentID, Transfers: []ledger.Transfer{{Code: ledger.CodeAdjustment,
		Debit: source, Credit: a.ID, Amount: amount, Currency: c.Currency}}}, nil
}

// Release gives back what campaigns promised a payment that did not post (the posting
// stage rejected it), so their budgets can promise it again; it returns the amount given
// back, zero when there was nothing (a second call changes nothing).
func (r *Rules) Release(ctx context.Context, paymentID string) (decimal.Decimal, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("releasing grants of %s: %w", paymentID, err)
	}
	defer tx.Rollback(ctx)
	// The campaign rows first, in id order, as writeGrants locks them.
	if _, err := tx.Exec(ctx, `SELECT id FROM campaigns WHERE id IN (SELECT campaign_id FROM campaign_grants WHERE payment_id = $1)
		ORDER BY id FOR UPDATE`, paymentID); err != nil {
		return decimal.Decimal{}, fmt.Errorf("releasing grants of %s: %w", paymentID, err)
	}
	var total decimal.Decimal
	err = tx.QueryRow(ctx, `WITH gone AS (DELETE FROM campaign_grants WHERE payment_id = $1 RETURNING campaign_id, amount),
			per AS (SELECT campaign_id, sum(amount) AS amount FROM gone GROUP BY campaign_id),
			upd AS (UPDATE campaigns c SET granted = c.granted - per.amount FROM per WHERE c.id = per.campaign_id RETURNING per.amount)
		SELECT coalesce(sum(amount), 0) FROM upd`, paymentID).Scan(&total)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("releasing grants of %s: %w", paymentID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return decimal.Decimal{}, fmt.Errorf("releasing grants of %s: %w", paymentID, err)
	}
	return total, nil
}

const campaignColumns = `id, subsidiary_id, currency, name, status, payment_types, merchants, mccs, starts_at, ends_at,
	min_amount, coalesce(cap_count, 0), cap_amount, kind, rate, fixed, max_reward, random_min, random_max, points_per_unit, point_value, granted`

func scanCampaign(row pgx.CollectableRow) (Campaign, error) {
	var c Campaign
	var status string
	var starts, ends *time.Time
	err := row.Scan(&c.ID, &c.Subsidiary, &c.Currency, &c.Name, &status, &c.PaymentTypes, &c.Merchants, &c.MCCs,
		&starts, &ends, &c.MinAmount, &c.CapCount, &c.CapAmount, &c.Kind, &c.Rate, &c.Fixed, &c.MaxReward,
		&c.RandomMin, &c.RandomMax, &c.PointsPerUnit, &c.PointValue, &c.Granted)
	c.Stopped = status != "active"
	if starts != nil {
		c.StartsAt = starts.UTC()
	}
	if ends != nil {
		c.EndsAt = ends.UTC()
	}
	return c, err
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
