package ingress

import (
	"net/http"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/ingress/problem"
)

// FeeLineView is one fee line of a preview.
type FeeLineView struct {
	Code     string `json:"code"`
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
	VATRate  string `json:"vat_rate"`
	VAT      string `json:"vat"`
}

// previewFees answers POST /v1/fees/preview with the fee lines the payment would pay,
// computed by the fee stage's own code over the same definitions.
func (s *Server) previewFees(w http.ResponseWriter, r *http.Request) {
	rec, p := s.paymentRecord(r)
	if p != nil {
		problem.Write(w, p)
		return
	}
	if s.feePreview == nil {
		problem.Write(w, problem.New(http.StatusServiceUnavailable, "unavailable", "fee preview is not configured on this instance"))
		return
	}
	lines, err := s.feePreview(r.Context(), rec)
	if err != nil {
		s.unavailable(w, "previewing fees", err)
		return
	}
	exp := s.exponent(rec.Amount.Currency)
	out := struct {
		Fees     []FeeLineView `json:"fees"`
		Total    string        `json:"total"`
		Currency string        `json:"currency"`
	}{Fees: []FeeLineView{}, Currency: rec.Amount.Currency}
	total := decimal.Zero
	for _, l := range lines {
		out.Fees = append(out.Fees, FeeLineView{Code: l.Code, Amount: l.Amount.Amount.StringFixed(exp),
			Currency: l.Amount.Currency, VATRate: l.VATRate, VAT: l.VAT.Amount.StringFixed(exp)})
		total = total.Add(l.Amount.Amount).Add(l.VAT.Amount)
	}
	out.Total = total.StringFixed(exp)
	writeJSON(w, http.StatusOK, out)
}
