package ingress

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// With linger, items arriving shortly after the first share its group; without, the first
// is written at once, alone.
func TestGroupsLinger(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		linger time.Duration
		first  int // the first group's size; all groups hold the five items
	}{
		{"no linger", 0, 1},
		{"linger", time.Second, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var sizes []int
			g := newGroups(1, 16, lingering{wait: tc.linger}, func(items []int) {
				mu.Lock()
				sizes = append(sizes, len(items))
				mu.Unlock()
			})
			g.add(0)
			time.Sleep(50 * time.Millisecond) // the writer has taken the first item

			for i := 1; i < 5; i++ {
				g.add(i)
			}
			g.close()
			mu.Lock()
			defer mu.Unlock()
			total := 0
			for _, n := range sizes {
				total += n
			}
			if len(sizes) == 0 || sizes[0] != tc.first || total != 5 {
				t.Errorf("groups of %v, want the first of %d and five items in all", sizes, tc.first)
			}
		})
	}
}

// With underway, a writer waits only for requests on their way: it writes once every one
// of them is in its group or has gone elsewhere, and at once when the group is large
// enough however many are on their way.
func TestGroupsLingerOnlyForRequestsUnderway(t *testing.T) {
	t.Parallel()
	var underway atomic.Int64
	written := make(chan []int, 8)
	g := newGroups(1, 16, lingering{wait: time.Hour, enough: 4, underway: func() int { return int(underway.Load()) }},
		func(items []int) { written <- items })
	defer g.close()
	next := func() []int {
		t.Helper()
		select {
		case items := <-written:
			return items
		case <-time.After(10 * time.Second):
			t.Fatal("no group written")
			return nil
		}
	}

	underway.Store(3)
	g.add(1)
	g.add(2)
	select {
	case items := <-written:
		t.Fatalf("wrote %v while a third request was on its way", items)
	case <-time.After(50 * time.Millisecond):
	}
	underway.Store(2) // the third was refused before its claim
	if items := next(); !slices.Equal(items, []int{1, 2}) {
		t.Errorf("wrote %v, want [1 2]", items)
	}

	underway.Store(1)
	g.add(3)
	if items := next(); !slices.Equal(items, []int{3}) {
		t.Errorf("a lone request: wrote %v, want [3]", items)
	}

	underway.Store(100)
	for i := range 4 {
		g.add(10 + i)
	}
	if items := next(); len(items) != 4 {
		t.Errorf("wrote %v, want the four items as soon as they were enough", items)
	}
}

// However many requests are in progress, a wait ends at its deadline.
func TestGroupsLingerEndsAtItsDeadline(t *testing.T) {
	t.Parallel()
	written := make(chan []int, 8)
	g := newGroups(1, 16, lingering{wait: 20 * time.Millisecond, underway: func() int { return 100 }},
		func(items []int) { written <- items })
	defer g.close()
	g.add(1)
	select {
	case items := <-written:
		if !slices.Equal(items, []int{1}) {
			t.Errorf("wrote %v, want [1]", items)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not end at its deadline")
	}
}

// A writer with a minimum rate does not wait while items come slower than it, however many
// requests are on their way.
func TestGroupsDoNotLingerWhenItemsComeSlowly(t *testing.T) {
	t.Parallel()
	written := make(chan []int, 8)
	g := newGroups(1, 16, lingering{wait: time.Hour, minRate: 1e9, underway: func() int { return 100 }},
		func(items []int) { written <- items })
	defer g.close()
	for i := range 3 {
		g.add(i)
		select {
		case items := <-written:
			if !slices.Equal(items, []int{i}) {
				t.Errorf("wrote %v, want [%d]", items, i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("item %d waited for more", i)
		}
	}
}

func TestArrivalRate(t *testing.T) {
	t.Parallel()
	start := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name     string
		items    int
		every    time.Duration
		groups   int
		min, max float64
	}{
		{"2,500 a second in groups of 3", 3, 1200 * time.Microsecond, 40, 2400, 2501},
		{"200 a second one by one", 1, 5 * time.Millisecond, 40, 190, 201},
		{"the first group gives no rate", 50, time.Millisecond, 1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r arrivalRate
			var got float64
			for i := range tc.groups {
				got = r.add(tc.items, start.Add(time.Duration(i)*tc.every))
			}
			if got < tc.min || got > tc.max {
				t.Errorf("rate %.1f a second, want %.0f to %.0f", got, tc.min, tc.max)
			}
		})
	}
	// 200 a second in pairs: a group of one every 10 ms and another 0.1 ms after it. A
	// group taken right after another is not a burst of pace.
	t.Run("200 a second in pairs", func(t *testing.T) {
		var r arrivalRate
		var got float64
		for i := range 40 {
			at := start.Add(time.Duration(i/2) * 10 * time.Millisecond)
			if i%2 == 1 {
				at = at.Add(100 * time.Microsecond)
			}
			got = r.add(1, at)
		}
		if got < 150 || got > 250 {
			t.Errorf("rate %.1f a second, want about 200", got)
		}
	})
	// After 10 quiet seconds, 2,500 a second shows as busy again within 15 groups.
	t.Run("back from a quiet spell", func(t *testing.T) {
		var r arrivalRate
		at := start
		for range 20 {
			at = at.Add(time.Millisecond)
			r.add(3, at)
		}
		at = at.Add(10 * time.Second)
		got := r.add(1, at)
		for range 15 {
			at = at.Add(1200 * time.Microsecond)
			got = r.add(3, at)
		}
		if got < 1000 {
			t.Errorf("rate %.1f a second 15 groups after a quiet spell, want over 1,000", got)
		}
	})
}
