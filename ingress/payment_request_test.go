package ingress

import (
	"strings"
	"testing"
)

var testExponents = map[string]int32{"USD": 2, "JPY": 0, "BHD": 3}

func exponentOf(c string) (int32, bool) { e, ok := testExponents[c]; return e, ok }

// newTestPayment is a valid transfer; opts change it.
func newTestPayment(opts ...func(*PaymentRequest)) PaymentRequest {
	p := PaymentRequest{Type: TypeTransfer, Amount: "10.00", Currency: "USD",
		SourceWalletID: "wal_1", DestinationWalletID: "wal_2", Reference: "order-42"}
	for _, o := range opts {
		o(&p)
	}
	return p
}

func TestPaymentRequestValidation(t *testing.T) {
	tests := []struct {
		name      string
		change    func(*PaymentRequest)
		wantField string // "" = valid
		wantCode  string
	}{
		{"valid transfer", func(*PaymentRequest) {}, "", ""},
		{"valid yen", func(p *PaymentRequest) { p.Currency, p.Amount = "JPY", "1500" }, "", ""},
		{"valid dinar", func(p *PaymentRequest) { p.Currency, p.Amount = "BHD", "1.234" }, "", ""},
		{"trailing zeros are exact", func(p *PaymentRequest) { p.Amount = "10.5000" }, "", ""},
		{"topup", func(p *PaymentRequest) { p.Type, p.SourceWalletID = TypeTopUp, "" }, "", ""},
		{"bill", func(p *PaymentRequest) {
			p.Type, p.DestinationWalletID, p.Biller, p.CustomerRef = TypeBillPayment, "", "EVN", "PE123"
		}, "", ""},
		{"airtime", func(p *PaymentRequest) { p.Type, p.DestinationWalletID, p.Phone = TypeAirtimeTopUp, "", "+84901234567" }, "", ""},
		{"missing type", func(p *PaymentRequest) { p.Type = "" }, "type", "required"},
		{"unknown type", func(p *PaymentRequest) { p.Type = "gift" }, "type", "unknown_type"},
		{"missing amount", func(p *PaymentRequest) { p.Amount = "" }, "amount", "required"},
		{"zero", func(p *PaymentRequest) { p.Amount = "0.00" }, "amount", "not_positive"},
		{"negative", func(p *PaymentRequest) { p.Amount = "-1.00" }, "amount", "not_positive"},
		{"too many decimals", func(p *PaymentRequest) { p.Amount = "10.001" }, "amount", "too_many_decimals"},
		{"yen with cents", func(p *PaymentRequest) { p.Currency, p.Amount = "JPY", "10.5" }, "amount", "too_many_decimals"},
		{"exponent form", func(p *PaymentRequest) { p.Amount = "1e3" }, "amount", "invalid_amount"},
		{"words", func(p *PaymentRequest) { p.Amount = "ten" }, "amount", "invalid_amount"},
		{"leading dot", func(p *PaymentRequest) { p.Amount = ".5" }, "amount", "invalid_amount"},
		{"huge", func(p *PaymentRequest) { p.Amount = Money(strings.Repeat("9", 19)) }, "amount", "too_large"},
		{"lowercase currency", func(p *PaymentRequest) { p.Currency = "usd" }, "currency", "invalid_currency"},
		{"unknown currency", func(p *PaymentRequest) { p.Currency = "XXX" }, "currency", "unknown_currency"},
		{"no source", func(p *PaymentRequest) { p.SourceWalletID = "" }, "source_wallet_id", "required"},
		{"bad wallet id", func(p *PaymentRequest) { p.SourceWalletID = "wal_x" }, "source_wallet_id", "invalid_id"},
		{"same wallet", func(p *PaymentRequest) { p.DestinationWalletID = "wal_1" }, "destination_wallet_id", "same_wallet"},
		{"topup with source", func(p *PaymentRequest) { p.Type = TypeTopUp }, "source_wallet_id", "not_allowed"},
		{"withdrawal with destination", func(p *PaymentRequest) { p.Type = TypeWithdrawal }, "destination_wallet_id", "not_allowed"},
		{"unknown method", func(p *PaymentRequest) { p.Type, p.SourceWalletID, p.Method = TypeTopUp, "", "cash" }, "method", "unknown_method"},
		{"method on transfer", func(p *PaymentRequest) { p.Method = "bank" }, "method", "not_allowed"},
		{"bill without biller", func(p *PaymentRequest) { p.Type, p.DestinationWalletID, p.CustomerRef = TypeBillPayment, "", "x" }, "biller", "required"},
		{"biller on transfer", func(p *PaymentRequest) { p.Biller = "EVN" }, "biller", "not_allowed"},
		{"bad phone", func(p *PaymentRequest) { p.Type, p.DestinationWalletID, p.Phone = TypeAirtimeTopUp, "", "0901234567" }, "phone", "invalid_phone"},
		{"refund without original", func(p *PaymentRequest) { p.Type = TypeRefund }, "original_payment_id", "required"},
		{"bad mcc", func(p *PaymentRequest) { p.MCC = "12" }, "mcc", "invalid_mcc"},
		{"long reference", func(p *PaymentRequest) { p.Reference = strings.Repeat("r", 129) }, "reference", "too_long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, prob := newTestPayment(tt.change).validate(exponentOf)
			if tt.wantField == "" {
				if prob != nil {
					t.Fatalf("valid request refused: %+v", prob.Errors)
				}
				if !got.Value.IsPositive() {
					t.Errorf("parsed amount %s", got.Value)
				}
				return
			}
			if prob == nil {
				t.Fatalf("accepted; want %s %s", tt.wantField, tt.wantCode)
			}
			if prob.Status != 422 {
				t.Errorf("status %d, want 422", prob.Status)
			}
			for _, e := range prob.Errors {
				if e.Field == tt.wantField && e.Code == tt.wantCode {
					return
				}
			}
			t.Errorf("errors %+v lack %s/%s", prob.Errors, tt.wantField, tt.wantCode)
		})
	}
}

func TestTopUpMethodDefaultsToBank(t *testing.T) {
	p, prob := newTestPayment(func(p *PaymentRequest) { p.Type, p.SourceWalletID = TypeTopUp, "" }).validate(exponentOf)
	if prob != nil || p.Method != "bank" {
		t.Errorf("method %q, problem %v; want bank", p.Method, prob)
	}
}

func TestMoneyAsJSONNumberIsRefused(t *testing.T) {
	var req PaymentRequest
	prob := decodeStrict([]byte(`{"type":"transfer","amount":10.5,"currency":"USD"}`), &req)
	if prob == nil || prob.Code != "invalid_amount" || len(prob.Errors) != 1 || prob.Errors[0].Code != "money_not_string" {
		t.Fatalf("number amount: %+v", prob)
	}
	if prob := decodeStrict([]byte(`{"type":"transfer","amount":"10.50","currency":"USD"}`), &req); prob != nil || req.Amount != "10.50" {
		t.Errorf("string amount: %+v %q", prob, req.Amount)
	}
}
