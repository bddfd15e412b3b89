package ledger

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

func TestStatementPagesAndBalanceAt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice, bob := f.wallet("100"), f.wallet("0")
	var marks []time.Time
	for range 5 {
		f.mustPost(f.p2p(f.id("st"), alice, bob, "10", "1", "0.09"))
		marks = append(marks, time.Now())
	}
	var lines []StatementLine
	q := StatementQuery{Limit: 4}
	for pages := 0; ; pages++ {
		p, err := f.l.Statement(f.ctx, alice.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, p.Lines...)
		if p.Next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		q.Cursor = p.Next
	}
	// Funding plus three lines per transfer.
	if len(lines) != 16 {
		t.Fatalf("%d lines, want 16", len(lines))
	}
	if last := lines[len(lines)-1]; !last.Balance.Equal(d("44.55")) || last.Code != CodeVAT || !last.Posted.Equal(d("-0.09")) {
		t.Fatalf("last line %+v", last)
	}
	for i := 1; i < len(lines); i++ {
		if !lines[i-1].Balance.Add(lines[i].Posted).Equal(lines[i].Balance) {
			t.Fatalf("running balance breaks at line %d: %+v after %+v", i, lines[i], lines[i-1])
		}
	}
	at, err := f.l.BalanceAt(f.ctx, alice.ID, marks[1])
	if err != nil {
		t.Fatal(err)
	}
	if !at.Posted.Equal(d("77.82")) {
		t.Fatalf("alice after two transfers: %s, want 77.82", at.Posted)
	}
	// The fee revenue account is sharded; its balance at a time sums its shards.
	at, err = f.l.BalanceAt(f.ctx, f.fees.ID, marks[4])
	if err != nil || !at.Posted.Equal(d("5")) {
		t.Fatalf("fee revenue %s, %v; want 5", at.Posted, err)
	}
	if _, err := f.l.Statement(f.ctx, alice.ID, StatementQuery{Cursor: "garbage!"}); err == nil {
		t.Fatal("bad cursor accepted")
	}
}

// A cursor the API did not give out is refused as invalid, before the query: not
// later, as a server error of the database or of the driver.
func TestStatementRefusesCursorsItDidNotGiveOut(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice := f.wallet("100")
	raw := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	now := time.Now().UnixMicro()
	for _, tt := range []struct{ name, cursor string }{
		{"not base64", "garbage!"},
		{"two fields", raw("1:2")},
		{"a plus sign", raw(fmt.Sprintf("+%d:1:0", now))},
		{"leading zeros", raw(fmt.Sprintf("%d:007:0", now))},
		{"a shard no smallint holds", raw(fmt.Sprintf("%d:1:70000", now))},
		{"a negative shard", raw(fmt.Sprintf("%d:1:-1", now))},
		{"after year 9999", raw(fmt.Sprintf("%d:1:0", int64(1)<<62))},
		{"before year 1", raw(fmt.Sprintf("%d:1:0", -(int64(1) << 62)))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.l.Statement(f.ctx, alice.ID, StatementQuery{Cursor: tt.cursor}); !errors.Is(err, ErrInvalid) {
				t.Errorf("cursor %q: %v, want ErrInvalid", tt.cursor, err)
			}
		})
	}
	// Cursors as the API gives them out, at the edges of what the checks let through, run
	// their query: what decodeCursor takes, PostgreSQL takes.
	for _, c := range []string{
		encodeCursor(time.Now(), 1, 3),
		encodeCursor(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), math.MinInt64, 0),
		encodeCursor(time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), math.MaxInt64, math.MaxInt16),
	} {
		if _, err := f.l.Statement(f.ctx, alice.ID, StatementQuery{Cursor: c}); err != nil {
			t.Errorf("cursor %q as the API gives out: %v", c, err)
		}
	}
}

// FuzzDecodeCursor: any string is refused or is exactly what encodeCursor makes of what
// it decodes to, with a shard a smallint holds and a time PostgreSQL holds.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(time.Date(2026, 12, 7, 10, 0, 0, 123000, time.UTC), 42, 3))
	f.Add(encodeCursor(time.Unix(0, 0), 1, 0))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte("1:2:70000")))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte("-9223372036854775808:0:0")))
	f.Add("garbage!")
	f.Fuzz(func(t *testing.T, c string) {
		at, id, shard, err := decodeCursor(c)
		if err != nil {
			return
		}
		if shard < 0 || shard > math.MaxInt16 || at.Year() < 1 || at.Year() > 9999 {
			t.Fatalf("%q decoded to shard %d at %v", c, shard, at)
		}
		if again := encodeCursor(at, id, shard); again != c {
			t.Fatalf("%q decoded to (%v, %d, %d), which encodes as %q", c, at, id, shard, again)
		}
	})
}
