package schemas

import (
	"time"

	"github.com/shopspring/decimal"
)

func money(amount, currency string) Money {
	return Money{Amount: decimal.RequireFromString(amount), Currency: currency}
}

var at = time.Date(2026, 11, 23, 14, 5, 6, 123456000, time.UTC)

// newTestPayment is a payment that went through every stage; opts change it.
func newTestPayment(opts ...func(*Payment)) *Payment {
	p := &Payment{
		Meta:      Meta{EventID: "evt-1", PaymentID: "pay-1", Trace: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		CreatedAt: at, Subsidiary: "ps-ke", Channel: "app", IdempotencyKey: "idem-1", Type: "p2p",
		PayerWallet: "wal-payer", PayeeWallet: "wal-payee", Amount: money("1250.5", "KES"),
		Method: "balance", Reference: "rent", Metadata: map[string]string{"device": "ios"},
		Description: "November rent", MCC: "6513", Operation: "capture", TargetPaymentID: "pay-0",
		CaptureMode: "keep_rest", Biller: "kplc", CustomerRef: "A-77", Phone: "+254700000001",
		Validation: &Validation{Result: "accepted", ReasonCodes: []string{}, At: at},
		Risk:       &Risk{Decision: "approve", Score: 120, ReasonCodes: []string{"VELOCITY_OK"}, At: at},
		Fees:       []FeeLine{{Code: "p2p_fee", Amount: money("10", "KES"), VATRate: "0.16", VAT: money("1.6", "KES")}},
		Rewards:    []Reward{{Campaign: "nov", Kind: "points_earned", Amount: money("0", "KES"), Points: 12}},
		Route:      &Route{Kind: "internal"},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func newTestOutcome() *PaymentOutcome {
	return &PaymentOutcome{
		Meta:       Meta{EventID: "evt-2", PaymentID: "pay-1", Trace: "t"},
		OccurredAt: at, Status: "posted", Stage: "posting", Amount: money("1250.5", "KES"),
		Postings:      []PostingLine{{TransferID: "tr-1", Code: "principal", DebitAccount: "a1", CreditAccount: "a2", Amount: money("1250.5", "KES")}},
		BalancesAfter: []BalanceAfter{{Wallet: "wal-payer", Account: "main", Balance: money("-0.01", "KES"), Available: money("0", "KES")}},
		Type:          "p2p",
		Fees:          []OutcomeFee{{Code: "p2p_fee", Amount: money("10", "KES"), VAT: money("1.6", "KES")}},
		Rewards:       []Reward{{Campaign: "nov", Kind: "points_earned", Amount: money("0", "KES"), Points: 12}},
		Decisions:     []Decision{{Stage: "risk", Decision: "approve", Reasons: []string{}}, {Stage: "posting", Decision: "posted", Reasons: []string{}}},
	}
}

func newTestConnectorRequest() *ConnectorRequest {
	return &ConnectorRequest{Meta: Meta{EventID: "evt-3", PaymentID: "pay-1"}, CreatedAt: at,
		Connector: "bank-x", Operation: "payout", IdempotencyKey: "pay-1/payout", Amount: money("99.99", "EUR"),
		Account: "DE89370400440532013000", Details: map[string]string{"bic": "COBADEFFXXX"}}
}

func newTestConnectorResult() *ConnectorResult {
	m := money("99.99", "EUR")
	return &ConnectorResult{Meta: Meta{EventID: "evt-4", PaymentID: "pay-1"}, OccurredAt: at,
		RequestEventID: "evt-3", Connector: "bank-x", Operation: "payout", Status: "succeeded",
		ExternalReference: "BX-77", Amount: &m}
}

func newTestStatementLine() *StatementLine {
	return &StatementLine{Meta: Meta{EventID: "evt-5"}, Source: "bank-x", FileID: "camt053-2026-11-23",
		LineID: "17", Account: "DE89370400440532013000", BookedAt: at,
		ValueDate: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), Direction: "debit",
		Amount: money("99.99", "EUR"), Reference: "pay-1"}
}

func newTestReconResult() *ReconResult {
	e, a := money("99.99", "EUR"), money("99.98", "EUR")
	return &ReconResult{Meta: Meta{EventID: "evt-6", PaymentID: "pay-1"}, OccurredAt: at,
		Status: "amount_mismatch", StatementLineIDs: []string{"camt053-2026-11-23/17"},
		TransferIDs: []string{"tr-9"}, Expected: &e, Actual: &a, Note: "one cent short"}
}
