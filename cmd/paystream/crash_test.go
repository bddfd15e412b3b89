package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/ingress/client"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// stageWorker is a `paystream run` process running every stage.
type stageWorker struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startWorker(t *testing.T, env []string) *stageWorker {
	t.Helper()
	w := &stageWorker{cmd: exec.Command(os.Args[0], "run", "--admin", "", "--instance-id", "crash-w1"), done: make(chan struct{})}
	w.cmd.Env = append(os.Environ(), append(env, "PAYSTREAM_RUN_MAIN=1", "PAYSTREAM_LOG_LEVEL=warn")...)
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() { _ = w.cmd.Process.Kill(); <-w.done })
	return w
}

func (w *stageWorker) kill() {
	_ = w.cmd.Process.Kill()
	<-w.done
}

// Stage workers killed with SIGKILL mid-run and restarted under the same instance id
// lose and duplicate nothing: every payment gets exactly one outcome, the ledger holds
// exactly what the succeeded payments moved, and a poison record goes to the DLQ while
// the pipeline keeps moving.
func TestStagesKilledMidRunLoseAndDuplicateNothing(t *testing.T) {
	t.Parallel()
	p := startDevProcess(t, "--ephemeral", "--no-stages")
	p.waitHealthy(t)
	dataDir := p.bannerField(t, "data")[0]
	bankURL := p.bannerField(t, "bank")[2]
	dbURL, err := os.ReadFile(urlFile(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PAYSTREAM_DATABASE_URL=" + string(dbURL), "PAYSTREAM_KAFKA_BROKERS=" + p.kafka, "PAYSTREAM_BANK_URL=" + bankURL}
	w := startWorker(t, env)

	c, err := client.FromFile(filepath.Join(dataDir, "dev-channel.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := &scenario{t: t, c: c}
	alice, bob := s.wallet("customer", 3), s.wallet("customer", 3)
	s.expect(s.pay(`{"type":"topup","amount":"1000.00","currency":"USD","destination_wallet_id":"`+alice+`"}`), "succeeded", "")

	// A record no stage can decode, in the middle of the traffic.
	kc, err := kgo.NewClient(kgo.SeedBrokers(p.kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	if err := kc.ProduceSync(context.Background(), &kgo.Record{Topic: string(catalog.PaymentsRequested), Key: []byte(alice), Value: []byte("not avro")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	const n = 300
	ids := make([]string, n)
	var wg sync.WaitGroup
	var next sync.Mutex
	i := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				k := i
				i++
				next.Unlock()
				if k >= n {
					return
				}
				var acc struct{ ID string }
				s.post("/v1/payments", `{"type":"transfer","amount":"1.00","currency":"USD","source_wallet_id":"`+alice+`","destination_wallet_id":"`+bob+`"}`, &acc)
				ids[k] = acc.ID
			}
		}()
	}
	// Kill the worker three times while payments flow, restarting it each time.
	for range 3 {
		time.Sleep(400 * time.Millisecond)
		w.kill()
		w = startWorker(t, env)
	}
	wg.Wait()

	succeeded := 0
	for _, id := range ids {
		got := s.payment(id, "succeeded", "rejected", "failed")
		switch got.Status {
		case "succeeded":
			succeeded++
		default:
			t.Errorf("payment %s: %s/%s", id, got.Status, got.ReasonCode)
		}
	}
	// Each transfer costs 1.00 plus the minimum fee 0.10 and its VAT 0.01.
	want := decimal.RequireFromString("1000").Sub(decimal.NewFromInt(int64(succeeded)).Mul(decimal.RequireFromString("1.11")))
	if got, wantS := s.balance(alice), want.StringFixed(2)+"/"+want.StringFixed(2); got != wantS {
		t.Errorf("alice %s, want %s after %d transfers", got, wantS, succeeded)
	}
	if got, wantS := s.balance(bob), fmt.Sprintf("%d.00/%d.00", succeeded, succeeded); got != wantS {
		t.Errorf("bob %s, want %s", got, wantS)
	}

	// Exactly one outcome per payment on payments.outcomes, read committed.
	serde, _ := schemas.NewSerde(context.Background(), "")
	oc, err := kgo.NewClient(kgo.SeedBrokers(p.kafka), kgo.ConsumeTopics(string(catalog.PaymentsOutcomes)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()
	counts := map[string]int{}
	wanted := map[string]bool{}
	for _, id := range ids {
		wanted[id] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seen := 0
	for seen < n && ctx.Err() == nil {
		oc.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			v, err := serde.Decode(catalog.PaymentsOutcomes, r.Value)
			if err != nil {
				t.Errorf("undecodable outcome: %v", err)
				return
			}
			if o := v.(*schemas.PaymentOutcome); wanted[o.PaymentID] {
				counts[o.PaymentID]++
				if counts[o.PaymentID] == 1 {
					seen++
				}
			}
		})
	}
	// Let a duplicate, if any, arrive too.
	late, lateCancel := context.WithTimeout(context.Background(), time.Second)
	oc.PollFetches(late).EachRecord(func(r *kgo.Record) {
		if v, err := serde.Decode(catalog.PaymentsOutcomes, r.Value); err == nil {
			if o := v.(*schemas.PaymentOutcome); wanted[o.PaymentID] {
				counts[o.PaymentID]++
			}
		}
	})
	lateCancel()
	for _, id := range ids {
		if counts[id] != 1 {
			t.Errorf("payment %s has %d outcomes, want exactly 1", id, counts[id])
		}
	}

	dlq := kgo.NewOffset().AtStart()
	dc, err := kgo.NewClient(kgo.SeedBrokers(p.kafka), kgo.ConsumeTopics(string(catalog.PaymentsRequested.DLQ())),
		kgo.ConsumeResetOffset(dlq), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	var poison []*kgo.Record
	for len(poison) == 0 && dctx.Err() == nil {
		poison = append(poison, dc.PollFetches(dctx).Records()...)
	}
	if len(poison) != 1 || string(poison[0].Value) != "not avro" {
		t.Errorf("DLQ holds %d records, want the poison one", len(poison))
	}

	if code, out, errOut := runCLI(t, "verify", "--full", "--database-url", string(dbURL)); code != 0 {
		t.Errorf("paystream verify: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("%d of %d transfers succeeded across 3 kills", succeeded, n)
	w.kill()
	p.stop(t, os.Interrupt)
}
