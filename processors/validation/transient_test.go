package validation

import (
	"testing"

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
	st, err := New(f.ctx, pool, l, Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPayment(from(f.wallet()), to(f.wallet()))
	pool.Close()
	res, err := st.Process(f.ctx, &processors.Input{Value: p}, nil)
	if err == nil || processors.IsPermanent(err) || len(res.Outputs) != 0 {
		t.Errorf("Process with the database gone: %+v, %v; want a transient error", res, err)
	}
	if _, err := st.Process(f.ctx, &processors.Input{Value: "not a payment"}, nil); !processors.IsPermanent(err) {
		t.Errorf("Process of a non-payment: %v, want a permanent error", err)
	}
}
