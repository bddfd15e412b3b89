package ledger

import (
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
