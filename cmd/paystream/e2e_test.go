package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paystream/paystream/ingress/client"
	"github.com/paystream/paystream/ingress/signing"
)

// scenario drives a running paystream dev through its API, as a channel would.
type scenario struct {
	t *testing.T
	c *client.Client
}

type payment struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Status     string `json:"status"`
	ReasonCode string `json:"reason_code"`
	Fees       []struct {
		Code, Amount, Currency, VAT string
	} `json:"fees"`
	Rewards []struct {
		CampaignID string `json:"campaign_id"`
		Kind       string
		Amount     string
		Points     int64
	} `json:"rewards"`
	Decisions []struct{ Stage, Decision string } `json:"decisions"`
}

var waitForOutcome = http.Header{"Prefer": {"wait=20"}}

func (s *scenario) post(path, body string, out any) {
	s.t.Helper()
	if _, err := s.c.Do(context.Background(), "POST", path, []byte(body), "", out); err != nil {
		s.t.Fatalf("POST %s %s: %v", path, body, err)
	}
}

// pay posts a payment and waits for its outcome.
func (s *scenario) pay(body string) payment {
	s.t.Helper()
	var p payment
	resp, err := s.c.Do(context.Background(), "POST", "/v1/payments", []byte(body), "", &p, waitForOutcome)
	if err != nil {
		s.t.Fatalf("payment %s: %v", body, err)
	}
	if resp.Status != http.StatusOK {
		s.t.Fatalf("payment %s: no outcome within the wait (HTTP %d, %+v)", body, resp.Status, p)
	}
	return p
}

// payment polls a payment until its status is one of want (or 20 s pass).
func (s *scenario) payment(id string, want ...string) payment {
	s.t.Helper()
	var p payment
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := s.c.Do(context.Background(), "GET", "/v1/payments/"+id, nil, "", &p); err != nil {
			s.t.Fatal(err)
		}
		for _, w := range want {
			if p.Status == w {
				return p
			}
		}
	}
	return p
}

func (s *scenario) operate(id, op, body string) payment {
	s.t.Helper()
	var p payment
	resp, err := s.c.Do(context.Background(), "POST", "/v1/payments/"+id+"/"+op, []byte(body), "", &p, waitForOutcome)
	if err != nil || resp.Status != http.StatusOK {
		s.t.Fatalf("%s of %s: %v (%+v)", op, id, err, resp)
	}
	return p
}

// wallet creates a user with a USD wallet and returns the wallet id.
func (s *scenario) wallet(kind string, kyc int) string {
	s.t.Helper()
	var u struct{ ID string }
	s.post("/v1/users", fmt.Sprintf(`{"type":%q,"name":"%s user","kyc_level":%d}`, kind, kind, kyc), &u)
	var w struct{ ID string }
	s.post("/v1/wallets", `{"user_id":"`+u.ID+`","currencies":["USD"]}`, &w)
	return w.ID
}

// balance is "available/posted" of the wallet's USD account.
func (s *scenario) balance(wallet string) string {
	s.t.Helper()
	var b struct {
		Balances []struct{ Currency, Available, Posted string }
	}
	if _, err := s.c.Do(context.Background(), "GET", "/v1/wallets/"+wallet+"/balances", nil, "", &b); err != nil {
		s.t.Fatal(err)
	}
	for _, x := range b.Balances {
		if x.Currency == "USD" {
			return x.Available + "/" + x.Posted
		}
	}
	s.t.Fatalf("wallet %s has no USD balance: %+v", wallet, b)
	return ""
}

func (s *scenario) expect(p payment, status, reason string) {
	s.t.Helper()
	if p.Status != status || p.ReasonCode != reason {
		s.t.Errorf("payment %s (%s): %s/%s, want %s/%s; decisions %+v", p.ID, p.Type, p.Status, p.ReasonCode, status, reason, p.Decisions)
	}
}

// hookReceiver records the signed webhook deliveries it gets.
type hookReceiver struct {
	mu     sync.Mutex
	events map[string]json.RawMessage // by payment id
	bad    int
}

