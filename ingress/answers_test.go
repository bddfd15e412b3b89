package ingress

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ingress/client"
	"github.com/paystream/paystream/schemas"
)

func TestDelayedAnswers(t *testing.T) {
	answer := func(key string) keptAnswer { return keptAnswer{key: key} }
	tests := []struct {
		name  string
		after time.Duration // since the answers came
		drop  []string
		all   bool
		want  []string // keys kept, in order
	}{
		{"held within the delay", 500 * time.Millisecond, nil, false, nil},
		{"kept once it passed", 1500 * time.Millisecond, nil, false, []string{"a", "b", "c"}},
		{"not kept once its outcome came", 1500 * time.Millisecond, []string{"pay_b"}, false, []string{"a", "c"}},
		{"all kept at close", 0, []string{"pay_a"}, true, []string{"b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &delayedAnswers{delay: time.Second, byID: map[string]keptAnswer{}}
			for _, k := range []string{"a", "b", "c"} {
				d.add("pay_"+k, answer(k))
			}
			if held := d.holds(append(tt.drop, "pay_x")); slices.Contains(held[:len(tt.drop)], false) || held[len(tt.drop)] {
				t.Errorf("holds(%v) = %v, want every one held but pay_x", tt.drop, held)
			}
			d.drop(tt.drop)
			var got []string
			for _, a := range d.due(time.Now().Add(tt.after), tt.all) {
				got = append(got, a.key)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("kept %v, want %v", got, tt.want)
			}
			if again := d.due(time.Now().Add(time.Hour), true); len(again)+len(got) != 3-len(tt.drop) {
				t.Errorf("%d answers left after keeping %v and dropping %v", len(again), got, tt.drop)
			}
		})
	}
}

// holdingAPI is a test API whose server holds payments' answers for delay.
func holdingAPI(t *testing.T, delay time.Duration) (*testAPI, *client.Client, channels.Channel) {
	t.Helper()
	api := newTestAPI(t)
	api.server.delayed.setDelay(delay)
	c, ch := api.channel(t, channels.AllScopes, 0)
	return api, c, ch
}

// A payment whose outcome comes within answerDelay keeps no answer: its outcome row
// answers the retry, with the body the first request got.
func TestPaymentAnswerStandsOnItsOutcome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api, c, ch := holdingAPI(t, time.Hour)

	first, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "key-fast", nil)
	if err != nil || first.Status != http.StatusAccepted {
		t.Fatalf("POST: %+v (%v)", first, err)
	}
	id := paymentID(ch.KeyID, "key-fast")
	if err := api.server.ApplyOutcomes(ctx, []*schemas.PaymentOutcome{outcome(id, "posted", "")}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second) // a replay is immediate; no waiting for the key
	defer cancel()
	again, err := c.Do(short, "POST", "/v1/payments", []byte(transferBody), "key-fast", nil)
	if err != nil {
		t.Fatalf("retry after the outcome: %v, want the first answer replayed", err)
	}
	if !again.Replayed || again.Status != http.StatusAccepted ||
		string(again.Body) != string(first.Body) || again.Header.Get("Content-Type") != "application/json" {
		t.Errorf("retry after the outcome: %+v %s, want the first answer %s replayed", again, again.Body, first.Body)
	}
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(`{"type":"transfer","amount":"11.00","currency":"USD","source_wallet_id":"wal_1","destination_wallet_id":"wal_2"}`), "key-fast", nil); client.Code(err) != "idempotency_key_reused" {
		t.Errorf("another request under the key: %v, want idempotency_key_reused", err)
	}
	// Neither kept nor held any longer.
	var n int
	if err := api.db.Pool.QueryRow(ctx, `SELECT count(*) FROM idempotency_answers WHERE idem_key = 'key-fast'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d answers kept (%v), want 0", n, err)
	}
	if held := api.server.delayed.due(time.Now(), true); len(held) != 0 {
		t.Errorf("%d answers still held after the outcome", len(held))
	}
	if recs := api.requested(t); len(recs) != 1 {
		t.Errorf("%d records, want 1", len(recs))
	}
}

// A payment whose outcome is late has its answer kept after answerDelay, and a key
// left unanswered for longer than abandonAfter is not taken over once the payment has
// an outcome.
func TestSlowPaymentKeepsItsAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api, c, ch := holdingAPI(t, 200*time.Millisecond)

	first, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "key-slow", nil)
	if err != nil || first.Status != http.StatusAccepted {
		t.Fatalf("POST: %+v (%v)", first, err)
	}
	var body []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := api.db.Pool.QueryRow(ctx, `SELECT body FROM idempotency_answers WHERE idem_key = 'key-slow'`).Scan(&body)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if string(body) != string(first.Body) {
		t.Fatalf("kept answer %q, want %q", body, first.Body)
	}
	if again := replayedPayment(t, c, "key-slow"); again.ID != paymentID(ch.KeyID, "key-slow") {
		t.Errorf("replayed %s", again.ID)
	}

	// Another payment: its answer held, its claim two minutes old, its outcome in.
	api.server.delayed.setDelay(time.Hour)
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "key-old", nil); err != nil {
		t.Fatal(err)
	}
	id := paymentID(ch.KeyID, "key-old")
	if _, err := api.db.Pool.Exec(ctx, `UPDATE payment_status SET claimed_at = now() - interval '2 minutes' WHERE payment_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if err := api.server.ApplyOutcomes(ctx, []*schemas.PaymentOutcome{outcome(id, "posted", "")}); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := api.db.Pool.QueryRow(ctx, takeOverKeySQL, ch.KeyID, "key-old", id, int64(abandonAfter.Seconds())).Scan(&n); err != nil || n != 0 {
		t.Errorf("took over %d keys of a payment with an outcome (%v), want 0", n, err)
	}
	if again := replayedPayment(t, c, "key-old"); again.ID != id {
		t.Errorf("replayed %s, want %s", again.ID, id)
	}
	if recs := api.requested(t); len(recs) != 2 {
		t.Errorf("%d records, want one a payment", len(recs))
	}
}

