package ledger

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/paystream/paystream/internal/testenv"
)

// A posting transaction looks its batch's payment ids up in postings while it holds its
// balance rows. On a table of 20,000 rows the planner would rather read the whole table
// than probe the key 300 times, unless the statement gives it no choice.
func TestStoredPostingsAreProbedByKey(t *testing.T) {
	db := testenv.Postgres(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO postings (payment_id, digest, status)
		SELECT 'pay_' || g, '\x00', 'posted' FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE postings`); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 300 {
		ids = append(ids, fmt.Sprintf("pay_%d", i*131+7)) // 153 of them stored (up to 20,000)
	}
	plan := testenv.Plan(t, db.Pool, storedPostingsSQL, textArray(ids))
	if strings.Contains(plan, "Seq Scan on postings") || !strings.Contains(plan, "postings_pkey") {
		t.Fatalf("stored postings not looked up by key:\n%s", plan)
	}
	b := &pgx.Batch{}
	b.Queue(storedPostingsSQL, textArray(ids))
	br := db.Pool.SendBatch(ctx, b)
	found, err := readStored(br)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, id := range ids {
		var n int
		if _, err := fmt.Sscanf(id, "pay_%d", &n); err != nil {
			t.Fatal(err)
		}
		if n <= 20000 {
			want++
			if _, ok := found[id]; !ok {
				t.Errorf("stored posting %s not found", id)
			}
		}
	}
	if len(found) != want {
		t.Errorf("found %d stored postings, want %d", len(found), want)
	}
}
