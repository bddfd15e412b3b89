package risk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/processors/pipeline"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// Review statuses.
const (
	ReviewOpen     = "open"
	ReviewApproved = "approved"
	ReviewRejected = "rejected"
)

// Errors of the review queue.
var (
	ErrReviewNotFound = errors.New("no such review")
	ErrReviewResolved = errors.New("review already resolved")
)

// Review is a payment the risk stage held for an operator. Its id is the payment id.
type Review struct {
	PaymentID   string
	Wallet      string // the screened wallet
	Type        string
	Amount      schemas.Money
	Score       int
	ReasonCodes []string
	Status      string // ReviewOpen, ReviewApproved or ReviewRejected
	Resolution  string // the reason code of the resolution
	CreatedAt   time.Time
	ResolvedAt  *time.Time
}

// Producer writes records; a *kgo.Client is one. It must use the default key partitioner
// (murmur2, as the runner does), so a re-emitted payment lands on its wallet's partition,
// and should be idempotent with acks from all in-sync replicas (franz-go's default).
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Reviews is the operators' queue of held payments; `paystream review` uses it.
type Reviews struct {
	pool     *pgxpool.Pool
	codec    processors.Codec
	producer Producer
	now      func() time.Time
}

// NewReviews returns the queue on a migrated database; codec encodes what it emits
// (schemas.Serde) and producer writes it.
func NewReviews(pool *pgxpool.Pool, codec processors.Codec, producer Producer) *Reviews {
	return &Reviews{pool: pool, codec: codec, producer: producer, now: time.Now}
}

const reviewColumns = `payment_id, wallet, payment_type, amount, currency, score, reason_codes, status,
	coalesce(resolution_code, ''), created_at, resolved_at`

func scanReview(row pgx.Row) (Review, error) {
	var r Review
	err := row.Scan(&r.PaymentID, &r.Wallet, &r.Type, &r.Amount.Amount, &r.Amount.Currency, &r.Score, &r.ReasonCodes,
		&r.Status, &r.Resolution, &r.CreatedAt, &r.ResolvedAt)
	return r, err
}

// List returns the open reviews, oldest first.
func (q *Reviews) List(ctx context.Context) ([]Review, error) {
	rows, err := q.pool.Query(ctx, `SELECT `+reviewColumns+` FROM risk_reviews WHERE status = 'open' ORDER BY created_at, payment_id`)
	if err != nil {
		return nil, fmt.Errorf("listing reviews: %w", err)
	}
	rs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Review, error) { return scanReview(row) })
	if err != nil {
		return nil, fmt.Errorf("listing reviews: %w", err)
	}
	return rs, nil
}

// Get returns one review, open or resolved.
func (q *Reviews) Get(ctx context.Context, id string) (Review, error) {
	r, err := scanReview(q.pool.QueryRow(ctx, `SELECT `+reviewColumns+` FROM risk_reviews WHERE payment_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Review{}, fmt.Errorf("reading review %s: %w", id, ErrReviewNotFound)
	}
	if err != nil {
		return Review{}, fmt.Errorf("reading review %s: %w", id, err)
	}
	return r, nil
}

// Approve sends the held payment on to payments.approved with the decision approve, where
// the fee stage takes it up.
func (q *Reviews) Approve(ctx context.Context, id string) error {
	return q.resolve(ctx, id, ReviewApproved, ReasonApproved, func(p *schemas.Payment, score int, reasons []string, now time.Time) (catalog.Topic, any) {
		p.Risk = &schemas.Risk{Decision: DecisionApprove, Score: score, ReasonCodes: append(reasons, ReasonApproved), At: now}
		return catalog.PaymentsApproved, pipeline.Forward(p, catalog.PaymentsApproved).Value
	})
}

// Reject ends the held payment with a rejected outcome carrying reasonCode (default
// review_rejected): a code, never free text, since outcomes reach channels.
func (q *Reviews) Reject(ctx context.Context, id, reasonCode string) error {
	if reasonCode == "" {
		reasonCode = ReasonRejected
	}
	if !codePattern.MatchString(reasonCode) {
		return fmt.Errorf("rejecting review %s: reason %q is not a reason code (a-z, 0-9, _)", id, reasonCode)
	}
	return q.resolve(ctx, id, ReviewRejected, reasonCode, func(p *schemas.Payment, _ int, reasons []string, now time.Time) (catalog.Topic, any) {
		p.Risk = &schemas.Risk{Decision: DecisionReject, Score: ScoreReject, ReasonCodes: append(reasons, reasonCode), At: now}
		return catalog.PaymentsOutcomes, pipeline.Outcome(p, pipeline.Risk, pipeline.StatusRejected, reasonCode,
			"rejected by an operator's review", now)
	})
}

// resolve emits what the resolution produces and closes the review in one step: the row
// stays locked while the record is written, and is marked resolved only once Kafka has
// it, in the same database transaction. A concurrent or repeated call waits for the lock
// and finds the review resolved; a failed write leaves it open to try again. Only a
// crash between Kafka's acknowledgement and the commit can leave an emitted payment's
// review open, and approving it again re-emits the same payment id, which the ledger
// posts at most once.
func (q *Reviews) resolve(ctx context.Context, id, status, code string,
	emit func(p *schemas.Payment, score int, reasons []string, now time.Time) (catalog.Topic, any)) error {
	tx, err := q.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("resolving review %s: %w", id, err)
	}
	defer tx.Rollback(ctx)
	var record []byte
	var current string
	var score int
	var reasons []string
	err = tx.QueryRow(ctx, `SELECT record, status, score, reason_codes FROM risk_reviews WHERE payment_id = $1 FOR UPDATE`, id).
		Scan(&record, &current, &score, &reasons)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("resolving review %s: %w", id, ErrReviewNotFound)
	}
	if err != nil {
		return fmt.Errorf("resolving review %s: %w", id, err)
	}
	if current != ReviewOpen {
		return fmt.Errorf("resolving review %s: %w (%s)", id, ErrReviewResolved, current)
	}
	var p schemas.Payment
	if err := json.Unmarshal(record, &p); err != nil {
		return fmt.Errorf("decoding held payment %s: %w", id, err)
	}
	now := q.now().UTC()
	topic, value := emit(&p, score, reasons, now)
	b, err := q.codec.Encode(topic, value)
	if err != nil {
		return fmt.Errorf("encoding %s for %s: %w", id, topic, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE risk_reviews SET status = $2, resolution_code = $3, resolved_at = $4 WHERE payment_id = $1`,
		id, status, code, now); err != nil {
		return fmt.Errorf("resolving review %s: %w", id, err)
	}
	key := p.PayerWallet
	if key == "" {
		key = p.PayeeWallet
	}
	if err := q.producer.ProduceSync(ctx, &kgo.Record{Topic: string(topic), Key: []byte(key), Value: b}).FirstErr(); err != nil {
		return fmt.Errorf("emitting %s to %s: %w", id, topic, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("resolving review %s after emitting it (approving again re-emits the same payment): %w", id, err)
	}
	return nil
}