func TestEndToEndScenario(t *testing.T) {
	t.Parallel()
	p := startDevProcess(t, "--ephemeral", "--bank-fail-amount", "13")
	p.waitHealthy(t)
	dataDir := p.bannerField(t, "data")[0]
	creds := filepath.Join(dataDir, "dev-channel.json")
	c, err := client.FromFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	var secret struct{ Secret string }
	b, _ := os.ReadFile(creds)
	_ = json.Unmarshal(b, &secret)
	s := &scenario{t: t, c: c}

	rc := &hookReceiver{events: map[string]json.RawMessage{}}
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if signing.Verify([]byte(secret.Secret), r.Header.Get(signing.HeaderTimestamp), "POST", r.URL.RequestURI(), body,
			r.Header.Get(signing.HeaderSignature), time.Now()) != nil {
			rc.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev struct {
			Payment struct{ ID string }
		}
		_ = json.Unmarshal(body, &ev)
		rc.events[ev.Payment.ID] = body
	}))
	defer hooks.Close()
	s.post("/v1/webhooks", `{"url":"`+hooks.URL+`/paystream","event_types":["payment.succeeded","payment.failed"]}`, nil)

	alice, bob, shop := s.wallet("customer", 2), s.wallet("customer", 1), s.wallet("merchant", 2)

	// Top-up through the bank simulator.
	s.expect(s.pay(`{"type":"topup","amount":"500.00","currency":"USD","destination_wallet_id":"`+alice+`"}`), "succeeded", "")

	// P2P with the demo fee: 0.5 % (min 0.10) plus 10 % VAT, paid by the sender.
	p2p := s.pay(`{"type":"transfer","amount":"100.00","currency":"USD","source_wallet_id":"` + alice + `","destination_wallet_id":"` + bob + `"}`)
	s.expect(p2p, "succeeded", "")
	if len(p2p.Fees) != 1 || p2p.Fees[0].Amount != "0.50" || p2p.Fees[0].VAT != "0.05" {
		t.Errorf("P2P fees %+v, want 0.50 + VAT 0.05", p2p.Fees)
	}

	// Merchant payment: 5 % campaign discount from its budget, 1 point per USD, the
	// merchant's 1.5 % fee plus VAT.
	mp := s.pay(`{"type":"merchant_payment","amount":"40.00","currency":"USD","source_wallet_id":"` + alice + `","destination_wallet_id":"` + shop + `","mcc":"5411"}`)
	s.expect(mp, "succeeded", "")
	kinds := map[string]string{}
	for _, r := range mp.Rewards {
		kinds[r.Kind] = r.Amount
		if r.Kind == "points" && r.Points != 40 {
			t.Errorf("points earned %d, want 40", r.Points)
		}
	}
	if kinds["discount"] != "2.00" || len(mp.Fees) != 1 || mp.Fees[0].Amount != "0.60" || mp.Fees[0].VAT != "0.06" {
		t.Errorf("merchant payment rewards %+v fees %+v", mp.Rewards, mp.Fees)
	}

	// Partial refund, then a hold captured in part with the rest released.
	s.expect(s.operate(mp.ID, "refund", `{"amount":"10.00"}`), "succeeded", "")
	hold := s.pay(`{"type":"hold","amount":"15.00","currency":"USD","source_wallet_id":"` + alice + `","destination_wallet_id":"` + shop + `"}`)
	s.expect(hold, "succeeded", "")
	if got := s.balance(alice); got != "356.45/371.45" {
		t.Errorf("alice with 15 held: %s, want 356.45/371.45", got)
	}
	s.expect(s.operate(hold.ID, "capture", `{"amount":"5.00","mode":"release_rest"}`), "succeeded", "")

	// Withdrawals: one paid out, one the bank declines (its hold is voided).
	s.expect(s.pay(`{"type":"withdrawal","amount":"20.00","currency":"USD","source_wallet_id":"`+alice+`"}`), "succeeded", "")
	s.expect(s.pay(`{"type":"withdrawal","amount":"13.00","currency":"USD","source_wallet_id":"`+alice+`"}`), "failed", "bank_declined")

	// 500 - 100.55 - 38 + 10 - 5 - 20 = 346.45; 40 - 0.66 - 10 + 5 = 34.34.
	for wallet, want := range map[string]string{alice: "346.45/346.45", bob: "100.00/100.00", shop: "34.34/34.34"} {
		if got := s.balance(wallet); got != want {
			t.Errorf("balance of %s: %s, want %s", wallet, got, want)
		}
	}

	// A frozen wallet cannot pay.
	s.post("/v1/wallets/"+bob+"/freeze", `{}`, nil)
	s.expect(s.pay(`{"type":"transfer","amount":"1.00","currency":"USD","source_wallet_id":"`+bob+`","destination_wallet_id":"`+alice+`"}`), "rejected", "wallet_frozen")

	// 20 concurrent transfers that together exceed the balance: each costs 10.11 with its
	// fee, so 9 fit in 100 and the rest are refused; the balance never goes below zero.
	carol := s.wallet("customer", 2)
	s.expect(s.pay(`{"type":"topup","amount":"100.00","currency":"USD","destination_wallet_id":"`+carol+`"}`), "succeeded", "")
	var wg sync.WaitGroup
	results := make([]payment, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.pay(`{"type":"transfer","amount":"10.00","currency":"USD","source_wallet_id":"` + carol + `","destination_wallet_id":"` + alice + `"}`)
		}()
	}
	wg.Wait()
	succeeded := 0
	for _, r := range results {
		switch {
		case r.Status == "succeeded":
			succeeded++
		case r.Status != "rejected" || r.ReasonCode != "insufficient_funds":
			t.Errorf("concurrent transfer %s: %s/%s", r.ID, r.Status, r.ReasonCode)
		}
	}
	if succeeded != 9 || s.balance(carol) != "9.01/9.01" {
		t.Errorf("%d of 20 concurrent transfers succeeded, carol holds %s; want 9 and 9.01", succeeded, s.balance(carol))
	}

	// Webhooks: the P2P's succeeded event arrived, signed with the channel's secret.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		rc.mu.Lock()
		_, ok := rc.events[p2p.ID]
		rc.mu.Unlock()
		if ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	rc.mu.Lock()
	if _, ok := rc.events[p2p.ID]; !ok || rc.bad != 0 {
		t.Errorf("webhook for %s not received (got %d events, %d badly signed)", p2p.ID, len(rc.events), rc.bad)
	}
	rc.mu.Unlock()

	// Risk holds a watch-listed user's payment for an operator, who approves it.
	var dave struct{ ID string }
	s.post("/v1/users", `{"type":"customer","name":"Dave","kyc_level":2}`, &dave)
	var daveWallet struct{ ID string }
	s.post("/v1/wallets", `{"user_id":"`+dave.ID+`","currencies":["USD"]}`, &daveWallet)
	s.expect(s.pay(`{"type":"topup","amount":"50.00","currency":"USD","destination_wallet_id":"`+daveWallet.ID+`"}`), "succeeded", "")
	dbURLBytes, err := os.ReadFile(urlFile(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	ops := []string{"--database-url", string(dbURLBytes), "--kafka-addr", p.kafka}
	if code, _, errOut := runCLI(t, append([]string{"rules", "watchlist", "add", dave.ID, "--action", "review"}, ops...)...); code != 0 {
		t.Fatalf("watch-listing: %s", errOut)
	}
	var held payment
	for range 40 { // the risk stage reloads its rules every 5 s
		var acc struct{ ID, Status string }
		s.post("/v1/payments", `{"type":"transfer","amount":"1.00","currency":"USD","source_wallet_id":"`+daveWallet.ID+`","destination_wallet_id":"`+alice+`"}`, &acc)
		held = s.payment(acc.ID, "processing", "succeeded", "rejected")
		if held.Status == "processing" {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if held.Status != "processing" {
		t.Fatalf("a watch-listed user's payment was not held: %+v", held)
	}
	code, out, errOut := runCLI(t, append([]string{"review", "list"}, ops...)...)
	if code != 0 || !strings.Contains(out, held.ID) {
		t.Fatalf("review list: exit %d, %s%s; want %s", code, out, errOut, held.ID)
	}
	if code, _, errOut := runCLI(t, append([]string{"review", "approve", held.ID}, ops...)...); code != 0 {
		t.Fatalf("review approve: %s", errOut)
	}
	if code, _, _ := runCLI(t, append([]string{"review", "approve", held.ID}, ops...)...); code == 0 {
		t.Error("a review was approved twice")
	}
	if got := s.payment(held.ID, "succeeded"); got.Status != "succeeded" {
		t.Errorf("approved payment: %+v", got)
	}

	// The ledger's invariants hold.
	dbURL, err := os.ReadFile(urlFile(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "verify", "--full", "--database-url", string(dbURL)); code != 0 {
		t.Errorf("paystream verify: exit %d\n%s%s", code, out, errOut)
	}
	p.stop(t, os.Interrupt)
}
