package ingress

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ingress/client"
	"github.com/paystream/paystream/internal/testenv"
)

// requestHash is the hash the ingress keeps of a request under its key.
func requestHash(method, uri, body string) []byte {
	h := sha256.New()
	h.Write([]byte(method + "\n" + uri + "\n" + body))
	return h.Sum(nil)
}

// A payment's key lives in its status row and other routes' keys in idempotency_keys; a
// key is still one key across both: reused for another request on another route, 422.
func TestKeysAreSharedAcrossRoutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, _ := api.channel(t, channels.AllScopes, 0)

	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "pay-first", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, "POST", "/v1/webhooks", []byte(goodHook), "pay-first", nil); client.Code(err) != "idempotency_key_reused" {
		t.Errorf("a payment's key on a webhook: %v, want idempotency_key_reused", err)
	}
	if _, err := c.Do(ctx, "POST", "/v1/webhooks", []byte(goodHook), "hook-first", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "hook-first", nil); client.Code(err) != "idempotency_key_reused" {
		t.Errorf("a webhook's key on a payment: %v, want idempotency_key_reused", err)
	}
	var hooks, rows int
	if err := api.db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM webhooks), (SELECT count(*) FROM payment_status)`).
		Scan(&hooks, &rows); err != nil || hooks != 1 || rows != 1 {
		t.Errorf("%d webhooks and %d status rows (%v), want 1 and 1", hooks, rows, err)
	}
	if recs := api.requested(t); len(recs) != 1 {
		t.Errorf("%d records on payments.requested, want 1", len(recs))
	}
}

// A payment Kafka would not take answers 503 and lets its key go: the retry, even with
// a corrected body, is a new request, and the status row shows what it asked for.
func TestFailedPaymentLetsItsKeyGo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	_, ch := api.channel(t, channels.AllScopes, 0)

	// A second ingress on the same database whose producer reaches no broker.
	dead, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.RecordDeliveryTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dead.Close)
	s, err := NewServer(Config{Pool: api.db.Pool, Ledger: api.ledger, Subsidiary: "TEST", Channels: api.store,
		Producer: dead, Serde: api.serde, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	failing := client.New(client.Credentials{BaseURL: hs.URL, KeyID: ch.KeyID, Secret: ch.Secret})
	failing.MaxAttempts = 1

	if _, err := failing.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "key-503", nil); client.Code(err) != "unavailable" {
		t.Fatalf("without Kafka: %v, want 503 unavailable", err)
	}
	id := paymentID(ch.KeyID, "key-503")
	var held bool
	if err := api.db.Pool.QueryRow(ctx, `SELECT request_hash IS NOT NULL FROM payment_status WHERE payment_id = $1`, id).Scan(&held); err != nil || held {
		t.Fatalf("after the 503 the status row holds the key: %v (%v)", held, err)
	}

	c := client.New(client.Credentials{BaseURL: api.url, KeyID: ch.KeyID, Secret: ch.Secret})
	c.MaxAttempts = 1
	corrected := strings.Replace(transferBody, `"10.00"`, `"12.00"`, 1)
	var acc PaymentAccepted
	resp, err := c.Do(ctx, "POST", "/v1/payments", []byte(corrected), "key-503", &acc)
	if err != nil || resp.Status != http.StatusAccepted || resp.Replayed || acc.ID != id {
		t.Fatalf("retry: %+v %+v (%v), want a new 202 for %s", resp, acc, err, id)
	}
	// Claimed again after a release: an outcome found later may be the first request's,
	// so it does not stand for this one's answer.
	var derived bool
	if err := api.db.Pool.QueryRow(ctx, `SELECT answer_derived FROM payment_status WHERE payment_id = $1`, id).Scan(&derived); err != nil || derived {
		t.Errorf("a key claimed again after a release: answer_derived %v (%v), want false", derived, err)
	}
	var got Payment
	if _, err := c.Do(ctx, "GET", "/v1/payments/"+id, nil, "", &got); err != nil || got.Amount != "12.00" || got.Status != "accepted" {
		t.Errorf("status after the retry: %+v (%v), want 12.00 accepted", got, err)
	}
	recs := api.requested(t)
	if len(recs) != 1 || api.decodePayment(t, recs[0]).Amount.Amount.String() != "12" {
		t.Errorf("%d records on payments.requested, want the retry's alone", len(recs))
	}
	if again := replayedPaymentOf(t, c, "key-503", corrected); again.ID != id {
		t.Errorf("replayed %s, want %s", again.ID, id)
	}
}

// A payment key whose request died unanswered is taken over after abandonAfter, as a key
// in idempotency_keys is (TestAbandonedKeyIsTakenOver).
func TestAbandonedPaymentKeyIsTakenOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, ch := api.channel(t, channels.AllScopes, 0)
	id := paymentID(ch.KeyID, "key-died")
	claim := func(age string) {
		t.Helper()
		if _, err := api.db.Pool.Exec(ctx, `INSERT INTO payment_status (payment_id, channel_key, type, amount, currency,
			    source_wallet_id, destination_wallet_id, request_hash, claimed_at)
			VALUES ($1, $2, 'transfer', 10, 'USD', 'wal_1', 'wal_2', $3, now() - $4::interval)
			ON CONFLICT (payment_id) DO UPDATE SET claimed_at = excluded.claimed_at`,
			id, ch.KeyID, requestHash("POST", "/v1/payments", transferBody), age); err != nil {
			t.Fatal(err)
		}
	}

	// Claimed a moment ago: the retry waits for the answer (up to inFlightWait; this
	// client gives up sooner).
	claim("1 second")
	short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	if resp, err := c.Do(short, "POST", "/v1/payments", []byte(transferBody), "key-died", nil); err == nil || short.Err() == nil {
		t.Fatalf("a key in flight: %+v (%v), want the retry still waiting", resp, err)
	}
	if recs := api.requested(t); len(recs) != 0 {
		t.Fatalf("%d records while the key was in flight, want 0", len(recs))
	}

	// Claimed two minutes ago: taken over.
	claim("2 minutes")
	var acc PaymentAccepted
	resp, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "key-died", &acc)
	if err != nil || resp.Status != http.StatusAccepted || resp.Replayed || acc.ID != id {
		t.Fatalf("taking over: %+v %+v (%v)", resp, acc, err)
	}
	if recs := api.requested(t); len(recs) != 1 || api.decodePayment(t, recs[0]).PaymentID != id {
		t.Errorf("%d records after the takeover, want 1 of %s", len(recs), id)
	}
	if again := replayedPayment(t, c, "key-died"); again.ID != id {
		t.Errorf("replayed %s, want %s", again.ID, id)
	}
}

// The hourly purge drops keys of other routes and answers older than KeyRetention; a
// payment keeps its key in its status row, so another request under it is still refused.
func TestPurgeDropsOldKeysAndAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, ch := api.channel(t, channels.AllScopes, 0)
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "old-payment", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, "POST", "/v1/webhooks", []byte(goodHook), "old-hook", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, "POST", "/v1/webhooks", []byte(strings.Replace(goodHook, "hooks", "hooks2", 1)), "new-hook", nil); err != nil {
		t.Fatal(err)
	}
	replayedPayment(t, c, "old-payment") // its answer is kept
	// The old key's answer is younger than the key, as every answer written before
	// migration 00013 is: it goes with its key all the same.
	if _, err := api.db.Pool.Exec(ctx, `WITH k AS (UPDATE idempotency_keys SET created_at = now() - interval '49 hours' WHERE idem_key = 'old-hook')
		UPDATE idempotency_answers SET created_at = now() - interval '49 hours' WHERE idem_key = 'old-payment'`); err != nil {
		t.Fatal(err)
	}
	n, err := api.server.PurgeIdempotencyKeys(ctx)
	if err != nil || n != 1 {
		t.Fatalf("purged %d keys (%v), want 1", n, err)
	}
	var keys []string
	rows, _ := api.db.Pool.Query(ctx, `SELECT idem_key FROM idempotency_keys UNION ALL SELECT 'answer:' || idem_key FROM idempotency_answers ORDER BY 1`)
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		keys = append(keys, k)
	}
	if strings.Join(keys, " ") != "answer:new-hook new-hook" {
		t.Errorf("left after the purge: %v, want new-hook and its answer", keys)
	}
	// The old webhook key is free again; the payment's is not, for another request.
	if _, err := c.Do(ctx, "POST", "/v1/webhooks", []byte(strings.Replace(goodHook, "hooks", "hooks3", 1)), "old-hook", nil); err != nil {
		t.Errorf("a purged key reused: %v", err)
	}
	other := strings.Replace(transferBody, `"10.00"`, `"11.00"`, 1)
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(other), "old-payment", nil); client.Code(err) != "idempotency_key_reused" {
		t.Errorf("a purged payment key with another request: %v, want idempotency_key_reused", err)
	}
	if recs := api.requested(t); len(recs) != 1 || api.decodePayment(t, recs[0]).PaymentID != paymentID(ch.KeyID, "old-payment") {
		t.Errorf("%d records on payments.requested, want the first payment's alone", len(recs))
	}
}

// The claim probes idempotency_keys by key whatever the table holds, in the generic plan
// its pool keeps and in a custom one.
func TestClaimProbesLegacyKeysByKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	_, ch := api.channel(t, channels.AllScopes, 0)
	if _, err := api.db.Pool.Exec(ctx, `INSERT INTO idempotency_keys (channel_key, idem_key, request_hash)
		SELECT $1, 'k' || g, '\x00' FROM generate_series(1, 20000) g`, ch.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := api.db.Pool.Exec(ctx, `ANALYZE idempotency_keys`); err != nil {
		t.Fatal(err)
	}
	n := 300
	chs, keys, ids, types, amounts, curs, srcs, dsts, refs := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	hashes, created := make([][]byte, n), make([]time.Time, n)
	for i := range n {
		chs[i], keys[i], ids[i], types[i], amounts[i], curs[i] = ch.KeyID, "new"+strconv.Itoa(i), paymentID(ch.KeyID, "new"+strconv.Itoa(i)), "p2p", "1", "USD"
		hashes[i], created[i] = []byte{1}, time.Now()
	}
	args := []any{chs, keys, hashes, ids, types, amounts, curs, srcs, dsts, refs, created, make([]bool, n)}
	for name, plan := range map[string]string{
		"custom":  testenv.Plan(t, api.db.Pool, claimPaymentsSQL, args...),
		"generic": testenv.GenericPlan(t, api.db.Pool, claimPaymentsSQL, args...),
	} {
		if strings.Contains(plan, "Seq Scan") || !strings.Contains(plan, "idempotency_keys_pkey") {
			t.Errorf("%s: keys not probed by key:\n%s", name, plan)
		}
	}
}

// A status row no payment claim wrote (an operation's, or a payment's from before
// migration 00013) keeps its key once idempotency_keys has let it go: a payment under
// that key is refused, and the row is not written over.
func TestStatusRowsOfOtherWritersKeepTheirKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, ch := api.channel(t, channels.AllScopes, 0)
	id := paymentID(ch.KeyID, "old-capture")
	if _, err := api.db.Pool.Exec(ctx, `INSERT INTO payment_status (payment_id, channel_key, type, amount, currency, source_wallet_id, destination_wallet_id)
		VALUES ($1, $2, 'capture', 3, 'USD', 'wal_1', 'wal_2')`, id, ch.KeyID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "old-capture", nil); client.Code(err) != "idempotency_key_reused" {
		t.Fatalf("a payment under an old operation's key: %v, want idempotency_key_reused", err)
	}
	if waited := time.Since(start); waited > inFlightWait/2 {
		t.Errorf("refused after %v: the request looped", waited)
	}
	var got Payment
	if _, err := c.Do(ctx, "GET", "/v1/payments/"+id, nil, "", &got); err != nil || got.Type != "capture" || got.Amount != "3.00" {
		t.Errorf("the operation's row after the refused payment: %+v (%v)", got, err)
	}
	if recs := api.requested(t); len(recs) != 0 {
		t.Errorf("%d records on payments.requested, want none", len(recs))
	}
}

// A payment and a webhook sent at the same moment under one key: one runs, the other is
// refused as the key's reuse (the claims on both tables take the key's advisory lock).
func TestOneKeyOnTwoRoutesAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, _ := api.channel(t, channels.AllScopes, 0)
	const n = 200
	type result struct{ payment, hook error }
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		key := "both-" + strconv.Itoa(i)
		hook := strings.Replace(goodHook, "hooks", "hooks"+strconv.Itoa(i), 1)
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, results[i].payment = c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), key, nil)
		}()
		go func() {
			defer wg.Done()
			_, results[i].hook = c.Do(ctx, "POST", "/v1/webhooks", []byte(hook), key, nil)
		}()
	}
	wg.Wait()
	payments, hooks := 0, 0
	for i, r := range results {
		ok := 0
		for _, err := range []error{r.payment, r.hook} {
			switch {
			case err == nil:
				ok++
			case client.Code(err) != "idempotency_key_reused":
				t.Errorf("key %d: %v", i, err)
			}
		}
		if ok != 1 {
			t.Errorf("key %d: payment %v, webhook %v; want exactly one to run", i, r.payment, r.hook)
		}
		if r.payment == nil {
			payments++
		}
		if r.hook == nil {
			hooks++
		}
	}
	var rows, stored int
	if err := api.db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM payment_status), (SELECT count(*) FROM webhooks)`).Scan(&rows, &stored); err != nil ||
		rows != payments || stored != hooks {
		t.Errorf("%d status rows and %d webhooks (%v), want %d and %d", rows, stored, err, payments, hooks)
	}
	if recs := api.requested(t); len(recs) != payments {
		t.Errorf("%d records on payments.requested, want %d", len(recs), payments)
	}
}
