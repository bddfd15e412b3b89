package ingress

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ingress/client"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// requested reads every record of payments.requested, up to the end offsets it finds
// first: the ingress writes without transactions, so they are all readable at once.
func (a *testAPI) requested(t testing.TB) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := string(catalog.PaymentsRequested)
	ends, err := kadm.NewClient(a.kafka.Client(t)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl := a.kafka.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: still waiting for partitions %v", topic, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

func (a *testAPI) decodePayment(t testing.TB, r *kgo.Record) *schemas.Payment {
	t.Helper()
	v, err := a.serde.Decode(catalog.PaymentsRequested, r.Value)
	if err != nil {
		t.Fatal(err)
	}
	return v.(*schemas.Payment)
}

const transferBody = `{"type":"transfer","amount":"10.00","currency":"USD","source_wallet_id":"wal_1","destination_wallet_id":"wal_2","reference":"order-42","description":"dinner","metadata":{"table":"7"}}`

func TestPaymentIsAcceptedOnceKafkaHasIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, ch := api.channel(t, channels.AllScopes, 0)

	var acc PaymentAccepted
	resp, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "order-42-try", &acc)
	if err != nil || resp.Status != http.StatusAccepted || acc.Status != "accepted" || !strings.HasPrefix(acc.ID, "pay_") {
		t.Fatalf("POST: %+v %+v %v", resp, acc, err)
	}
	var again PaymentAccepted
	if resp, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "order-42-try", &again); err != nil || again.ID != acc.ID || !resp.Replayed {
		t.Errorf("retry: %+v %v; want the same id %s, replayed", again, err, acc.ID)
	}
	// Refused bodies never reach Kafka.
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(strings.Replace(transferBody, `"10.00"`, `"10.001"`, 1)), "", nil); client.Code(err) != "invalid_amount" {
		t.Errorf("3 decimals in USD: %v", err)
	}

	recs := api.requested(t)
	if len(recs) != 1 {
		t.Fatalf("%d records on payments.requested, want 1", len(recs))
	}
	if string(recs[0].Key) != "wal_1" {
		t.Errorf("key %q, want the payer's wallet", recs[0].Key)
	}
	p := api.decodePayment(t, recs[0])
	if p.PaymentID != acc.ID || p.Type != "transfer" || !p.Amount.Amount.Equal(decimal.RequireFromString("10")) ||
		p.Amount.Currency != "USD" || p.PayeeWallet != "wal_2" || p.Channel != ch.KeyID || p.Description != "dinner" ||
		p.Metadata["table"] != "7" || p.Subsidiary != "TEST" || p.IdempotencyKey != "order-42-try" {
		t.Errorf("record %+v", p)
	}

	var got Payment
	if _, err := c.Do(ctx, "GET", "/v1/payments/"+acc.ID, nil, "", &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != "accepted" || got.Amount != "10.00" || got.SourceWalletID != "wal_1" || string(got.Fees) != "[]" {
		t.Errorf("status %+v", got)
	}
	other, _ := api.channel(t, channels.AllScopes, 0)
	if _, err := other.Do(ctx, "GET", "/v1/payments/"+acc.ID, nil, "", nil); client.Code(err) != "payment_not_found" {
		t.Errorf("another channel reading the payment: %v", err)
	}
}

func TestTopUpIsKeyedByTheCreditedWallet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, _ := api.channel(t, channels.AllScopes, 0)
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(`{"type":"topup","amount":"5","currency":"JPY","destination_wallet_id":"wal_9"}`), "", nil); err != nil {
		t.Fatal(err)
	}
	recs := api.requested(t)
	if len(recs) != 1 || string(recs[0].Key) != "wal_9" || api.decodePayment(t, recs[0]).Method != "bank" {
		t.Errorf("top-up records %v", recs)
	}
}

