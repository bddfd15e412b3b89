package ingress

import (
	"sync"
	"time"
)

// groups gathers the items of concurrent requests so a few writers can write them many to
// a statement: a database round trip and a commit are shared by everything that arrived
// while the previous group was being written. Alone, an item waits for nothing but its own
// write.
type groups[T any] struct {
	in     chan T
	stop   chan struct{}
	done   sync.WaitGroup
	max    int
	linger lingering
	write  func([]T)
}

// lingering says how long a writer waits for more items after the first before it writes.
type lingering struct {
	wait   time.Duration // the longest wait; 0: none
	enough int           // a group this large is written at once; 0: the groups' max
	// A writer waits only while items have been arriving at least this fast (a second,
	// averaged over the last groups): slower, few would join in the wait.
	minRate float64
	// underway, when set, counts the requests in progress, those in the group among
	// them: a writer waits only while some are elsewhere. When every request in
	// progress is in the group, as when a few senders in a closed loop all wait on it,
	// nothing more can come soon. It counts for the whole server, so it suits one
	// writer: with two, each would see the other's items as still to come.
	underway func() int
}

// lingerRecheck is how often a lingering writer looks at underway again: requests leave
// it without a word to the writer.
const lingerRecheck = 250 * time.Microsecond

// newGroups starts writers that call write with up to max items at a time.
func newGroups[T any](writers, max int, linger lingering, write func([]T)) *groups[T] {
	if linger.enough <= 0 || linger.enough > max {
		linger.enough = max
	}
	g := &groups[T]{in: make(chan T, 4*max), stop: make(chan struct{}), max: max, linger: linger, write: write}
	for range writers {
		g.done.Add(1)
		go g.run()
	}
	return g
}

// add hands an item to the writers; it blocks while they are a full queue behind. After
// close it writes the item itself.
func (g *groups[T]) add(item T) {
	select {
	case g.in <- item:
	case <-g.stop:
		g.write([]T{item})
	}
}

func (g *groups[T]) run() {
	defer g.done.Done()
	var arrivals arrivalRate
	written := 0
	for {
		var first T
		select {
		case first = <-g.in:
		case <-g.stop:
			g.drain()
			return
		}
		// The rate counts whole groups as written, the ones gathered in a wait included:
		// counting only what was queued would read a wait as a slow spell, and every
		// other group would not wait.
		busy := arrivals.add(written, time.Now()) >= g.linger.minRate
		group := g.fill([]T{first})
		if g.linger.wait > 0 && busy {
			group = g.gather(group)
		}
		group = g.fill(group)
		written = len(group)
		g.write(group)
	}
}

// arrivalRate follows how fast items arrive, from the groups a writer takes: the items
// and the time between groups are averaged apart, so a group taken right after another
// does not read as a burst.
type arrivalRate struct {
	items, seconds float64
	last           time.Time
}

// rateGapCap bounds the time between two groups that the rate counts, so that after a
// quiet spell a steady pace shows again within a few groups.
const rateGapCap = 100 * time.Millisecond

// add counts the items of the last group, written since it was taken, and a new group
// taken at now, and returns the rate so far in items a second. Each group weighs a fifth.
func (r *arrivalRate) add(items int, now time.Time) float64 {
	if !r.last.IsZero() {
		r.items = 0.8*r.items + 0.2*float64(items)
		r.seconds = 0.8*r.seconds + 0.2*min(now.Sub(r.last), rateGapCap).Seconds()
	}
	r.last = now
	if r.seconds <= 0 {
		return 0
	}
	return r.items / r.seconds
}

// gather adds what arrives within the linger, until the group is large enough or, with
// underway, no request is in progress outside it.
func (g *groups[T]) gather(group []T) []T {
	deadline := time.Now().Add(g.linger.wait)
	t := time.NewTimer(g.nextLook(deadline))
	defer t.Stop()
	for len(group) < g.linger.enough && g.more(len(group)) {
		select {
		case item := <-g.in:
			group = append(group, item)
		case <-t.C:
			if !time.Now().Before(deadline) {
				return group
			}
			t.Reset(g.nextLook(deadline))
		case <-g.stop:
			return group
		}
	}
	return group
}

func (g *groups[T]) more(grouped int) bool {
	return g.linger.underway == nil || g.linger.underway() > grouped
}

// nextLook is when a lingering writer next wakes on its own: at the deadline, or sooner
// to look at underway again.
func (g *groups[T]) nextLook(deadline time.Time) time.Duration {
	d := time.Until(deadline)
	if g.linger.underway != nil && d > lingerRecheck {
		d = lingerRecheck
	}
	return d
}

// fill adds what is already queued, up to max.
func (g *groups[T]) fill(group []T) []T {
	for len(group) < g.max {
		select {
		case item := <-g.in:
			group = append(group, item)
		default:
			return group
		}
	}
	return group
}

// drain writes what is queued when the writers stop.
func (g *groups[T]) drain() {
	for {
		group := g.fill(nil)
		if len(group) == 0 {
			return
		}
		g.write(group)
	}
}

// close stops the writers once what is queued is written.
func (g *groups[T]) close() {
	close(g.stop)
	g.done.Wait()
}
