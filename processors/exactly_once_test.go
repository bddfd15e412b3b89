package processors

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/schemas/catalog"
)

const (
	topicIn  catalog.Topic = "test.in"
	topicMid catalog.Topic = "test.mid"
	topicOut catalog.Topic = "test.out"
	groupA   catalog.Group = "test.a"
	groupB   catalog.Group = "test.b"
)

// copyStage forwards each msg with one more hop, and calls onRecord for fault injection.
func copyStage(to catalog.Topic, onRecord func()) Stage {
	return StageFunc(func(_ context.Context, in *Input, _ State) (Result, error) {
		if onRecord != nil {
			onRecord()
		}
		m := in.Value.(msg)
		m.Hops++
		return Result{Outputs: []Output{{Topic: to, Value: m}}}, nil
	})
}

func copyHop(onRecord func()) Hop {
	return Hop{Stages: []Definition{{Name: "copy", Input: topicIn, Group: groupA,
		Outputs: []catalog.Topic{topicOut}, Stage: copyStage(topicOut, onRecord)}}}
}

// checkExactlyOnce asserts that out holds every produced msg once, in per-wallet order.
func checkExactlyOnce(t testing.TB, out []msg, produced map[string]int, wantHops int) {
	t.Helper()
	next := map[string]int{}
	var dups, gaps, total int
	for _, m := range out {
		total++
		switch {
		case m.Seq < next[m.Wallet]:
			dups++
		case m.Seq > next[m.Wallet]:
			gaps++
		}
		if m.Seq >= next[m.Wallet] {
			next[m.Wallet] = m.Seq + 1
		}
		if m.Hops != wantHops {
			t.Fatalf("msg %s went through %d hops, want %d", m.ID, m.Hops, wantHops)
		}
	}
	var missing int
	want := 0
	for w, n := range produced {
		want += n
		if next[w] != n {
			missing += n - next[w]
		}
	}
	if dups != 0 || gaps != 0 || missing != 0 || total != want {
		t.Fatalf("output: %d records for %d inputs; %d duplicates or reorders, %d gaps, %d missing at the end",
			total, want, dups, gaps, missing)
	}
}

// testCrashes copies n records while the worker is killed and restarted kills times. Odd
// kills land wherever the worker happens to be (processing, flushing, committing, polling);
// even kills land after a batch's outputs reached the broker and before its commit, so
// there is always uncommitted output for the fencing restart to abort.
func testCrashes(tb testing.TB, n, kills int, batch int) {
	c := newCluster(tb, 4)
	c.topics(tb, []catalog.Topic{topicIn, topicOut})
	produced := c.produce(tb, topicIn, n, 500, nil)
	m := testMetrics(tb)

	var processed atomic.Int64
	crashAt := make(chan struct{}, 1)
	every := int64(n / (kills + 1))
	hop := copyHop(func() {
		if processed.Add(1)%every == 0 {
			select {
			case crashAt <- struct{}{}:
			default:
			}
		}
	})
	cfg := testConfig(c, "worker-0", batch)
	crashBeforeCommit := func(after int64) func(*worker) {
		return func(w *worker) {
			w.beforeEnd = func(cl *kgo.Client) {
				if processed.Load() >= after {
					_ = cl.Flush(context.Background())
					w.kill()
				}
			}
		}
	}
	r := start(cfg, hop, m, quietLog())
	for k := 1; k <= kills; k++ {
		if k%2 == 1 {
			select {
			case <-crashAt:
			case <-time.After(60 * time.Second):
				tb.Fatalf("no progress before kill %d", k)
			}
			time.Sleep(time.Duration(k) * time.Millisecond)
			r.crash(tb)
		} else {
			select {
			case err := <-r.done:
				if !errors.Is(err, errKilled) {
					tb.Fatalf("worker ended with %v, want a kill before commit", err)
				}
				r.cancel()
			case <-time.After(60 * time.Second):
				tb.Fatalf("no kill before commit %d", k)
			}
		}
		// Same instance id: same static member, same transactional id.
		if k%2 == 1 && k < kills {
			r = start(cfg, hop, m, quietLog(), crashBeforeCommit(every*int64(k+1)))
		} else {
			r = start(cfg, hop, m, quietLog())
		}
	}
	c.waitCaughtUp(tb, groupA, topicIn, 120*time.Second)
	r.stop(tb)
	checkExactlyOnce(tb, decodeAll(tb, c.readAll(tb, topicOut)), produced, 1)
	if all := len(c.read(tb, topicOut, kgo.ReadUncommitted())); all <= n {
		tb.Errorf("%d records in the output including aborted ones: no kill left an open transaction", all)
	}
	if tb, ok := tb.(*testing.T); ok {
		tb.Logf("%d records, %d kills, %d stage calls", n, kills, processed.Load())
	}
}

func TestExactlyOnceAcrossCrashes(t *testing.T) {
	t.Parallel()
	testCrashes(t, 100_000, 6, 1000)
}

func TestExactlyOnceWithTwoWorkersOneKilled(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 4)
	c.topics(t, []catalog.Topic{topicIn, topicOut})
	produced := c.produce(t, topicIn, 40_000, 200, nil)
	m := testMetrics(t)

	var processed atomic.Int64
	halfway := make(chan struct{})
	hop := copyHop(func() {
		if processed.Add(1) == 10_000 {
			close(halfway)
		}
	})
	a := start(testConfig(c, "worker-a", 500), hop, m, quietLog())
	b := start(testConfig(c, "worker-b", 500), hop, m, quietLog())
	select {
	case <-halfway:
	case <-time.After(60 * time.Second):
		t.Fatal("no progress")
	}
	a.crash(t) // not restarted: b takes a's partitions after the session timeout
	c.waitCaughtUp(t, groupA, topicIn, 120*time.Second)
	b.stop(t)
	checkExactlyOnce(t, decodeAll(t, c.readAll(t, topicOut)), produced, 1)
}
