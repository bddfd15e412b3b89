package ingress

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/ingress/problem"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// MaxWait bounds Prefer: wait=N.
const MaxWait = 30 * time.Second

// paymentID derives a payment's id from its channel and Idempotency-Key. The same request
// retried after any failure gets the same id, so even if the idempotency record were lost
// the ledger, which posts an id at most once, could not post it twice.
func paymentID(channelKey, idemKey string) string {
	sum := sha256.Sum256([]byte(channelKey + "\x00" + idemKey))
	return "pay_" + hex.EncodeToString(sum[:16])
}

func newEventID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// PaymentAccepted is the 202 answer.
type PaymentAccepted struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// paymentRoute serves POST /v1/payments. The request is checked before its
// Idempotency-Key is claimed, so the key and the payment's status row are written in one
// statement, one commit: a refused body keeps nothing and may be corrected under the same
// key.
func (s *Server) paymentRoute() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := keyProblem(r.Header.Get(HeaderIdempotencyKey)); p != nil {
			problem.Write(w, p)
			return
		}
		rec, p := s.paymentRecord(r)
		if p != nil {
			problem.Write(w, p)
			return
		}
		wait, p := preferWait(r.Header.Get("Prefer"))
		if p != nil {
			problem.Write(w, p)
			return
		}
		// A request that does not wait for its outcome answers 202, which the payment's
		// outcome can stand for (answerDelay); the claim records that in the status row.
		claim := func(ctx context.Context, ch, key string, hash []byte) (bool, bool, error) {
			defer s.metrics.step(stepClaim, time.Now())
			res, err := s.claims.claim(ctx, ch, key, hash, rec, wait == 0)
			return res.claimed, res.derived, err
		}
		produce := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			// Not cut short by a client that hangs up: the record may be on its way, and
			// a server error lets the key go.
			err := s.produce(context.WithoutCancel(r.Context()), rec)
			s.metrics.step(stepProduce, start)
			if err != nil {
				s.unavailable(w, "accepting payment", err)
				return
			}
			s.answerAccepted(w, r, rec.PaymentID, wait)
		})
		s.idempotency(produce, true, claim).ServeHTTP(w, r)
	})
}

// paymentRecord reads and checks a payment request and builds its record.
func (s *Server) paymentRecord(r *http.Request) (*schemas.Payment, *problem.Problem) {
	var req PaymentRequest
	if p := decodeStrict(bodyOf(r), &req); p != nil {
		return nil, p
	}
	parsed, p := req.validate(s.currencyExponent)
	if p != nil {
		return nil, p
	}
	ch := channelFrom(r.Context())
	id := paymentID(ch.KeyID, r.Header.Get(HeaderIdempotencyKey))
	rec := &schemas.Payment{
		Meta:           schemas.Meta{EventID: newEventID(), PaymentID: id, Trace: r.Header.Get("Traceparent")},
		CreatedAt:      s.now().UTC(),
		Subsidiary:     s.subsidiary,
		Channel:        ch.KeyID,
		IdempotencyKey: r.Header.Get(HeaderIdempotencyKey),
		Type:           parsed.Type,
		PayerWallet:    parsed.SourceWalletID,
		PayeeWallet:    parsed.DestinationWalletID,
		Amount:         schemas.Money{Amount: parsed.Value, Currency: parsed.Currency},
		Method:         parsed.Method,
		Reference:      parsed.Reference,
		Metadata:       parsed.Metadata,
		Description:    parsed.Description,
		MCC:            parsed.MCC,
		Biller:         parsed.Biller,
		CustomerRef:    parsed.CustomerRef,
		Phone:          parsed.Phone,
	}
	if parsed.Type == TypeRefund {
		rec.TargetPaymentID = parsed.OriginalPaymentID
	}
	return rec, nil
}

