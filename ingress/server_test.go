package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ingress/client"
	"github.com/paystream/paystream/ingress/signing"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/schemas"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type testAPI struct {
	url     string
	store   *channels.Store
	db      *testenv.DB
	server  *Server
	ledger  *ledger.Ledger
	kafka   *testenv.Kafka
	serde   *schemas.Serde
	metrics *prometheus.Registry
}

func newTestAPI(t testing.TB) *testAPI {
	t.Helper()
	db := testenv.Postgres(t)
	key, _ := channels.ParseMasterKey(channels.NewMasterKey())
	store, err := channels.NewStore(db.Pool, key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := ledger.New(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CreateSubsidiary(ctx, ledger.Subsidiary{ID: "TEST", Name: "Test", BaseCurrency: "USD"}); err != nil {
		t.Fatal(err)
	}
	k := testenv.NewKafka(t, testenv.Partitions(2))
	serde, err := schemas.NewSerde(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := NewServer(Config{Pool: db.Pool, Ledger: l, Subsidiary: "TEST", Channels: store,
		Producer: k.Client(t), Serde: serde, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	// Most tests retry before any outcome: their answers are kept at once, as a slow
	// pipeline's would be. The delay's own tests set it back.
	s.delayed.setDelay(0)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &testAPI{url: hs.URL, store: store, db: db, server: s, ledger: l, kafka: k, serde: serde, metrics: reg}
}

// channel creates a channel and returns a client of it; opts: scopes and rate limit.
func (a *testAPI) channel(t testing.TB, scopes []channels.Scope, rateLimit int) (*client.Client, channels.Channel) {
	t.Helper()
	ch, err := a.store.Create(context.Background(), "test", scopes, rateLimit)
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(client.Credentials{BaseURL: a.url, KeyID: ch.KeyID, Secret: ch.Secret})
	c.MaxAttempts = 1
	return c, ch
}

const goodHook = `{"url":"https://shop.example/hooks","event_types":["payment.succeeded"]}`

// signedRequest sends a request signed with secret at time ts, with the given headers.
func signedRequest(t *testing.T, url, method, path, body, keyID, secret string, ts time.Time, extra map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
	tss := strconv.FormatInt(ts.Unix(), 10)
	req.Header.Set(signing.HeaderKey, keyID)
	req.Header.Set(signing.HeaderTimestamp, tss)
	req.Header.Set(signing.HeaderSignature, signing.Sign([]byte(secret), tss, method, path, []byte(body)))
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func problemCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("content type %q, want application/problem+json", ct)
	}
	b, _ := io.ReadAll(resp.Body)
	var p struct{ Code string }
	_ = json.Unmarshal(b, &p)
	return p.Code
}

func TestAuthenticationFailures(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	_, ch := api.channel(t, channels.AllScopes, 0)
	_, readOnly := api.channel(t, []channels.Scope{channels.WalletsRead}, 0)
	revoked, _ := api.store.Create(context.Background(), "gone", channels.AllScopes, 0)
	if err := api.store.Revoke(context.Background(), revoked.KeyID); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	idem := map[string]string{"Idempotency-Key": "k1"}

	tests := []struct {
		name       string
		do         func() *http.Response
		wantStatus int
		wantCode   string
	}{
		{"no headers", func() *http.Response {
			resp, err := http.Get(api.url + "/v1/webhooks")
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}, 401, "unauthenticated"},
		{"unknown key", func() *http.Response {
			return signedRequest(t, api.url, "GET", "/v1/webhooks", "", "ck_nope", "x", now, nil)
		}, 401, "unknown_key"},
		{"wrong secret", func() *http.Response {
			return signedRequest(t, api.url, "GET", "/v1/webhooks", "", ch.KeyID, ch.Secret+"x", now, nil)
		}, 401, "bad_signature"},
		{"stale timestamp", func() *http.Response {
			return signedRequest(t, api.url, "GET", "/v1/webhooks", "", ch.KeyID, ch.Secret, now.Add(-301*time.Second), nil)
		}, 401, "stale_timestamp"},
		{"revoked key", func() *http.Response {
			return signedRequest(t, api.url, "GET", "/v1/webhooks", "", revoked.KeyID, revoked.Secret, now, nil)
		}, 401, "revoked_key"},
		{"missing scope", func() *http.Response {
			return signedRequest(t, api.url, "POST", "/v1/webhooks", goodHook, readOnly.KeyID, readOnly.Secret, now, idem)
		}, 403, "missing_scope"},
		{"body signed but changed", func() *http.Response {
			req, _ := http.NewRequest("POST", api.url+"/v1/webhooks", strings.NewReader(goodHook+" "))
			ts := strconv.FormatInt(now.Unix(), 10)
			req.Header.Set(signing.HeaderKey, ch.KeyID)
			req.Header.Set(signing.HeaderTimestamp, ts)
			req.Header.Set(signing.HeaderSignature, signing.Sign([]byte(ch.Secret), ts, "POST", "/v1/webhooks", []byte(goodHook)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}, 401, "bad_signature"},
		{"body too large", func() *http.Response {
			return signedRequest(t, api.url, "POST", "/v1/webhooks", strings.Repeat(" ", MaxBody+1), ch.KeyID, ch.Secret, now, idem)
		}, 413, "body_too_large"},
		{"good", func() *http.Response {
			return signedRequest(t, api.url, "GET", "/v1/webhooks", "", ch.KeyID, ch.Secret, now, nil)
		}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.do()
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantCode != "" {
				if code := problemCode(t, resp); code != tt.wantCode {
					t.Errorf("problem code %q, want %q", code, tt.wantCode)
				}
			}
		})
	}
}

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	_, ch := api.channel(t, channels.AllScopes, 2)
	var statuses []int
	var retryAfter string
	for range 4 {
		resp := signedRequest(t, api.url, "GET", "/v1/webhooks", "", ch.KeyID, ch.Secret, time.Now(), nil)
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			retryAfter = resp.Header.Get("Retry-After")
			if code := problemCode(t, resp); code != "rate_limited" {
				t.Errorf("429 code %q", code)
			}
		}
	}
	if statuses[0] != 200 || statuses[1] != 200 || statuses[3] != 429 {
		t.Errorf("statuses %v: want the burst of 2 served, then 429", statuses)
	}
	if n, err := strconv.Atoi(retryAfter); err != nil || n < 1 {
		t.Errorf("Retry-After %q, want whole seconds >= 1", retryAfter)
	}
}

func TestIdempotentPost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, _ := api.channel(t, channels.AllScopes, 0)

	var first, again Webhook
	resp, err := c.Do(ctx, "POST", "/v1/webhooks", []byte(goodHook), "key-1", &first)
	if err != nil || resp.Status != 201 || resp.Replayed {
		t.Fatalf("first POST: %+v, %v", resp, err)
	}
	resp, err = c.Do(ctx, "POST", "/v1/webhooks", []byte(goodHook), "key-1", &again)
	if err != nil || resp.Status != 201 || !resp.Replayed || again.ID != first.ID {
		t.Fatalf("retry: %+v %v, id %s want %s", resp, err, again.ID, first.ID)
	}
	_, err = c.Do(ctx, "POST", "/v1/webhooks", []byte(`{"url":"https://other.example/h","event_types":["payment.failed"]}`), "key-1", nil)
	if client.Code(err) != "idempotency_key_reused" {
		t.Errorf("same key, other body: %v, want idempotency_key_reused", err)
	}
	_, err = c.Do(ctx, "POST", "/v1/webhooks", []byte(goodHook), strings.Repeat("k", 256), nil)
	if client.Code(err) != "idempotency_key_too_long" {
		t.Errorf("256-character key: %v", err)
	}

	// 20 concurrent retries of one new key: one webhook, one id for all.
	var wg sync.WaitGroup
	ids := make([]string, 20)
	errs := make([]error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var wh Webhook
			_, errs[i] = c.Do(ctx, "POST", "/v1/webhooks", []byte(goodHook), "key-concurrent", &wh)
			ids[i] = wh.ID
		}()
	}
	wg.Wait()
	for i := range 20 {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Errorf("retry %d: id %q err %v, want id %q", i, ids[i], errs[i], ids[0])
		}
	}
	var n int
	if err := api.db.Pool.QueryRow(ctx, "SELECT count(*) FROM webhooks").Scan(&n); err != nil || n != 2 {
		t.Errorf("%d webhooks stored, want 2 (key-1 and key-concurrent)", n)
	}
}

