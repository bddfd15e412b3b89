package connectors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/schemas"
)

// slowBank answers after a pause, counting its calls per key and how many were open at
// once; it cannot be reached for the keys in down.
type slowBank struct {
	mu      sync.Mutex
	calls   map[string]int
	open    atomic.Int32
	maxOpen atomic.Int32
	down    map[string]bool
}

func (b *slowBank) Name() string { return "bank" }

func (b *slowBank) Execute(_ context.Context, req *schemas.ConnectorRequest) (Answer, error) {
	n := b.open.Add(1)
	defer b.open.Add(-1)
	for m := b.maxOpen.Load(); n > m && !b.maxOpen.CompareAndSwap(m, n); m = b.maxOpen.Load() {
	}
	time.Sleep(5 * time.Millisecond)
	b.mu.Lock()
	b.calls[req.IdempotencyKey]++
	b.mu.Unlock()
	if b.down[req.IdempotencyKey] {
		return Answer{}, errors.New("bank unreachable")
	}
	return Answer{Status: Succeeded, ExternalReference: "ref-" + req.IdempotencyKey}, nil
}

func request(key string) *processors.Input {
	return &processors.Input{Value: &schemas.ConnectorRequest{
		Meta:      schemas.Meta{EventID: "ev-" + key, PaymentID: "pay-" + key},
		Connector: "bank", Operation: OpCollect, IdempotencyKey: key,
		Amount: schemas.Money{Amount: decimal.RequireFromString("10.00"), Currency: "USD"},
	}}
}

func TestBatchCallsTheBankConcurrentlyAndAnswersInOrder(t *testing.T) {
	bank := &slowBank{calls: map[string]int{}, down: map[string]bool{"k7": true}}
	s := NewStage(bank)
	var ins []*processors.Input
	for i := range 200 {
		ins = append(ins, request(fmt.Sprintf("k%d", i)))
	}
	ins = append(ins, request("k3")) // a redelivered request: one call
	ctx := context.Background()
	if err := s.Prepare(ctx, ins); err != nil {
		t.Fatal(err)
	}
	if m := bank.maxOpen.Load(); m < 2 || m > MaxInFlight {
		t.Errorf("at most %d calls open at once, want 2 to %d", m, MaxInFlight)
	}
	for i, in := range ins {
		key := in.Value.(*schemas.ConnectorRequest).IdempotencyKey
		res, err := s.Process(ctx, in, nil)
		if key == "k7" {
			if err == nil || processors.IsPermanent(err) {
				t.Errorf("unreachable bank: got %v, want a transient error", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		out := res.Outputs[0].Value.(*schemas.ConnectorResult)
		if out.PaymentID != "pay-"+key || out.Status != Succeeded || out.ExternalReference != "ref-"+key {
			t.Errorf("record %d: result %+v for key %s", i, out, key)
		}
	}
	for i := range 200 {
		if n := bank.calls[fmt.Sprintf("k%d", i)]; n != 1 {
			t.Errorf("key k%d called %d times, want once", i, n)
		}
	}
	// A request Prepare did not see is called when it is processed.
	if _, err := s.Process(ctx, request("late"), nil); err != nil || bank.calls["late"] != 1 {
		t.Errorf("unprepared request: %v, %d calls", err, bank.calls["late"])
	}
}
