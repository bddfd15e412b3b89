package ledger

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestPostP2PWithFeeAndVAT(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice, bob := f.wallet("100"), f.wallet("0")
	r := f.mustPost(f.p2p("p2p-1", alice, bob, "10.00", "0.50", "0.05"))
	if r.Status != Posted || len(r.TransferIDs) != 3 || r.Replayed {
		t.Fatalf("result %+v", r)
	}
	for _, c := range []struct {
		a    Account
		want string
	}{{alice, "89.45"}, {bob, "10"}, {f.fees, "0.5"}, {f.vat, "0.05"}} {
		if got := f.available(c.a); !got.Equal(d(c.want)) {
			t.Errorf("account %s: available %s, want %s", c.a.Purpose, got, c.want)
		}
	}
	ts, err := f.l.PaymentTransfers(f.ctx, "p2p-1")
	if err != nil || len(ts) != 3 || ts[1].Code != CodeFee || !ts[2].Amount.Equal(d("0.05")) {
		t.Fatalf("transfers %+v %v", ts, err)
	}
	f.verify()
}

func TestPostIsIdempotentByPaymentID(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice, bob := f.wallet("100"), f.wallet("0")
	p := f.p2p("idem-1", alice, bob, "10", "1", "0.1")
	first := f.mustPost(p)
	again := f.mustPost(p)
	if !again.Replayed || fmt.Sprint(again.TransferIDs) != fmt.Sprint(first.TransferIDs) {
		t.Fatalf("replay %+v, first %+v", again, first)
	}
	if got := f.available(alice); !got.Equal(d("88.9")) {
		t.Fatalf("alice %s after replay, want 88.9 (posted once)", got)
	}
	changed := f.p2p("idem-1", alice, bob, "11", "1", "0.1")
	if _, err := f.l.Post(f.ctx, changed); !errors.Is(err, ErrIdempotencyConflict) {
		t.Fatalf("same id, other content: %v", err)
	}
	// The same amount written with another scale is the same content.
	p.Transfers[0].Amount = d("10.00")
	if r := f.mustPost(p); !r.Replayed {
		t.Fatalf("10.00 vs 10 treated as different: %+v", r)
	}
	f.verify()
}

