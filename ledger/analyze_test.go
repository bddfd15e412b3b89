package ledger

import (
	"context"
	"slices"
	"testing"

	"github.com/paystream/paystream/internal/testenv"
)

// Autovacuum analyzes the payments' append-only tables once they have doubled, not every
// tenth of growth (migration 00041).
func TestAppendOnlyTablesAnalyzeOnceDoubled(t *testing.T) {
	db := testenv.Postgres(t)
	for _, table := range []string{"transfers", "postings", "payment_status", "payment_outcomes"} {
		var opts []string
		err := db.Pool.QueryRow(context.Background(),
			`SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = $1::regclass`, table).Scan(&opts)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(opts, "autovacuum_analyze_scale_factor=1.0") {
			t.Errorf("%s has storage options %v, want autovacuum_analyze_scale_factor=1.0", table, opts)
		}
	}
}
