package risk

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors"
)

// TestDatabaseErrorsAreTransient: a record the stage cannot check for want of the
// database is retried by the runner, never rejected or dead-lettered.
func TestDatabaseErrorsAreTransient(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool, err := pgxpool.New(f.ctx, f.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.New(f.ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	st, err := New(f.ctx, pool, l, Config{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := f.wallet(1)
	p := newTestPayment(from(w))
	pool.Close()
	state := mapState{}
	res, err := st.Process(f.ctx, &processors.Input{Value: p}, state)
	if err == nil || processors.IsPermanent(err) || len(res.Outputs) != 0 {
		t.Errorf("Process with the database gone: %+v, %v; want a transient error", res, err)
	}
	if len(state) != 0 {
		t.Errorf("a failed screening changed the state: %v", state)
	}
	if _, err := st.Process(f.ctx, &processors.Input{Value: "not a payment"}, nil); !processors.IsPermanent(err) {
		t.Errorf("Process of a non-payment: %v, want a permanent error", err)
	}
}
