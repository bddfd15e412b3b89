package banksim

import (
	"bytes"
	"context"
	"io"

	"github.com/paystream/paystream/connectors"
	"github.com/paystream/paystream/schemas"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// Execute sends a connector request to the bank; the idempotency key is the bank's
// request id, so a retry is never executed twice.
func (c *Client) Execute(ctx context.Context, req *schemas.ConnectorRequest) (connectors.Answer, error) {
	resp, err := c.Do(ctx, Request{ID: req.IdempotencyKey, Operation: req.Operation,
		Amount: req.Amount.Amount.String(), Currency: req.Amount.Currency, Account: req.Account})
	if err != nil {
		return connectors.Answer{}, err
	}
	status := connectors.Failed
	if resp.Status == "succeeded" {
		status = connectors.Succeeded
	}
	return connectors.Answer{Status: status, ExternalReference: resp.Reference, ReasonCode: resp.Reason}, nil
}