// answerAccepted answers 202 with the payment id, or 200 with the payment when it ends
// within the channel's Prefer: wait.
func (s *Server) answerAccepted(w http.ResponseWriter, r *http.Request, id string, wait time.Duration) {
	if wait > 0 {
		if pay, done, err := s.waitForOutcome(r.Context(), id, wait); err == nil && done {
			writeJSON(w, http.StatusOK, pay)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(acceptedAnswer(id))
}

// accept records the payment as accepted and writes it to payments.requested, returning
// once Kafka has it (acks from all in-sync replicas, idempotent producer).
func (s *Server) accept(ctx context.Context, rec *schemas.Payment) error {
	// The status row goes first, so the outcome always finds it; a retry after a failed
	// produce finds the row (same id) and produces again.
	if _, err := s.pool.Exec(ctx,
		`INSERT INTO payment_status (payment_id, channel_key, type, amount, currency,
		     source_wallet_id, destination_wallet_id, reference, created_at)
		 VALUES ($1, $2, $3, $4, $5, nullif($6, ''), nullif($7, ''), nullif($8, ''), $9)
		 ON CONFLICT (payment_id) DO NOTHING`,
		rec.PaymentID, rec.Channel, statusType(rec), rec.Amount.Amount, rec.Amount.Currency,
		rec.PayerWallet, rec.PayeeWallet, rec.Reference, rec.CreatedAt); err != nil {
		return err
	}
	return s.produce(ctx, rec)
}

// produce writes the payment to payments.requested and returns once Kafka has it.
func (s *Server) produce(ctx context.Context, rec *schemas.Payment) error {
	value, err := s.serde.Encode(catalog.PaymentsRequested, rec)
	if err != nil {
		return err
	}
	key := rec.PayerWallet
	if key == "" { // credit-only payments are keyed by the credited wallet
		key = rec.PayeeWallet
	}
	return s.producer.ProduceSync(ctx, &kgo.Record{
		Topic: string(catalog.PaymentsRequested), Key: []byte(key), Value: value,
	}).FirstErr()
}

// preferWait reads Prefer: wait=N.
func preferWait(h string) (time.Duration, *problem.Problem) {
	for _, part := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || strings.TrimSpace(k) != "wait" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || time.Duration(n)*time.Second > MaxWait {
			return 0, problem.New(http.StatusBadRequest, "invalid_prefer", "Prefer: wait=N takes N from 0 to 30 seconds")
		}
		return time.Duration(n) * time.Second, nil
	}
	return 0, nil
}

// Payment is the API's view of a payment.
type Payment struct {
	ID                  string          `json:"id"`
	Type                string          `json:"type"`
	Status              string          `json:"status"`
	ReasonCode          string          `json:"reason_code,omitempty"`
	Amount              string          `json:"amount"`
	Currency            string          `json:"currency"`
	SourceWalletID      string          `json:"source_wallet_id,omitempty"`
	DestinationWalletID string          `json:"destination_wallet_id,omitempty"`
	Reference           string          `json:"reference,omitempty"`
	Fees                json.RawMessage `json:"fees"`
	Rewards             json.RawMessage `json:"rewards"`
	Decisions           json.RawMessage `json:"decisions"`
	CreatedAt           time.Time       `json:"created_at"`
	CompletedAt         *time.Time      `json:"completed_at,omitempty"`
}

// terminal statuses end a wait: pending_external is not one, the bank has yet to answer.
func terminal(status string) bool {
	return status == "succeeded" || status == "rejected" || status == "failed"
}

func (s *Server) loadPayment(ctx context.Context, id, channelKey string) (Payment, error) {
	var p Payment
	var amount decimal.Decimal
	var src, dst, ref, reason *string
	var detail []byte
	err := s.pool.QueryRow(ctx,
		`SELECT s.payment_id, s.type, coalesce(o.status, 'accepted'), o.reason_code, s.amount, s.currency,
		        s.source_wallet_id, s.destination_wallet_id, s.reference, coalesce(o.detail, '{}'::json),
		        s.created_at, o.completed_at
		 FROM payment_status s LEFT JOIN payment_outcomes o USING (payment_id)
		 WHERE s.payment_id = $1 AND s.channel_key = $2`, id, channelKey).
		Scan(&p.ID, &p.Type, &p.Status, &reason, &amount, &p.Currency, &src, &dst, &ref, &detail, &p.CreatedAt, &p.CompletedAt)
	if err != nil {
		return Payment{}, err
	}
	p.ReasonCode, p.SourceWalletID, p.DestinationWalletID, p.Reference = deref(reason), deref(src), deref(dst), deref(ref)
	s.fill(&p, amount, detail)
	return p, nil
}

// fill completes the API's view of a payment with its amount, in its currency's digits,
// and what its outcome's detail holds (outcomeDetail; empty lists before an outcome).
func (s *Server) fill(p *Payment, amount decimal.Decimal, detail []byte) {
	p.Amount = amount.StringFixed(s.exponent(p.Currency))
	var d struct{ Fees, Rewards, Decisions json.RawMessage }
	_ = json.Unmarshal(detail, &d)
	p.Fees, p.Rewards, p.Decisions = orEmpty(d.Fees), orEmpty(d.Rewards), orEmpty(d.Decisions)
}

func orEmpty(m json.RawMessage) json.RawMessage {
	if len(m) == 0 || string(m) == "null" {
		return json.RawMessage("[]")
	}
	return m
}

func (s *Server) getPayment(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	p, err := s.loadPayment(r.Context(), id, channelFrom(r.Context()).KeyID)
	if errors.Is(err, pgx.ErrNoRows) {
		problem.Write(w, problem.New(http.StatusNotFound, "payment_not_found", "no payment "+id))
		return
	}
	if err != nil {
		s.unavailable(w, "reading payment", err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// waitForOutcome waits until the payment reaches a terminal status or d passes. The
// outcome reader wakes waiters of this process; the poll covers outcomes read by another.
func (s *Server) waitForOutcome(ctx context.Context, id string, d time.Duration) (Payment, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	wake := s.waiters.add(id)
	defer s.waiters.remove(id, wake)
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	for {
		p, err := s.loadPayment(ctx, id, channelFrom(ctx).KeyID)
		if err == nil && terminal(p.Status) {
			return p, true, nil
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return Payment{}, false, err
		}
		select {
		case <-ctx.Done():
			return Payment{}, false, nil
		case <-wake:
		case <-poll.C:
		}
	}
}

// statusType is the type a payment's status row shows: an operation on a hold shows as
// the operation.
func statusType(rec *schemas.Payment) string {
	if rec.Operation != "" {
		return rec.Operation
	}
	return rec.Type
}