func TestPostRejections(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	eur := f.wallet("0", withRules(WalletRules), func(s *walletSpec) { s.currency = "EUR" })
	restricted := f.wallet("50", withPurpose(Restricted, Rules{NoOverdraft: true, AllowedMCC: []string{"5411"}}))
	creditOnly := f.wallet("0", withRules(Rules{CreditOnly: true}))
	overdraft := f.wallet("0", withRules(Rules{NoOverdraft: true, MinBalance: d("-20")}))
	closed := f.wallet("0")
	if err := f.l.CloseAccount(f.ctx, closed.ID); err != nil {
		t.Fatal(err)
	}
	frozen := f.wallet("30")
	acc, _ := f.l.GetAccount(f.ctx, frozen.ID)
	if err := f.l.SetWalletStatus(f.ctx, acc.Wallet, WalletFrozen); err != nil {
		t.Fatal(err)
	}
	payee := f.wallet("0")
	pay := func(from, to Account, amount, cur, mcc string) Posting {
		return Posting{PaymentID: f.id("rej"), Transfers: []Transfer{{Code: CodePrincipal, Debit: from.ID, Credit: to.ID,
			Amount: d(amount), Currency: cur, MCC: mcc}}}
	}
	cases := []struct {
		name string
		p    Posting
		want error
	}{
		{"insufficient funds", pay(payee, f.wallet("5"), "5.01", "USD", ""), ErrInsufficientFunds},
		{"too many decimals", pay(f.wallet("5"), payee, "1.001", "USD", ""), ErrTooManyDecimals},
		{"zero amount", pay(f.wallet("5"), payee, "0", "USD", ""), ErrNotPositive},
		{"negative amount", pay(f.wallet("5"), payee, "-1", "USD", ""), ErrNotPositive},
		{"unknown currency", pay(f.wallet("5"), payee, "1", "XXX", ""), ErrUnknownCurrency},
		{"currency mismatch", pay(f.safe, eur, "1", "USD", ""), ErrCurrencyMismatch},
		{"unknown account", pay(f.safe, Account{ID: 999999}, "1", "USD", ""), ErrUnknownAccount},
		{"closed credit", pay(f.safe, closed, "1", "USD", ""), ErrAccountClosed},
		{"frozen debit", pay(frozen, payee, "1", "USD", ""), ErrAccountFrozen},
		{"credit only", pay(creditOnly, payee, "1", "USD", ""), ErrCreditOnly},
		{"mcc not allowed", pay(restricted, payee, "1", "USD", "7995"), ErrMCCNotAllowed},
		{"beyond overdraft limit", pay(overdraft, payee, "20.01", "USD", ""), ErrInsufficientFunds},
		{"same account", pay(payee, payee, "1", "USD", ""), ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := f.l.Post(f.ctx, c.p)
			if !errors.Is(err, c.want) || r.Status != Rejected {
				t.Fatalf("got %v (status %q), want %v", err, r.Status, c.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("error %v names no field", err)
			}
			// A rejection is final: the replay returns it, still matching the sentinel.
			r2, err2 := f.l.Post(f.ctx, c.p)
			if !errors.Is(err2, c.want) || !r2.Replayed || r2.Status != Rejected {
				t.Fatalf("replay: %v %+v", err2, r2)
			}
		})
	}
	// What is allowed next to the refusals above.
	for _, p := range []Posting{
		pay(restricted, payee, "1", "USD", "5411"),
		pay(overdraft, payee, "20", "USD", ""),
		pay(f.safe, frozen, "1", "USD", ""), // a frozen wallet still receives
	} {
		f.mustPost(p)
	}
	if got := f.available(overdraft); !got.Equal(d("-20")) {
		t.Fatalf("overdraft account at %s, want -20", got)
	}
	f.verify()
}

func TestPostLinkedTransfersAreAllOrNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice, bob := f.wallet("10"), f.wallet("0")
	// Principal fits, fee does not: nothing may move.
	_, err := f.l.Post(f.ctx, f.p2p(f.id("aon"), alice, bob, "10", "0.5", "0.05"))
	if !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("got %v", err)
	}
	if a, b := f.available(alice), f.available(bob); !a.Equal(d("10")) || !b.IsZero() {
		t.Fatalf("partial posting: alice %s bob %s", a, b)
	}
	f.verify()
}