// Only a payment's own 202, claimed by a request that did not ask to wait, is held; an
// operation's answer and a waiting request's are kept, and a waiting request's key is
// never answered from the outcome. Close keeps what is held.
func TestOnlyPlainPaymentAnswersAreHeld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api, c, ch := holdingAPI(t, time.Hour)
	kept := func(key string) bool {
		t.Helper()
		var n int
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if err := api.db.Pool.QueryRow(ctx, `SELECT count(*) FROM idempotency_answers WHERE idem_key = $1`, key).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 0 || time.Now().After(deadline) {
				return n > 0
			}
		}
	}

	var hold PaymentAccepted
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(`{"type":"hold","amount":"20.00","currency":"USD","source_wallet_id":"wal_1","destination_wallet_id":"wal_3"}`), "key-hold", &hold); err != nil {
		t.Fatal(err)
	}
	capture := []byte(`{"amount":"5.00","mode":"keep_rest"}`)
	if _, err := c.Do(ctx, "POST", "/v1/payments/"+hold.ID+"/capture", capture, "key-capture", nil); err != nil {
		t.Fatal(err)
	}
	if err := api.server.ApplyOutcomes(ctx, []*schemas.PaymentOutcome{outcome(paymentID(ch.KeyID, "key-capture"), "posted", "")}); err != nil {
		t.Fatal(err)
	}
	if !kept("key-capture") {
		t.Error("an operation's answer was not kept")
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if again, err := c.Do(short, "POST", "/v1/payments/"+hold.ID+"/capture", capture, "key-capture", nil); err != nil || !again.Replayed {
		t.Errorf("retried capture: %+v (%v), want its answer replayed", again, err)
	}

	// A request that waited: its answer is kept, and without it the outcome does not stand in.
	waiting := http.Header{"Prefer": {"wait=1"}}
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "key-wait", nil, waiting); err != nil {
		t.Fatal(err)
	}
	if !kept("key-wait") {
		t.Error("a waiting request's answer was not kept")
	}
	if _, err := api.db.Pool.Exec(ctx, `DELETE FROM idempotency_answers WHERE idem_key = 'key-wait'`); err != nil {
		t.Fatal(err)
	}
	if err := api.server.ApplyOutcomes(ctx, []*schemas.PaymentOutcome{outcome(paymentID(ch.KeyID, "key-wait"), "posted", "")}); err != nil {
		t.Fatal(err)
	}
	brief, stop := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer stop()
	if again, err := c.Do(brief, "POST", "/v1/payments", []byte(transferBody), "key-wait", nil); err == nil {
		t.Errorf("a waiting request's retry was answered %d from its outcome, want it still waiting for the answer", again.Status)
	}

	// A plain payment's answer, held, is kept when the server stops.
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "key-plain", nil); err != nil {
		t.Fatal(err)
	}
	if held := api.server.delayed.holds([]string{paymentID(ch.KeyID, "key-plain")}); !held[0] {
		t.Fatal("a plain payment's answer is not held")
	}
	api.server.Close()
	if !kept("key-plain") {
		t.Error("the held answer was not kept at Close")
	}
}

// With several ingress processes, a payment's outcome may be applied by another one than
// the process holding its answer (they share payments.outcomes' partitions). The held
// answer is then not written when its delay ends: the outcome row answers the retry.
func TestHeldAnswerOfAnOutcomeAppliedElsewhere(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api, c, ch := holdingAPI(t, time.Hour)

	first, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "key-elsewhere", nil)
	if err != nil || first.Status != http.StatusAccepted {
		t.Fatalf("POST: %+v (%v)", first, err)
	}
	if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(transferBody), "key-no-outcome", nil); err != nil {
		t.Fatal(err)
	}
	// Applied the way another process applies it: its status row probed, not held there.
	id := paymentID(ch.KeyID, "key-elsewhere")
	if _, err := api.db.Pool.Exec(ctx, applyOutcomesSQL, []string{id}, []string{"succeeded"}, []string{""}, []string{"{}"},
		[]time.Time{time.Now()}, []string{"evt-elsewhere"}, []bool{false}); err != nil {
		t.Fatal(err)
	}
	// Both answers' delay ends; they reach the writer in one group.
	due := api.server.delayed.due(time.Now(), true)
	if len(due) != 2 {
		t.Fatalf("%d answers held, want 2", len(due))
	}
	api.server.writeAnswers(due)
	kept := map[string]int{}
	for _, key := range []string{"key-elsewhere", "key-no-outcome"} {
		var n int
		if err := api.db.Pool.QueryRow(ctx, `SELECT count(*) FROM idempotency_answers WHERE idem_key = $1`, key).Scan(&n); err != nil {
			t.Fatal(err)
		}
		kept[key] = n
	}
	if kept["key-elsewhere"] != 0 || kept["key-no-outcome"] != 1 {
		t.Errorf("answers kept %v, want none for the payment whose outcome is in and one for the other", kept)
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	again, err := c.Do(short, "POST", "/v1/payments", []byte(transferBody), "key-elsewhere", nil)
	if err != nil || !again.Replayed || again.Status != http.StatusAccepted || string(again.Body) != string(first.Body) {
		t.Errorf("retry: %+v %s (%v), want the first answer %s replayed from the outcome", again, again.Body, err, first.Body)
	}
}
