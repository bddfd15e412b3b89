package ingress

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ingress/client"
)

// FuzzCreatePayment feeds arbitrary bodies to POST /v1/payments: the answer is never a
// 5xx, and a refused body leaves no payment behind (no status row, no Kafka record).
func FuzzCreatePayment(f *testing.F) {
	for _, seed := range []string{
		transferBody,
		`{"type":"topup","amount":"5","currency":"JPY","destination_wallet_id":"wal_9"}`,
		`{"type":"transfer","amount":10.5,"currency":"USD"}`,
		`{"type":"transfer","amount":"1e9","currency":"USD","source_wallet_id":"wal_1","destination_wallet_id":"wal_2"}`,
		`{"type":"hold","amount":"-1","currency":"usd"}`,
		`{"type":"transfer","type":"topup"}`,
		`{"metadata":{"a":{"b":[1,2,{"c":null}]}}}`,
		`[]`, `null`, `"x"`, `{`, ``, "\x00\xff", `{"amount":"` + string(make([]byte, 300)) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	api := newTestAPI(f)
	c, _ := api.channel(f, channels.AllScopes, 0)
	ctx := context.Background()
	accepted, n := 0, 0
	f.Fuzz(func(t *testing.T, body []byte) {
		n++
		key := fmt.Sprintf("fuzz-%d", n)
		resp, err := c.Do(ctx, "POST", "/v1/payments", body, key, nil)
		var e *client.Error
		switch {
		case err == nil && resp.Status == http.StatusAccepted:
			accepted++
			return
		case err == nil:
			t.Fatalf("unexpected status %d", resp.Status)
		case !errors.As(err, &e):
			t.Fatalf("transport error: %v", err)
		case e.Status >= 500:
			t.Fatalf("body %q answered %d: %v", body, e.Status, err)
		}
		var rows int
		if err := api.db.Pool.QueryRow(ctx, `SELECT count(*) FROM payment_status WHERE payment_id = $1`,
			paymentID(c.KeyID(), key)).Scan(&rows); err != nil || rows != 0 {
			t.Fatalf("refused body %q left %d status rows (%v)", body, rows, err)
		}
	})
	if got := len(api.requested(f)); got != accepted {
		f.Errorf("%d records on payments.requested for %d accepted payments", got, accepted)
	}
}
