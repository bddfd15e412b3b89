package ingress

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/ingress/problem"
	"github.com/paystream/paystream/schemas"
)

// Operations on an earlier payment.
const (
	OpCapture = "capture"
	OpVoid    = "void"
	OpAdjust  = "adjust"
	OpRefund  = "refund"
)

// operationRequest is the body of capture, void, adjust and refund.
type operationRequest struct {
	Amount Money  `json:"amount,omitempty"`
	Mode   string `json:"mode,omitempty"`
}

// operate serves POST /v1/payments/{id}/{op}: it becomes a record on payments.requested,
// keyed by the wallet of the original payment's payer, like the payment it acts on.
func (s *Server) operate(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req operationRequest
		if !readStrict(w, r, &req) {
			return
		}
		wait, p := preferWait(r.Header.Get("Prefer"))
		if p != nil {
			problem.Write(w, p)
			return
		}
		ch := channelFrom(r.Context())
		targetID := chi.URLParam(r, "id")
		target, err := s.loadPayment(r.Context(), targetID, ch.KeyID)
		if errors.Is(err, pgx.ErrNoRows) {
			problem.Write(w, problem.New(http.StatusNotFound, "payment_not_found", "no payment "+targetID))
			return
		}
		if err != nil {
			s.unavailable(w, "reading payment", err)
			return
		}
		if p := checkOperation(op, target, req); p != nil {
			problem.Write(w, p)
			return
		}
		var amount decimal.Decimal
		if req.Amount != "" {
			pp, prob := PaymentRequest{Type: TypeTransfer, Amount: req.Amount, Currency: target.Currency,
				SourceWalletID: "wal_1", DestinationWalletID: "wal_2"}.validate(s.currencyExponent)
			if prob != nil {
				problem.Write(w, prob)
				return
			}
			amount = pp.Value
		} else {
			amount, _ = decimal.NewFromString(target.Amount)
		}
		if op == OpCapture && req.Mode == "" {
			req.Mode = "release_rest"
		}
		idem := r.Header.Get(HeaderIdempotencyKey)
		rec := &schemas.Payment{
			Meta:            schemas.Meta{EventID: newEventID(), PaymentID: paymentID(ch.KeyID, idem), Trace: r.Header.Get("Traceparent")},
			CreatedAt:       s.now().UTC(),
			Subsidiary:      s.subsidiary,
			Channel:         ch.KeyID,
			IdempotencyKey:  idem,
			Type:            target.Type,
			PayerWallet:     target.SourceWalletID,
			PayeeWallet:     target.DestinationWalletID,
			Amount:          schemas.Money{Amount: amount, Currency: target.Currency},
			Operation:       op,
			TargetPaymentID: targetID,
			CaptureMode:     req.Mode,
		}
		if op == OpRefund { // a refund moves money back: the payee pays
			rec.PayerWallet, rec.PayeeWallet = target.DestinationWalletID, target.SourceWalletID
		}
		if err := s.accept(context.WithoutCancel(r.Context()), rec); err != nil { // see paymentRoute
			s.unavailable(w, "accepting "+op, err)
			return
		}
		s.answerAccepted(w, r, rec.PaymentID, wait)
	}
}

// checkOperation refuses an operation the target payment cannot take. The ledger checks
// amounts against what the hold or capture allows; this checks the shape.
func checkOperation(op string, target Payment, req operationRequest) *problem.Problem {
	bad := func(code, detail string) *problem.Problem {
		return problem.New(http.StatusUnprocessableEntity, code, detail)
	}
	switch op {
	case OpCapture, OpVoid, OpAdjust:
		if target.Type != TypeHold {
			return bad("not_a_hold", "only a hold can be "+op+"d; "+target.ID+" is a "+target.Type)
		}
	case OpRefund:
		if target.Type == TypeHold || target.Type == TypeTopUp || target.Type == TypeWithdrawal {
			return bad("not_refundable", "a "+target.Type+" cannot be refunded")
		}
	}
	if target.Status == "rejected" || target.Status == "failed" {
		return bad("payment_not_successful", target.ID+" did not succeed")
	}
	switch op {
	case OpVoid:
		if req.Amount != "" || req.Mode != "" {
			return bad("invalid_operation", "void takes an empty body")
		}
	case OpCapture:
		if req.Amount == "" {
			return bad("invalid_operation", "capture needs an amount").With(problem.FieldError{Field: "amount", Code: "required", Message: "amount is required"})
		}
		if req.Mode != "" && req.Mode != "release_rest" && req.Mode != "keep_rest" {
			return bad("invalid_operation", "mode is release_rest or keep_rest").With(problem.FieldError{Field: "mode", Code: "unknown_mode", Message: "mode is release_rest or keep_rest"})
		}
	case OpAdjust, OpRefund:
		if req.Amount == "" {
			return bad("invalid_operation", op+" needs an amount").With(problem.FieldError{Field: "amount", Code: "required", Message: "amount is required"})
		}
		if req.Mode != "" {
			return bad("invalid_operation", "mode is only for capture")
		}
	}
	return nil
}

func (s *Server) currencyExponent(c string) (int32, bool) {
	cur, ok := s.ledger.Currency(c)
	return cur.Exponent, ok && !cur.IsPoints
}
