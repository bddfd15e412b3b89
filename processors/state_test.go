package processors

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/paystream/paystream/schemas/catalog"
)

// countStage counts each wallet's records in its state and writes the running count.
func countStage(onRecord func()) Stage {
	return StageFunc(func(_ context.Context, in *Input, st State) (Result, error) {
		if onRecord != nil {
			onRecord()
		}
		m := in.Value.(msg)
		var n uint64
		if b, ok := st.Get(m.Wallet); ok {
			n = binary.BigEndian.Uint64(b)
		}
		n++
		if err := st.Set(m.Wallet, binary.BigEndian.AppendUint64(nil, n)); err != nil {
			return Result{}, err
		}
		m.Count = int(n)
		m.Hops++
		return Result{Outputs: []Output{{Topic: topicOut, Value: m}}}, nil
	})
}

func countHop(onRecord func()) Hop {
	return Hop{Stages: []Definition{{Name: "count", Input: topicIn, Group: groupA, Stateful: true,
		Outputs: []catalog.Topic{topicOut}, Stage: countStage(onRecord)}}}
}

// checkCounts asserts that every wallet's counts run 1..n in order: a lost or replayed
// state update would skip or repeat a number.
func checkCounts(t testing.TB, out []msg, produced map[string]int) {
	t.Helper()
	last := map[string]int{}
	for _, m := range out {
		if m.Count != last[m.Wallet]+1 || m.Count != m.Seq+1 {
			t.Fatalf("wallet %s: count %d after %d at seq %d", m.Wallet, m.Count, last[m.Wallet], m.Seq)
		}
		last[m.Wallet] = m.Count
	}
	for w, n := range produced {
		if last[w] != n {
			t.Fatalf("wallet %s: final count %d, want %d", w, last[w], n)
		}
	}
}

// With TrimChangelogs the changelog loses its head every 25 transactions or so (the keys
// of a partition), in the middle of the kills and the rebalance; the counts must come out
// the same.
func TestStateSurvivesKillsRestartsAndRebalance(t *testing.T) {
	t.Parallel()
	for _, trim := range []bool{false, true} {
		t.Run(fmt.Sprintf("trim %v", trim), func(t *testing.T) {
			t.Parallel()
			testStateSurvives(t, trim)
		})
	}
}

func testStateSurvives(t *testing.T, trim bool) {
	c := newCluster(t, 4)
	c.topics(t, []catalog.Topic{topicIn, topicOut}, groupA)
	m := testMetrics(t)
	var processed atomic.Int64
	crashAt := make(chan struct{}, 1)
	hop := countHop(func() {
		if processed.Add(1)%4000 == 0 {
			select {
			case crashAt <- struct{}{}:
			default:
			}
		}
	})
	produced := c.produce(t, topicIn, 20_000, 100, nil)
	// Batches of 100 give each partition's changelog more transactions than its 25 keys
	// between the kills.
	cfgA, cfgB := testConfig(c, "worker-a", 100), testConfig(c, "worker-b", 100)
	cfgA.TrimChangelogs, cfgB.TrimChangelogs = trim, trim
	cfgA.trimFloor, cfgB.trimFloor = 8, 8

	a := start(cfgA, hop, m, quietLog())
	for k := range 3 {
		<-crashAt
		time.Sleep(time.Duration(k) * 2 * time.Millisecond)
		a.crash(t)
		a = start(cfgA, hop, m, quietLog())
	}
	c.waitCaughtUp(t, groupA, topicIn, 60*time.Second)

	// A second worker joins and takes half the partitions with their state; then a stops
	// and b takes everything.
	var byB atomic.Int64
	b := start(cfgB, countHop(func() { byB.Add(1) }), m, quietLog())
	produced = c.produce(t, topicIn, 10_000, 100, produced)
	c.waitCaughtUp(t, groupA, topicIn, 60*time.Second)
	sharedB := byB.Load()
	a.stop(t)
	produced = c.produce(t, topicIn, 10_000, 100, produced)
	c.waitCaughtUp(t, groupA, topicIn, 60*time.Second)
	b.stop(t)
	if sharedB == 0 || byB.Load()-sharedB < 10_000 {
		t.Errorf("worker b processed %d records while sharing and %d alone; want some, then all 10000",
			sharedB, byB.Load()-sharedB)
	}

	checkCounts(t, decodeAll(t, c.readAll(t, topicOut)), produced)

	// Trimming deleted the head of every changelog partition; the rest holds the state.
	starts, err := kadm.NewClient(c.k.Client(t)).ListStartOffsets(context.Background(), string(groupA.Changelog()))
	if err != nil {
		t.Fatal(err)
	}
	starts.Each(func(o kadm.ListedOffset) {
		if trimmed := o.Offset > 0; trimmed != trim {
			t.Errorf("changelog partition %d starts at %d; trimming %v", o.Partition, o.Offset, trim)
		}
	})

	// The changelog holds every wallet's final count.
	final := map[string]uint64{}
	for _, r := range c.readAll(t, groupA.Changelog()) {
		final[string(r.Key)] = binary.BigEndian.Uint64(r.Value)
	}
	for w, n := range produced {
		if final[w] != uint64(n) {
			t.Errorf("changelog: wallet %s at %d, want %d", w, final[w], n)
		}
	}
}

func TestStateRejectsOversizedEntries(t *testing.T) {
	s := newStore(4, 8)
	st := &recordState{s: s, k: stateKey{}}
	s.load(stateKey{}, map[string][]byte{})
	for _, tc := range []struct {
		key   string
		value []byte
		ok    bool
	}{
		{"w1", []byte("12345678"), true},
		{"w12345", []byte("1"), false},
		{"w1", []byte("123456789"), false},
	} {
		err := st.Set(tc.key, tc.value)
		if (err == nil) != tc.ok || (err != nil && !IsPermanent(err)) {
			t.Errorf("Set(%q, %d bytes) = %v, want ok=%v and a permanent error otherwise", tc.key, len(tc.value), err, tc.ok)
		}
	}
}

func TestStoreTransactionsCommitAndAbort(t *testing.T) {
	s := newStore(16, 16)
	k := stateKey{partition: 3}
	s.load(k, map[string][]byte{"a": []byte("1")})

	call := &recordState{s: s, k: k}
	_ = call.Set("a", []byte("2"))
	if v, _ := s.get(k, "a"); string(v) != "1" {
		t.Fatalf("a call's write is visible before the call succeeded: %q", v)
	}
	call.keep()
	if v, _ := s.get(k, "a"); string(v) != "2" {
		t.Fatalf("kept write not visible to the transaction: %q", v)
	}
	s.abort()
	if v, _ := s.get(k, "a"); string(v) != "1" {
		t.Fatalf("aborted write survived: %q", v)
	}

	call = &recordState{s: s, k: k}
	call.Delete("a")
	_ = call.Set("b", []byte("x"))
	call.keep()
	s.commit()
	if _, ok := s.get(k, "a"); ok {
		t.Error("deleted key still present after commit")
	}
	if v, _ := s.get(k, "b"); string(v) != "x" {
		t.Errorf("b = %q after commit, want x", v)
	}
	s.drop(3)
	if s.loaded(k) {
		t.Error("dropped partition still loaded")
	}
}