func outcome(id, status, reason string) *schemas.PaymentOutcome {
	return &schemas.PaymentOutcome{
		Meta:       schemas.Meta{EventID: newEventID(), PaymentID: id},
		OccurredAt: time.Now().UTC(), Status: status, Stage: "posting", ReasonCode: reason, Type: "transfer",
		Amount:    schemas.Money{Amount: decimal.RequireFromString("10"), Currency: "USD"},
		Fees:      []schemas.OutcomeFee{{Code: "p2p_fee", Amount: schemas.Money{Amount: decimal.RequireFromString("0.5"), Currency: "USD"}, VAT: schemas.Money{Amount: decimal.RequireFromString("0.05"), Currency: "USD"}}},
		Decisions: []schemas.Decision{{Stage: "risk", Decision: "approve"}, {Stage: "posting", Decision: status}},
	}
}

func TestOutcomesCompleteThePaymentAndQueueWebhooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, ch := api.channel(t, channels.AllScopes, 0)
	if _, err := c.Do(ctx, "POST", "/v1/webhooks", []byte(`{"url":"https://shop.example/h","event_types":["payment.succeeded"]}`), "", nil); err != nil {
		t.Fatal(err)
	}
	var acc PaymentAccepted
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "", &acc); err != nil {
		t.Fatal(err)
	}
	posted := outcome(acc.ID, "posted", "")
	for range 2 { // the same outcome read twice
		if err := api.server.ApplyOutcomes(ctx, []*schemas.PaymentOutcome{posted}); err != nil {
			t.Fatal(err)
		}
	}
	// A stale outcome read late does not move a final status back.
	if err := api.server.ApplyOutcomes(ctx, []*schemas.PaymentOutcome{outcome(acc.ID, "pending", "")}); err != nil {
		t.Fatal(err)
	}
	var got Payment
	if _, err := c.Do(ctx, "GET", "/v1/payments/"+acc.ID, nil, "", &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != "succeeded" || got.CompletedAt == nil ||
		string(got.Fees) != `[{"code":"p2p_fee","amount":"0.50","currency":"USD","vat":"0.05"}]` ||
		!strings.Contains(string(got.Decisions), `"stage":"risk","decision":"approve"`) {
		t.Errorf("after outcome: %+v fees %s decisions %s", got, got.Fees, got.Decisions)
	}
	var n int
	var payload string
	if err := api.db.Pool.QueryRow(ctx, `SELECT count(*), max(convert_from(d.payload, 'UTF8')) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
		WHERE w.channel_key = $1 AND d.event_type = 'payment.succeeded'`, ch.KeyID).Scan(&n, &payload); err != nil || n != 1 {
		t.Errorf("%d webhook deliveries queued (%v), want 1", n, err)
	}
	for _, want := range []string{`"status":"succeeded"`, `"amount":"`, `"fees":[{"code":"p2p_fee","amount":"0.50"`, `"decisions":[{"stage":"risk"`} {
		if !strings.Contains(payload, want) {
			t.Errorf("webhook payload lacks %s: %s", want, payload)
		}
	}
	// The event shows the payment as GET does, to the microsecond of its completion.
	var event struct{ Payment Payment }
	if err := json.Unmarshal([]byte(payload), &event); err != nil {
		t.Fatal(err)
	}
	hooked, _ := json.Marshal(event.Payment)
	read, _ := json.Marshal(got)
	if string(hooked) != string(read) {
		t.Errorf("the webhook's payment differs from GET's:\n%s\n%s", hooked, read)
	}

	// A channel without webhooks gets its status and no delivery.
	other, otherCh := api.channel(t, channels.AllScopes, 0)
	if _, err := other.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "", &acc); err != nil {
		t.Fatal(err)
	}
	if err := api.server.ApplyOutcomes(ctx, []*schemas.PaymentOutcome{outcome(acc.ID, "posted", "")}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Do(ctx, "GET", "/v1/payments/"+acc.ID, nil, "", &got); err != nil || got.Status != "succeeded" {
		t.Errorf("without webhooks: %+v (%v)", got, err)
	}
	if err := api.db.Pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
		WHERE w.channel_key = $1`, otherCh.KeyID).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d deliveries for a channel without webhooks (%v)", n, err)
	}
}

func TestWaitModeAnswersWithTheOutcome(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api := newTestAPI(t)
	c, _ := api.channel(t, channels.AllScopes, 0)
	go func() { _ = api.server.ReadOutcomes(ctx, kgo.SeedBrokers(api.kafka.Brokers...)) }()

	// The pipeline's stand-in: answer every request with a rejection on payments.outcomes.
	pipeline := api.kafka.Client(t, kgo.ConsumeTopics(string(catalog.PaymentsRequested)))
	go func() {
		for ctx.Err() == nil {
			fs := pipeline.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				p := api.decodePayment(t, r)
				b, err := api.serde.Encode(catalog.PaymentsOutcomes, outcome(p.PaymentID, "rejected", "insufficient_funds"))
				if err != nil {
					return
				}
				pipeline.Produce(ctx, &kgo.Record{Topic: string(catalog.PaymentsOutcomes), Key: r.Key, Value: b}, nil)
			})
		}
	}()

	var got Payment
	resp, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "", &got, http.Header{"Prefer": {"wait=10"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusOK || got.Status != "rejected" || got.ReasonCode != "insufficient_funds" {
		t.Errorf("wait mode: %d %+v", resp.Status, got)
	}
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "", nil, http.Header{"Prefer": {"wait=31"}}); client.Code(err) != "invalid_prefer" {
		t.Errorf("wait=31: %v", err)
	}
}

func TestHoldOperations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, _ := api.channel(t, channels.AllScopes, 0)
	var hold, transfer PaymentAccepted
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(`{"type":"hold","amount":"20.00","currency":"USD","source_wallet_id":"wal_1","destination_wallet_id":"wal_3"}`), "", &hold); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "", &transfer); err != nil {
		t.Fatal(err)
	}
	var capture PaymentAccepted
	if _, err := c.Do(ctx, "POST", "/v1/payments/"+hold.ID+"/capture", []byte(`{"amount":"5.00","mode":"keep_rest"}`), "", &capture); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, body, code string }{
		{"/v1/payments/" + transfer.ID + "/capture", `{"amount":"5.00"}`, "not_a_hold"},
		{"/v1/payments/" + hold.ID + "/void", `{"amount":"5.00"}`, "invalid_operation"},
		{"/v1/payments/" + hold.ID + "/capture", `{"amount":"5.00","mode":"keep_all"}`, "invalid_operation"},
		{"/v1/payments/" + hold.ID + "/capture", `{"amount":"5.001"}`, "invalid_amount"},
		{"/v1/payments/" + hold.ID + "/refund", `{"amount":"1.00"}`, "not_refundable"},
		{"/v1/payments/pay_00000000000000000000000000000000/void", `{}`, "payment_not_found"},
	}
	for _, tt := range tests {
		if _, err := c.Do(ctx, "POST", tt.path, []byte(tt.body), "", nil); client.Code(err) != tt.code {
			t.Errorf("POST %s %s: %v, want %s", tt.path, tt.body, err, tt.code)
		}
	}
	var refund PaymentAccepted
	if _, err := c.Do(ctx, "POST", "/v1/payments/"+transfer.ID+"/refund", []byte(`{"amount":"4.00"}`), "", &refund); err != nil {
		t.Fatal(err)
	}

	recs := api.requested(t)
	if len(recs) != 4 {
		t.Fatalf("%d records, want hold, transfer, capture, refund", len(recs))
	}
	byID := map[string]*schemas.Payment{}
	keys := map[string]string{}
	for _, r := range recs {
		p := api.decodePayment(t, r)
		byID[p.PaymentID], keys[p.PaymentID] = p, string(r.Key)
	}
	cp := byID[capture.ID]
	if cp == nil || cp.Operation != "capture" || cp.TargetPaymentID != hold.ID || cp.CaptureMode != "keep_rest" ||
		!cp.Amount.Amount.Equal(decimal.RequireFromString("5")) || keys[capture.ID] != "wal_1" {
		t.Errorf("capture record %+v key %s", cp, keys[capture.ID])
	}
	rf := byID[refund.ID]
	if rf == nil || rf.Operation != "refund" || rf.TargetPaymentID != transfer.ID || rf.PayerWallet != "wal_2" || keys[refund.ID] != "wal_2" {
		t.Errorf("refund record %+v key %s: want it paid by the original payee", rf, keys[refund.ID])
	}
}

// Concurrent payments share claim groups: 20 retries of one key get one payment and one
// record, and 40 distinct payments at once each get theirs.
func TestConcurrentPaymentsAreClaimedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, _ := api.channel(t, channels.AllScopes, 0)
	var wg sync.WaitGroup
	ids := make([]string, 60)
	errs := make([]error, 60)
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "same-key"
			if i >= 20 {
				key = "key-" + strconv.Itoa(i)
			}
			var acc PaymentAccepted
			_, errs[i] = c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), key, &acc)
			ids[i] = acc.ID
		}()
	}
	wg.Wait()
	distinct := map[string]bool{}
	for i := range 60 {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if i < 20 && ids[i] != ids[0] {
			t.Errorf("retry %d got %s, the first %s", i, ids[i], ids[0])
		}
		distinct[ids[i]] = true
	}
	if len(distinct) != 41 {
		t.Errorf("%d distinct payment ids, want 41", len(distinct))
	}
	recs := api.requested(t)
	perID := map[string]int{}
	for _, r := range recs {
		perID[api.decodePayment(t, r).PaymentID]++
	}
	if len(recs) != 41 || perID[ids[0]] != 1 {
		t.Errorf("%d records on payments.requested (%d for the retried key), want 41 and 1", len(recs), perID[ids[0]])
	}
	var rows int
	if err := api.db.Pool.QueryRow(ctx, `SELECT count(*) FROM payment_status`).Scan(&rows); err != nil || rows != 41 {
		t.Errorf("%d status rows (%v), want 41", rows, err)
	}
}

// The API counts and times requests by route pattern (never by path, which carries ids)
// and times the steps of accepting a payment.
func TestRequestsAndPaymentStepsAreMeasured(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, _ := api.channel(t, channels.AllScopes, 0)
	var acc PaymentAccepted
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "metrics-1", &acc); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "metrics-1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, "GET", "/v1/payments/"+acc.ID, nil, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, "GET", "/v2/nothing/here", nil, "", nil); client.Code(err) != "not_found" {
		t.Fatalf("unknown route: %v", err)
	}

	srv := httptest.NewServer(promhttp.HandlerFor(api.metrics, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`paystream_ingress_requests_total{code="202",method="POST",route="/v1/payments"} 2`,
		`paystream_ingress_requests_total{code="200",method="GET",route="/v1/payments/{id}"} 1`,
		`paystream_ingress_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`paystream_ingress_request_seconds_count{method="POST",route="/v1/payments"} 2`,
		`paystream_ingress_payment_step_seconds_count{step="produce"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s in\n%s", want, body)
		}
	}
	// The replay finds the key taken, so both requests claim, the replay again every 25 ms
	// should the first one's answer not be stored yet (it is stored after the answer).
	m := regexp.MustCompile(`paystream_ingress_payment_step_seconds_count\{step="claim"\} (\d+)`).FindSubmatch(body)
	if m == nil {
		t.Errorf("/metrics lacks the claim step in\n%s", body)
	} else if n, _ := strconv.Atoi(string(m[1])); n < 2 {
		t.Errorf("%d claims counted, want at least 2", n)
	}
	if strings.Contains(string(body), acc.ID) {
		t.Error("a payment id reached a metric label")
	}
}

// A payment's life writes its status row, which holds its idempotency key, once, at
// acceptance: the answer and the outcome go to tables of their own, so the hot tables
// leave autovacuum no dead rows. Only the outcome of a payment that waited on a
// counterparty is written over, when it ends.
func TestStatusRowsAndKeysAreWrittenOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, ch := api.channel(t, channels.AllScopes, 0)
	version := func(id, key string) string {
		t.Helper()
		var status string
		var hash []byte
		if err := api.db.Pool.QueryRow(ctx, `SELECT xmin::text || ctid::text, request_hash FROM payment_status WHERE payment_id = $1`, id).
			Scan(&status, &hash); err != nil || len(hash) != sha256.Size {
			t.Fatalf("status row of %s: key hash %x (%v)", id, hash, err)
		}
		var keys int
		if err := api.db.Pool.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE channel_key = $1 AND idem_key = $2`,
			ch.KeyID, key).Scan(&keys); err != nil || keys != 0 {
			t.Fatalf("%d rows of idempotency_keys for the payment key %s (%v)", keys, key, err)
		}
		return status
	}
	get := func(id string) Payment {
		t.Helper()
		var p Payment
		if _, err := c.Do(ctx, "GET", "/v1/payments/"+id, nil, "", &p); err != nil {
			t.Fatal(err)
		}
		return p
	}

	var acc PaymentAccepted
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "key-once", &acc); err != nil {
		t.Fatal(err)
	}
	statusBefore := version(acc.ID, "key-once")
	if p := get(acc.ID); p.Status != "accepted" || p.CompletedAt != nil || string(p.Fees) != "[]" {
		t.Errorf("before its outcome: %+v", p)
	}
	pending := outcome(acc.ID, "pending", "")
	if err := api.server.ApplyOutcomes(ctx, []*schemas.PaymentOutcome{pending}); err != nil {
		t.Fatal(err)
	}
	if p := get(acc.ID); p.Status != "pending_external" || p.CompletedAt != nil {
		t.Errorf("waiting on the bank: %+v", p)
	}
	posted := outcome(acc.ID, "posted", "")
	for _, o := range []*schemas.PaymentOutcome{posted, posted, pending} { // repeated and late reads change nothing
		if err := api.server.ApplyOutcomes(ctx, []*schemas.PaymentOutcome{o}); err != nil {
			t.Fatal(err)
		}
	}
	if p := get(acc.ID); p.Status != "succeeded" || p.CompletedAt == nil || !strings.Contains(string(p.Decisions), `"decision":"posted"`) {
		t.Errorf("after the bank: %+v decisions %s", p, p.Decisions)
	}
	var event string
	if err := api.db.Pool.QueryRow(ctx, `SELECT outcome_event FROM payment_outcomes WHERE payment_id = $1`, acc.ID).Scan(&event); err != nil || event != posted.EventID {
		t.Errorf("outcome event %q (%v), want %q", event, err, posted.EventID)
	}

	if again := replayedPayment(t, c, "key-once"); again.ID != acc.ID {
		t.Errorf("replayed %s, want %s", again.ID, acc.ID)
	}
	if s := version(acc.ID, "key-once"); s != statusBefore {
		t.Errorf("status row %s → %s: written over", statusBefore, s)
	}

	// An outcome of a payment this ingress never accepted is not kept.
	if err := api.server.ApplyOutcomes(ctx, []*schemas.PaymentOutcome{outcome("pay_elsewhere", "posted", "")}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := api.db.Pool.QueryRow(ctx, `SELECT count(*) FROM payment_outcomes WHERE payment_id = 'pay_elsewhere'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d outcome rows for an unknown payment (%v)", n, err)
	}
}

// A key whose first request died unanswered is taken over after abandonAfter: the retry
// produces the payment (under the same id) and its answer is kept for the next retry.
func TestAbandonedKeyIsTakenOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, ch := api.channel(t, channels.AllScopes, 0)
	h := sha256.New()
	h.Write([]byte("POST\n/v1/payments\n" + transferBody))
	if _, err := api.db.Pool.Exec(ctx, `INSERT INTO idempotency_keys (channel_key, idem_key, request_hash, created_at)
		VALUES ($1, 'key-died', $2, now() - interval '2 minutes')`, ch.KeyID, h.Sum(nil)); err != nil {
		t.Fatal(err)
	}
	var acc PaymentAccepted
	resp, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "key-died", &acc)
	if err != nil || resp.Status != http.StatusAccepted || resp.Replayed || acc.ID != paymentID(ch.KeyID, "key-died") {
		t.Fatalf("taking over: %+v %+v (%v)", resp, acc, err)
	}
	perID := map[string]int{}
	for _, r := range api.requested(t) {
		perID[api.decodePayment(t, r).PaymentID]++
	}
	if perID[acc.ID] != 1 {
		t.Errorf("%d records of the taken-over payment, want 1", perID[acc.ID])
	}
	if again := replayedPayment(t, c, "key-died"); again.ID != acc.ID {
		t.Errorf("replayed %s, want %s", again.ID, acc.ID)
	}
}

// replayedPayment retries a transfer under key until the ingress replays its kept answer:
// a payment's answer is written after it is sent, so a retry may first find the key in
// flight.
func replayedPayment(t *testing.T, c *client.Client, key string) PaymentAccepted {
	t.Helper()
	return replayedPaymentOf(t, c, key, transferBody)
}

// replayedPaymentOf is replayedPayment for another body.
func replayedPaymentOf(t *testing.T, c *client.Client, key, body string) PaymentAccepted {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var again PaymentAccepted
		resp, err := c.Do(context.Background(), "POST", "/v1/payments", []byte(body), key, &again)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Replayed {
			if resp.Status != http.StatusAccepted {
				t.Errorf("replay of %s: %+v", key, resp)
			}
			return again
		}
		if time.Now().After(deadline) {
			t.Fatalf("the answer under %s was never kept", key)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Outcomes arrive in batches of hundreds; each must find its status row through the
// primary key, however young the table, rather than read all of payment_status.
func TestOutcomesFindStatusRowsByKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	_, ch := api.channel(t, channels.AllScopes, 0)
	if _, err := api.db.Pool.Exec(ctx, `INSERT INTO payment_status (payment_id, channel_key, type, amount, currency)
		SELECT 'pay_' || g, $1, 'p2p', 1, 'USD' FROM generate_series(1, 20000) g`, ch.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := api.db.Pool.Exec(ctx, `ANALYZE payment_status`); err != nil {
		t.Fatal(err)
	}
	n := 300
	ids, statuses, reasons, details, events := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ats, ours := make([]time.Time, n), make([]bool, n) // none accepted here lately: each is probed
	for i := range n {
		ids[i], statuses[i], details[i], events[i] = fmt.Sprintf("pay_%d", i*61+1), "succeeded", "{}", fmt.Sprintf("ev%d", i)
		ats[i] = time.Now()
	}
	// The outcomes run on the pool of generic plans; a custom plan is checked too, for
	// a server whose pool of its own could not be opened.
	plans := map[string]string{
		"custom":                   testenv.Plan(t, api.db.Pool, applyOutcomesSQL, ids, statuses, reasons, details, ats, events, ours),
		"generic":                  testenv.GenericPlan(t, api.db.Pool, applyOutcomesSQL, ids, statuses, reasons, details, ats, events, ours),
		"hooked payments, custom":  testenv.Plan(t, api.db.Pool, hookedPaymentsSQL, ids, []string{ch.KeyID}),
		"hooked payments, generic": testenv.GenericPlan(t, api.db.Pool, hookedPaymentsSQL, ids, []string{ch.KeyID}),
	}
	for name, plan := range plans {
		if strings.Contains(plan, "Seq Scan on payment_status") || !strings.Contains(plan, "payment_status_pkey") {
			t.Errorf("%s: status rows not looked up by key:\n%s", name, plan)
		}
	}
}