func TestMissingIdempotencyKey(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t)
	_, ch := api.channel(t, channels.AllScopes, 0)
	resp := signedRequest(t, api.url, "POST", "/v1/webhooks", goodHook, ch.KeyID, ch.Secret, time.Now(), nil)
	if resp.StatusCode != 400 || problemCode(t, resp) != "idempotency_key_required" {
		t.Errorf("POST without Idempotency-Key: %d", resp.StatusCode)
	}
}

func TestStrictJSONAndWebhookValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, _ := api.channel(t, channels.AllScopes, 0)
	tests := []struct {
		name, body, code string
		field            string
	}{
		{"unknown field", `{"url":"https://a.example/h","event_types":["payment.failed"],"secret":"x"}`, "unknown_field", "secret"},
		{"duplicate key", `{"url":"https://a.example/h","url":"https://b.example/h","event_types":["payment.failed"]}`, "invalid_json", ""},
		{"trailing data", goodHook + `{}`, "invalid_json", ""},
		{"not json", `url=x`, "invalid_json", ""},
		{"empty", ``, "invalid_json", ""},
		{"wrong type", `{"url":5,"event_types":["payment.failed"]}`, "invalid_field", "url"},
		{"ftp url", `{"url":"ftp://a.example/h","event_types":["payment.failed"]}`, "invalid_webhook", "url"},
		{"credentials in url", `{"url":"https://u:p@a.example/h","event_types":["payment.failed"]}`, "invalid_webhook", "url"},
		{"no events", `{"url":"https://a.example/h","event_types":[]}`, "invalid_webhook", "event_types"},
		{"unknown event", `{"url":"https://a.example/h","event_types":["payment.eaten"]}`, "invalid_webhook", "event_types"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Do(ctx, "POST", "/v1/webhooks", []byte(tt.body), "strict-"+strconv.Itoa(i), nil)
			var e *client.Error
			if !errors.As(err, &e) || e.Problem == nil {
				t.Fatalf("got %v, want a problem", err)
			}
			if e.Status >= 500 || e.Problem.Code != tt.code {
				t.Errorf("status %d code %q, want code %q", e.Status, e.Problem.Code, tt.code)
			}
			if tt.field != "" && (len(e.Problem.Errors) == 0 || e.Problem.Errors[0].Field != tt.field) {
				t.Errorf("field errors %+v, want one on %s", e.Problem.Errors, tt.field)
			}
		})
	}
}

