// Package conformance is the test suite every connector passes: run it from the
// connector's tests with a fresh connector and a way to make the counterparty refuse.
package conformance

import (
	"context"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/connectors"
	"github.com/paystream/paystream/schemas"
)

// Subject is a connector under test. Refused is an amount its counterparty declines.
type Subject struct {
	Connector connectors.Connector
	Refused   decimal.Decimal
	Currency  string
}

func request(key, op, amount, currency string) *schemas.ConnectorRequest {
	return &schemas.ConnectorRequest{Meta: schemas.Meta{EventID: "e-" + key, PaymentID: "pay-" + key},
		Operation: op, IdempotencyKey: key, Account: "wal_1",
		Amount: schemas.Money{Amount: decimal.RequireFromString(amount), Currency: currency}}
}

// Run checks that the connector answers both operations, refuses what its counterparty
// refuses, and is idempotent: a retried request gets the first answer, never a second
// execution with another result.
func Run(t *testing.T, s Subject) {
	ctx := context.Background()
	t.Run("succeeds", func(t *testing.T) {
		for _, op := range []string{connectors.OpCollect, connectors.OpPayout} {
			a, err := s.Connector.Execute(ctx, request("ok-"+op, op, "10.00", s.Currency))
			if err != nil || a.Status != connectors.Succeeded || a.ExternalReference == "" {
				t.Errorf("%s: %+v %v, want succeeded with a reference", op, a, err)
			}
		}
	})
	t.Run("refuses", func(t *testing.T) {
		a, err := s.Connector.Execute(ctx, request("no", connectors.OpPayout, s.Refused.String(), s.Currency))
		if err != nil || a.Status != connectors.Failed || a.ReasonCode == "" {
			t.Errorf("%+v %v, want failed with a reason", a, err)
		}
	})
	t.Run("idempotent", func(t *testing.T) {
		first, err := s.Connector.Execute(ctx, request("again", connectors.OpPayout, "5.00", s.Currency))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			again, err := s.Connector.Execute(ctx, request("again", connectors.OpPayout, "5.00", s.Currency))
			if err != nil || again != first {
				t.Errorf("retry answered %+v %v, first %+v", again, err, first)
			}
		}
	})
}
