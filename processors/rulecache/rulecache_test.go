package rulecache

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// loader counts its loads and fails while next is set.
type loader struct {
	mu    sync.Mutex
	n     int
	next  error
	block chan struct{} // when set, a load waits for it to close
}

func (l *loader) load(context.Context) (int, error) {
	l.mu.Lock()
	block := l.block
	l.mu.Unlock()
	if block != nil {
		<-block
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.next != nil {
		return 0, l.next
	}
	l.n++
	return l.n, nil
}

func (l *loader) set(f func(*loader)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(l)
}

func get(t *testing.T, c *Cache[int]) int {
	t.Helper()
	v, err := c.Get(context.Background())
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return v
}

// background makes a cache whose every reload after the first runs in the background.
func background(l *loader) *Cache[int] {
	c := New(l.load, 0, time.Hour, quiet())
	c.syncAfter = 1000 * time.Hour
	return c
}

func TestKeepsLastRulesWhileReloadFails(t *testing.T) {
	l := &loader{}
	c := background(l)
	if v := get(t, c); v != 1 {
		t.Fatalf("first get: %d", v)
	}
	fail := errors.New("database down")
	l.set(func(l *loader) { l.next = fail })
	if v := get(t, c); v != 1 {
		t.Fatalf("get while a reload fails: %d, want the last rules", v)
	}
	c.reloading.Wait()
	c.stale = 0 // the last rules are now too old to decide on
	if _, err := c.Get(context.Background()); !errors.Is(err, fail) {
		t.Fatalf("get with stale rules: %v, want the reload's error", err)
	}
	c.reloading.Wait()
	l.set(func(l *loader) { l.next = nil })
	c.Get(context.Background()) // still the error; starts a reload that succeeds
	c.reloading.Wait()
	if v := get(t, c); v != 2 {
		t.Fatalf("get after recovery: %d, want 2", v)
	}
}

func TestReloadsOnlyOncePerInterval(t *testing.T) {
	l := &loader{}
	c := New(l.load, time.Hour, time.Hour, nil)
	for range 5 {
		get(t, c)
	}
	c.reloading.Wait()
	if l.n != 1 {
		t.Errorf("%d loads within one interval, want 1", l.n)
	}
	if err := c.Refresh(context.Background()); err != nil || l.n != 2 {
		t.Errorf("Refresh: %v, %d loads", err, l.n)
	}
	if v := get(t, c); v != 2 {
		t.Errorf("after Refresh Get = %d, want 2", v)
	}
}

// A stale Get answers from the rules it has while the reload waits on the database.
func TestGetDoesNotWaitForAReload(t *testing.T) {
	l := &loader{}
	c := background(l)
	get(t, c)
	block := make(chan struct{})
	l.set(func(l *loader) { l.block = block })
	for range 3 { // one reload starts; the others find it running
		if v := get(t, c); v != 1 {
			t.Fatalf("get during a reload: %d, want the last rules", v)
		}
	}
	l.set(func(l *loader) { l.block = nil })
	close(block)
	c.reloading.Wait()
	c.every = time.Hour
	if v := get(t, c); v != 2 || l.n != 2 {
		t.Errorf("after the reload: %d with %d loads, want 2 and 2", v, l.n)
	}
}

// A reload that read the database before a Refresh must not replace what Refresh read.
func TestAnOlderReloadDoesNotUndoARefresh(t *testing.T) {
	l := &loader{}
	c := background(l)
	get(t, c) // 1
	block := make(chan struct{})
	l.set(func(l *loader) { l.block = block })
	get(t, c) // starts a reload, held before it reads
	l.set(func(l *loader) { l.block = nil })
	if err := c.Refresh(context.Background()); err != nil { // reads 2
		t.Fatal(err)
	}
	close(block) // the reload reads 3, but began before the Refresh
	c.reloading.Wait()
	c.every = time.Hour
	if v := get(t, c); v != 2 {
		t.Errorf("Get = %d after a Refresh raced by an older reload, want the Refresh's 2", v)
	}
}

// Rules left unused for two intervals are reloaded before the next payment is decided.
func TestUnusedRulesReloadBeforeUse(t *testing.T) {
	l := &loader{}
	c := New(l.load, time.Minute, time.Hour, quiet())
	get(t, c)
	c.loaded, c.tried = c.loaded.Add(-90*time.Second), c.tried.Add(-90*time.Second) // used 90 s ago
	if v := get(t, c); v != 1 {
		t.Errorf("Get after 1.5 intervals = %d, want the rules at hand while one reloads", v)
	}
	c.reloading.Wait()
	c.loaded, c.tried = c.loaded.Add(-time.Hour), c.tried.Add(-time.Hour) // a quiet hour
	if v := get(t, c); v != 3 {
		t.Errorf("Get after a quiet hour = %d, want the rules loaded for it (3)", v)
	}
	if l.n != 3 {
		t.Errorf("%d loads, want 3", l.n)
	}
}
