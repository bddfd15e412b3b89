package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// paystream run as its own process: it posts what reaches payments.routed and stops
// cleanly on SIGTERM.
func TestRunPostsAndStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.Postgres(t)
	k := testenv.NewKafka(t, testenv.Partitions(2))
	l, err := ledger.New(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CreateSubsidiary(ctx, ledger.Subsidiary{ID: "T1", Name: "t", BaseCurrency: "USD"}); err != nil {
		t.Fatal(err)
	}
	var refs []string
	for range 2 {
		u, _ := l.CreateUser(ctx, ledger.User{Kind: ledger.Customer, DisplayName: "x"})
		w, _ := l.CreateWallet(ctx, ledger.Wallet{UserID: u.ID, Subsidiary: "T1"})
		if _, err := l.OpenWalletAccount(ctx, w.ID, "USD", ledger.Main, ledger.WalletRules); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ledger.WalletRef(w.ID))
	}

	cmd := exec.Command(os.Args[0], "run", "--stages", "posting", "--admin", "", "--instance-id", "run-test")
	cmd.Env = append(os.Environ(), "PAYSTREAM_RUN_MAIN=1", "PAYSTREAM_DATABASE_URL="+db.URL,
		"PAYSTREAM_KAFKA_BROKERS="+strings.Join(k.Brokers, ","))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})

	serde, _ := schemas.NewSerde(ctx, "")
	p := &schemas.Payment{Meta: schemas.Meta{EventID: "e1", PaymentID: "pay_run_1"}, CreatedAt: time.Now(),
		Subsidiary: "T1", Type: "transfer", PayerWallet: refs[0], PayeeWallet: refs[1],
		Amount: schemas.Money{Amount: decimal.RequireFromString("5"), Currency: "USD"},
		Fees:   []schemas.FeeLine{}, Route: &schemas.Route{Kind: "internal"}}
	b, err := serde.Encode(catalog.PaymentsRouted, p)
	if err != nil {
		t.Fatal(err)
	}
	cl := k.Client(t, kgo.ConsumeTopics(string(catalog.PaymentsOutcomes)), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: string(catalog.PaymentsRouted), Key: []byte(refs[0]), Value: b}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var o *schemas.PaymentOutcome
	for o == nil && fctx.Err() == nil {
		cl.PollFetches(fctx).EachRecord(func(r *kgo.Record) {
			v, err := serde.Decode(catalog.PaymentsOutcomes, r.Value)
			if err == nil {
				o = v.(*schemas.PaymentOutcome)
			}
		})
	}
	// No funds: the ledger refuses, and the refusal is the outcome.
	if o == nil || o.PaymentID != "pay_run_1" || o.ReasonCode != "insufficient_funds" {
		t.Fatalf("outcome %+v; output:\n%s", o, out.String())
	}

	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run exited with %v:\n%s", err, out.String())
		}
	case <-time.After(shutdownBudget + 2*time.Second):
		t.Fatalf("run did not stop within %s", shutdownBudget)
	}
	t.Logf("stopped in %s", time.Since(start).Round(time.Millisecond))
}
