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
	linger time.Duration
	write  func([]T)
}

// newGroups starts writers that call write with up to max items at a time. With linger,
// a writer waits that long after an item for more before it writes: for items nobody
// waits on, fewer and larger statements.
func newGroups[T any](writers, max int, linger time.Duration, write func([]T)) *groups[T] {
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
	for {
		var first T
		select {
		case first = <-g.in:
		case <-g.stop:
			g.drain()
			return
		}
		group := []T{first}
		if g.linger > 0 {
			group = g.gather(group)
		}
		g.write(g.fill(group))
	}
}

// gather adds what arrives within linger, up to max.
func (g *groups[T]) gather(group []T) []T {
	t := time.NewTimer(g.linger)
	defer t.Stop()
	for len(group) < g.max {
		select {
		case item := <-g.in:
			group = append(group, item)
		case <-t.C:
			return group
		case <-g.stop:
			return group
		}
	}
	return group
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