func TestPostBatchEachPostingOnItsOwn(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice, bob := f.wallet("25"), f.wallet("0")
	var ps []Posting
	for i := range 4 {
		ps = append(ps, Posting{PaymentID: fmt.Sprintf("b-%d", i), Transfers: []Transfer{
			{Code: CodePrincipal, Debit: alice.ID, Credit: bob.ID, Amount: d("10"), Currency: "USD"}}})
	}
	ps = append(ps, ps[0]) // a duplicate inside the batch
	rs, err := f.l.PostBatch(f.ctx, ps, BatchOptions{Partition: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := []Status{Posted, Posted, Rejected, Rejected, Posted}
	for i, r := range rs {
		if r.Status != want[i] {
			t.Errorf("posting %d: %s (%v), want %s", i, r.Status, r.Err, want[i])
		}
	}
	if !rs[4].Replayed || fmt.Sprint(rs[4].TransferIDs) != fmt.Sprint(rs[0].TransferIDs) {
		t.Errorf("duplicate in batch: %+v", rs[4])
	}
	if !errors.Is(rs[2].Err, ErrInsufficientFunds) {
		t.Errorf("posting 2: %v", rs[2].Err)
	}
	if got := f.available(alice); !got.Equal(d("5")) {
		t.Fatalf("alice %s, want 5", got)
	}
	f.verify()
}

// Fifty concurrent debits on a wallet that covers ten: exactly ten succeed.
func TestDoubleSpend(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	payer, payee := f.wallet("100"), f.wallet("0")
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.l.Post(f.ctx, Posting{PaymentID: fmt.Sprintf("ds-%d", i), Transfers: []Transfer{
				{Code: CodePrincipal, Debit: payer.ID, Credit: payee.ID, Amount: d("10"), Currency: "USD"}}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrInsufficientFunds):
				refused++
			default:
				t.Errorf("posting %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if ok != 10 || refused != 40 {
		t.Fatalf("%d succeeded, %d refused; want 10 and 40", ok, refused)
	}
	if got := f.available(payer); !got.IsZero() {
		t.Fatalf("payer left with %s", got)
	}
	f.verify()
}

// Two workers posting the same batch at once (a rebalance can do that): every posting
// lands once, and each worker gets the same answer.
func TestConcurrentSameBatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var wallets []Account
	for range 10 {
		wallets = append(wallets, f.wallet("20"))
	}
	var ps []Posting
	for i := range 60 {
		ps = append(ps, f.p2p(fmt.Sprintf("same-%d", i), wallets[i%10], wallets[(i+3)%10], "1", "0.1", "0.01"))
	}
	var wg sync.WaitGroup
	out := make([][]Result, 4)
	for w := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs, err := f.l.PostBatch(f.ctx, ps, BatchOptions{Partition: w})
			if err != nil {
				t.Error(err)
			}
			out[w] = rs
		}()
	}
	wg.Wait()
	fresh := 0
	for _, rs := range out {
		for i, r := range rs {
			if r.Status != Posted || fmt.Sprint(r.TransferIDs) != fmt.Sprint(out[0][i].TransferIDs) {
				t.Fatalf("posting %d: %+v vs %+v", i, r, out[0][i])
			}
			if !r.Replayed {
				fresh++
			}
		}
	}
	if fresh != len(ps) {
		t.Fatalf("%d postings applied, want %d", fresh, len(ps))
	}
	f.verify()
}

// Beneath the ledger's own check, the database refuses a balance row below its floor:
// even a faulty writer cannot overdraw a no-overdraft account.
func TestDatabaseRefusesOverdraw(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	w := f.wallet("10")
	_, err := f.db.Pool.Exec(f.ctx, `UPDATE account_balances SET debits_posted = debits_posted + 10.01 WHERE account_id = $1`, w.ID)
	if err == nil || !strings.Contains(err.Error(), "account_balances_check") {
		t.Fatalf("overdrawing update: %v", err)
	}
	allow := f.wallet("10", withRules(Rules{}))
	if _, err := f.db.Pool.Exec(f.ctx, `UPDATE account_balances SET debits_posted = debits_posted + 20 WHERE account_id = $1`, allow.ID); err != nil {
		t.Fatalf("an account without a rule may overdraw: %v", err)
	}
}

// A payment id stored by another transaction after the batch looked it up makes the
// batch's outcome insert fail; the batch is rolled back and decided again, and answers
// from the stored outcome. The other transaction commits only once the batch waits on it.
func TestOutcomeRaceDecidesAgain(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice, bob := f.wallet("100"), f.wallet("0")
	p := f.p2p("race-1", alice, bob, "10", "1", "0.1")
	// Stored by "someone else" with other content, so the replay is a conflict.
	rs := raceOutcome(t, f, f.l, []Posting{p}, "race-1", []byte{0}, Rejected)
	if r := rs[0]; !r.Replayed || !errors.Is(r.Err, ErrIdempotencyConflict) {
		t.Fatalf("result %+v, want a replayed idempotency conflict", r)
	}
	if got := f.available(alice); !got.Equal(d("100")) {
		t.Fatalf("alice %s, want 100: the rolled-back batch must not have moved funds", got)
	}
	f.verify()
}

