package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ingress/signing"
	"github.com/paystream/paystream/ingress/webhooks"
)

// receiver is a channel's webhook endpoint that fails its first failures calls.
type receiver struct {
	mu       sync.Mutex
	failures int
	calls    []*http.Request
	bodies   [][]byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls = append(rc.calls, r)
	rc.bodies = append(rc.bodies, b)
	if len(rc.calls) <= rc.failures {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.calls)
}

func TestWebhookDeliveryIsSignedAndRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, ch := api.channel(t, channels.AllScopes, 0)
	rc := &receiver{failures: 2}
	hs := httptest.NewServer(rc)
	defer hs.Close()

	var wh Webhook
	body := `{"url":"` + hs.URL + `/hook?shop=1","event_types":["payment.succeeded"]}`
	if _, err := c.Do(ctx, "POST", "/v1/webhooks", []byte(body), "", &wh); err != nil {
		t.Fatal(err)
	}
	d := api.server.webhooks
	d.Backoff = func(int) time.Duration { return 0 }

	payload := []byte(`{"id":"pay_1","status":"succeeded"}`)
	for i, want := range []int64{1, 0} { // the second enqueue of one event queues nothing
		n, err := d.EnqueueAll(ctx, []webhooks.Event{{ChannelKey: ch.KeyID, Type: "payment.succeeded", ID: "evt-1", Payload: payload}})
		if err != nil || n != want {
			t.Fatalf("enqueue %d: %d, %v; want %d", i, n, err, want)
		}
	}
	if n, _ := d.EnqueueAll(ctx, []webhooks.Event{{ChannelKey: ch.KeyID, Type: "payment.failed", ID: "evt-2", Payload: payload}}); n != 0 {
		t.Errorf("queued %d deliveries of an event type nobody subscribed to", n)
	}
	// A batch queues what its events would one by one: evt-1 is queued already, payment.failed
	// has no subscriber, another channel's event is not this webhook's. (The end-to-end
	// scenario sees batches of outcomes queue and deliver.)
	n, err := d.EnqueueAll(ctx, []webhooks.Event{
		{ChannelKey: ch.KeyID, Type: "payment.succeeded", ID: "evt-1", Payload: payload},
		{ChannelKey: ch.KeyID, Type: "payment.failed", ID: "evt-3", Payload: payload},
		{ChannelKey: "other-channel", Type: "payment.succeeded", ID: "evt-4", Payload: payload},
	})
	if err != nil || n != 0 {
		t.Fatalf("EnqueueAll queued %d, %v; want 0", n, err)
	}

	for i := 0; i < 100 && rc.count() < 3; i++ {
		if _, err := d.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if rc.count() != 3 {
		t.Fatalf("receiver got %d calls, want 2 failures and 1 success", rc.count())
	}
	if _, err := d.DeliverDue(ctx); err != nil || rc.count() != 3 {
		t.Errorf("a delivered event was sent again (%d calls, %v)", rc.count(), err)
	}

	last := rc.calls[2]
	if err := signing.Verify([]byte(ch.Secret), last.Header.Get(signing.HeaderTimestamp), "POST", "/hook?shop=1",
		rc.bodies[2], last.Header.Get(signing.HeaderSignature), time.Now()); err != nil {
		t.Errorf("delivery signature does not verify with the channel's secret: %v", err)
	}
	if last.Header.Get(webhooks.HeaderEvent) != "payment.succeeded" || last.Header.Get(webhooks.HeaderEventID) != "evt-1" {
		t.Errorf("event headers %v", last.Header)
	}

	var log struct{ Deliveries []webhooks.Delivery }
	if _, err := c.Do(ctx, "GET", "/v1/webhooks/"+wh.ID+"/deliveries", nil, "", &log); err != nil {
		t.Fatal(err)
	}
	if len(log.Deliveries) != 1 {
		t.Fatalf("delivery log has %d rows, want 1", len(log.Deliveries))
	}
	got := log.Deliveries[0]
	if got.State != "delivered" || got.Attempts != 3 || got.LastStatus == nil || *got.LastStatus != 204 || got.DeliveredAt == nil {
		t.Errorf("delivery %+v, want delivered after 3 attempts with status 204", got)
	}
}

func TestWebhookDeliveryGivesUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, ch := api.channel(t, channels.AllScopes, 0)
	rc := &receiver{failures: 1000}
	hs := httptest.NewServer(rc)
	defer hs.Close()
	var wh Webhook
	if _, err := c.Do(ctx, "POST", "/v1/webhooks", []byte(`{"url":"`+hs.URL+`/h","event_types":["payment.failed"]}`), "", &wh); err != nil {
		t.Fatal(err)
	}
	d := api.server.webhooks
	d.Backoff = func(int) time.Duration { return webhooks.GiveUpAfter + time.Hour }
	if _, err := d.EnqueueAll(ctx, []webhooks.Event{{ChannelKey: ch.KeyID, Type: "payment.failed", ID: "evt-9", Payload: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	list, _, err := d.Deliveries(ctx, ch.KeyID, wh.ID, 10)
	if err != nil || len(list) != 1 || list[0].State != "failed" || list[0].LastError == nil {
		t.Errorf("deliveries %+v, %v; want one failed with its error", list, err)
	}
}

func TestBackoffSchedule(t *testing.T) {
	tests := []struct {
		attempt int
		want    time.Duration
	}{{1, 5 * time.Second}, {2, 10 * time.Second}, {3, 20 * time.Second}, {10, 2560 * time.Second}, {11, time.Hour}, {40, time.Hour}}
	var total time.Duration
	for n := 1; total < 24*time.Hour; n++ {
		total += webhooks.Backoff(n)
		if n > 60 {
			t.Fatal("backoff never reaches 24 h")
		}
	}
	for _, tt := range tests {
		if got := webhooks.Backoff(tt.attempt); got != tt.want {
			t.Errorf("Backoff(%d) = %s, want %s", tt.attempt, got, tt.want)
		}
	}
}

// syncBuffer is a log sink that goroutines may write while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A poll that keeps failing (here its table is gone, as when the database is down) is
// logged when it starts failing, then at most every FailureLogEvery with the count of
// failed polls, and once more when it works again.
func TestWebhookPollFailuresAreNotLoggedEveryPoll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	var logs syncBuffer
	d := webhooks.NewDispatcher(api.db.Pool, api.store, slog.New(slog.NewJSONHandler(&logs, nil)))
	d.FailureLogEvery = 100 * time.Millisecond
	if _, err := api.db.Pool.Exec(ctx, `ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_away`); err != nil {
		t.Fatal(err)
	}
	run, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { d.Run(run, 5*time.Millisecond); close(done) }()
	defer func() { stop(); <-done }()

	time.Sleep(600 * time.Millisecond)
	if _, err := api.db.Pool.Exec(ctx, `ALTER TABLE webhook_deliveries_away RENAME TO webhook_deliveries`); err != nil {
		t.Fatal(err)
	}
	type line struct {
		Time        time.Time
		Msg         string
		FailedPolls int `json:"failed_polls"`
	}
	var failures []line
	var recovered *line
	for deadline := time.Now().Add(10 * time.Second); recovered == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no line saying deliveries work again:\n%s", logs.String())
		}
		failures = failures[:0]
		for _, raw := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var l line
			if err := json.Unmarshal([]byte(raw), &l); err != nil {
				t.Fatalf("log line %q: %v", raw, err)
			}
			switch l.Msg {
			case "delivering webhooks":
				failures = append(failures, l)
			case "delivering webhooks again":
				recovered = &l
			}
		}
	}
	// 600 ms or more of failing polls every 5 ms: a line at the first, then one each 100 ms
	// or more (how many depends on how long the rename took; the gaps are what counts).
	if len(failures) < 2 {
		t.Fatalf("%d error lines over 600 ms of failing polls, want one at the start and more each 100 ms:\n%s", len(failures), logs.String())
	}
	for i := 1; i < len(failures); i++ {
		if gap := failures[i].Time.Sub(failures[i-1].Time); gap < d.FailureLogEvery {
			t.Errorf("error lines %d and %d %v apart, want %v or more", i-1, i, gap, d.FailureLogEvery)
		}
		if failures[i].FailedPolls <= failures[i-1].FailedPolls {
			t.Errorf("failed_polls %d after %d, want it counting on", failures[i].FailedPolls, failures[i-1].FailedPolls)
		}
	}
	if failures[0].FailedPolls != 1 || recovered.FailedPolls < failures[len(failures)-1].FailedPolls {
		t.Errorf("failed_polls: first line %d, recovery %d after a last error line of %d", failures[0].FailedPolls, recovered.FailedPolls, failures[len(failures)-1].FailedPolls)
	}
}
