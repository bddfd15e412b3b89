// Package rulecache keeps the rules a stage decides by: loaded from PostgreSQL, reloaded
// in the background once older than the refresh interval, and kept for a while when a
// reload fails so a database blip does not stop the chain. Stages share it so every stage
// picks up rule changes the same way.
package rulecache

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Cache holds the rules last loaded. Under steady use a Get that finds the rules older
// than the interval starts one reload on a goroutine of its own and decides on the rules
// it has: a hop processes its batches one at a time, and a reload waiting on a busy
// database would hold up every payment behind it. Only the first load, and a load after
// the rules went unused for two intervals (a quiet hour must not leave the next payment
// on rules an hour old), run on the processing path.
type Cache[T any] struct {
	load      func(context.Context) (T, error)
	every     time.Duration
	stale     time.Duration
	syncAfter time.Duration // rules at least this old are reloaded before they are used
	log       *slog.Logger

	mu        sync.Mutex
	v         T
	loaded    time.Time // when the load of v began; zero until the first succeeds
	tried     time.Time // when the last reload began
	failed    error     // the last reload's error, until one succeeds
	reloading sync.WaitGroup
	busy      bool // a reload is running
}

// reloadTimeout bounds a background reload: it has no caller to hand a deadline down.
const reloadTimeout = 30 * time.Second

// New returns a cache that reloads with load once the rules are older than every, and
// keeps deciding on the last rules for up to stale while reloading fails.
func New[T any](load func(context.Context) (T, error), every, stale time.Duration, log *slog.Logger) *Cache[T] {
	if log == nil {
		log = slog.Default()
	}
	return &Cache[T]{load: load, every: every, stale: stale, syncAfter: 2 * every, log: log}
}

// Get returns the rules last loaded, starting a reload when they are older than the
// refresh interval. The first call, and one that finds the rules two intervals old with
// no reload running, loads them itself. While reloads fail, it returns the last rules
// until they are older than the stale bound, then the reload's error.
func (c *Cache[T]) Get(ctx context.Context) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	due := !c.busy && now.Sub(c.tried) >= c.every
	switch {
	case c.loaded.IsZero() || due && now.Sub(c.loaded) >= c.syncAfter:
		c.tried = now
		v, err := c.load(ctx)
		if err == nil {
			c.install(v, now)
			return v, nil
		}
		if c.loaded.IsZero() {
			var zero T
			return zero, fmt.Errorf("loading rules: %w", err)
		}
		c.fail(err)
	case due:
		c.busy, c.tried = true, now
		c.reloading.Add(1)
		go c.reload(now)
	}
	if c.failed != nil && now.Sub(c.loaded) >= c.stale {
		var zero T
		return zero, fmt.Errorf("loading rules: %w", c.failed)
	}
	return c.v, nil
}

// reload loads the rules in the background. It counts as begun when Get decided on it,
// which is no later than its read of the database.
func (c *Cache[T]) reload(began time.Time) {
	defer c.reloading.Done()
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	v, err := c.load(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy = false
	if err != nil {
		c.fail(err)
		return
	}
	c.install(v, began)
}

// fail keeps a reload's error; the last rules serve until they are older than the stale
// bound.
func (c *Cache[T]) fail(err error) {
	c.failed = err
	c.log.Warn("reloading rules failed; deciding on the last rules loaded", "age", time.Since(c.loaded), "err", err)
}

// install keeps v unless the rules held were read after it: a Refresh may have finished
// while a background reload that began before it was still reading.
func (c *Cache[T]) install(v T, began time.Time) {
	if began.Before(c.loaded) {
		return
	}
	c.v, c.loaded, c.failed = v, began, nil
}

// Refresh reloads now and waits for it.
func (c *Cache[T]) Refresh(ctx context.Context) error {
	began := time.Now()
	v, err := c.load(ctx)
	if err != nil {
		return fmt.Errorf("loading rules: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tried = began
	c.install(v, began)
	return nil
}