// The race again, stored with the batch's own content, on a pool of one connection: the
// failed attempt gives its connection back out of the aborted transaction, the second
// answers the stored posting and posts the rest of the batch, and the id holds one
// posting and no transfer of the batch.
func TestOutcomeRaceRetriesOnItsConnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var writes atomic.Int32
	l, pool := probeLedger(t, f, func(b *pgx.Batch) {
		if strings.Contains(b.QueuedQueries[0].SQL, "INSERT INTO postings") {
			writes.Add(1)
		}
	})
	alice, bob := f.wallet("100"), f.wallet("0")
	ps := []Posting{f.p2p("race-2", alice, bob, "10", "1", "0.1"), f.p2p("race-3", alice, bob, "20", "1", "0.1")}
	pid := backendPID(t, f, pool)
	rs := raceOutcome(t, f, l, ps, "race-2", ps[0].digest(), Posted)
	if r := rs[0]; !r.Replayed || r.Status != Posted || r.Err != nil {
		t.Fatalf("raced posting %+v, want a replay of the stored one", r)
	}
	if r := rs[1]; r.Replayed || r.Status != Posted || len(r.TransferIDs) != 3 {
		t.Fatalf("other posting %+v, want it posted", r)
	}
	if n := writes.Load(); n != 2 {
		t.Fatalf("%d write batches, want 2 (the raced one and the retry)", n)
	}
	if got := backendPID(t, f, pool); got != pid {
		t.Fatalf("connection replaced (backend %d, was %d): it went back inside the transaction", got, pid)
	}
	var postings, transfers int
	if err := f.db.Pool.QueryRow(f.ctx, `SELECT (SELECT count(*) FROM postings WHERE payment_id = 'race-2'),
		(SELECT count(*) FROM transfers WHERE payment_id = 'race-2')`).Scan(&postings, &transfers); err != nil {
		t.Fatal(err)
	}
	if postings != 1 || transfers != 0 {
		t.Fatalf("race-2 has %d postings and %d transfers, want 1 and 0", postings, transfers)
	}
	if got := f.available(alice); !got.Equal(d("78.9")) {
		t.Fatalf("alice %s, want 78.9: only race-3 moves funds", got)
	}
	f.verify()
}

// Once warm (account facts cached, statements prepared), a batch costs two round trips:
// BEGIN rides with the reads, COMMIT with the writes. Every round trip starts with one
// write of the client's buffered messages, so the writes on the socket count them.
func TestPostBatchTakesTwoRoundTrips(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var writes atomic.Int32
	l, _ := f.ledgerOn(func(cfg *pgxpool.Config) {
		dial := cfg.ConnConfig.DialFunc
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			return writeCounter{c, &writes}, err
		}
	})
	alice, bob := f.wallet("100"), f.wallet("0")
	for i := range 3 {
		writes.Store(0)
		if _, err := l.PostBatch(f.ctx, []Posting{f.p2p(f.id("rt"), alice, bob, "1", "0.1", "0.01")}, BatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if n := writes.Load(); i > 0 && n != 2 {
			t.Fatalf("batch %d took %d round trips, want 2", i, n)
		}
	}
}

type writeCounter struct {
	net.Conn
	n *atomic.Int32
}

func (c writeCounter) Write(b []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(b)
}

// raceOutcome posts ps with l while another transaction stores id (with digest and
// status), committing only once the batch's outcome insert waits on it, and returns
// what the batch answered.
func raceOutcome(t *testing.T, f *fixture, l *Ledger, ps []Posting, id string, digest []byte, status Status) []Result {
	t.Helper()
	tx, err := f.db.Pool.Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(f.ctx)
	if _, err := tx.Exec(f.ctx, `INSERT INTO postings (payment_id, digest, status) VALUES ($1, $2, $3)`, id, digest, status); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var rs []Result
	go func() {
		var err error
		rs, err = l.PostBatch(f.ctx, ps, BatchOptions{})
		done <- err
	}()
	for waiting := false; !waiting; {
		if err := f.db.Pool.QueryRow(f.ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO postings%')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("batch finished before the other transaction committed: %v %+v", err, rs)
		default:
		}
	}
	if err := tx.Commit(f.ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return rs
}
