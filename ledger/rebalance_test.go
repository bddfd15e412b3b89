package ledger

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// A campaign budget that checks each shard on its own pays rewards from four partitions
// at once and never more than it holds.
func TestShardDebitsBudget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	budget := f.system(CampaignBudget, "spring", Rules{NoOverdraft: true, Shards: 4, ShardDebits: true})
	customer := f.wallet("0")
	f.mustPost(Settlement(f.id("fund"), f.safe.ID, budget.ID, d("100"), "USD")) // lands on one shard
	reward := func(partition int, amount string) error {
		_, err := f.l.PostBatch(f.ctx, []Posting{{PaymentID: f.id("reward"), Transfers: []Transfer{
			{Code: CodeReward, Debit: budget.ID, Credit: customer.ID, Amount: d(amount), Currency: "USD"}}}}, BatchOptions{Partition: partition})
		return err
	}
	rs, err := f.l.PostBatch(f.ctx, []Posting{{PaymentID: "dry-shard", Transfers: []Transfer{
		{Code: CodeReward, Debit: budget.ID, Credit: customer.ID, Amount: d("1"), Currency: "USD"}}}}, BatchOptions{Partition: 1})
	if err != nil || !errors.Is(rs[0].Err, ErrInsufficientFunds) {
		t.Fatalf("debit on an empty shard: %v %v", rs[0].Err, err)
	}
	ids, err := f.l.Rebalance(f.ctx, budget.ID)
	if err != nil || len(ids) != 3 {
		t.Fatalf("rebalance wrote %d transfers (%v), want 3", len(ids), err)
	}
	if again, err := f.l.Rebalance(f.ctx, budget.ID); err != nil || len(again) != 0 {
		t.Fatalf("second rebalance: %v %v", again, err)
	}
	// Both sides of a move between shards show on the statement, one line per page.
	var lines []StatementLine
	q := StatementQuery{Limit: 1}
	for {
		p, err := f.l.Statement(f.ctx, budget.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, p.Lines...)
		if p.Next == "" || len(lines) > 20 {
			break
		}
		q.Cursor = p.Next
	}
	total := d("0")
	for _, l := range lines {
		total = total.Add(l.Posted)
	}
	if len(lines) != 7 || !total.Equal(d("100")) {
		t.Fatalf("%d statement lines summing to %s, want 7 and 100", len(lines), total)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	paid := map[int]int{}
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 30 {
				rs, err := f.l.PostBatch(f.ctx, []Posting{{PaymentID: f.id("reward"), Transfers: []Transfer{
					{Code: CodeReward, Debit: budget.ID, Credit: customer.ID, Amount: d("1"), Currency: "USD"}}}}, BatchOptions{Partition: p})
				if err != nil {
					t.Error(err)
					return
				}
				if rs[0].Err == nil {
					mu.Lock()
					paid[p]++
					mu.Unlock()
				} else if !errors.Is(rs[0].Err, ErrInsufficientFunds) {
					t.Error(rs[0].Err)
				}
			}
		}()
	}
	wg.Wait()
	if fmt.Sprint(paid) != "map[0:25 1:25 2:25 3:25]" {
		t.Fatalf("rewards paid per partition %v, want 25 each", paid)
	}
	if got := f.available(budget); !got.IsZero() {
		t.Fatalf("budget left %s", got)
	}
	if err := reward(2, "0.01"); err != nil {
		t.Fatal(err)
	}
	if got := f.available(customer); !got.Equal(d("100")) {
		t.Fatalf("customer got %s, want 100", got)
	}
	if _, err := f.l.OpenSystemAccount(f.ctx, f.sub, CampaignBudget, "USD", "bad", Rules{NoOverdraft: true, ShardDebits: true}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("shard debits without shards: %v", err)
	}
	f.verify()
}