func TestWebhooksBelongToTheirChannel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	a, _ := api.channel(t, channels.AllScopes, 0)
	b, _ := api.channel(t, channels.AllScopes, 0)
	var wh Webhook
	if _, err := a.Do(ctx, "POST", "/v1/webhooks", []byte(goodHook), "", &wh); err != nil {
		t.Fatal(err)
	}
	var list struct{ Webhooks []Webhook }
	if _, err := b.Do(ctx, "GET", "/v1/webhooks", nil, "", &list); err != nil || len(list.Webhooks) != 0 {
		t.Errorf("channel b sees %d webhooks (%v), want 0", len(list.Webhooks), err)
	}
	if _, err := b.Do(ctx, "DELETE", "/v1/webhooks/"+wh.ID, nil, "", nil); client.Code(err) != "webhook_not_found" {
		t.Errorf("channel b deleting a's webhook: %v", err)
	}
	if _, err := a.Do(ctx, "DELETE", "/v1/webhooks/"+wh.ID, nil, "", nil); err != nil {
		t.Errorf("owner deleting: %v", err)
	}
	if _, err := a.Do(ctx, "GET", "/v1/webhooks", nil, "", &list); err != nil || len(list.Webhooks) != 0 {
		t.Errorf("after delete: %d webhooks, %v", len(list.Webhooks), err)
	}
}
