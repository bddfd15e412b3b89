// Package rulecache keeps the rules a stage decides by: loaded from PostgreSQL, reloaded
// on use once older than the refresh interval, and kept for a while when a reload fails so
// a database blip does not stop the chain. Stages share it so every stage picks up rule
// changes the same way.
package rulecache

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Cache holds the rules last loaded. Reloading on the processing path needs no goroutine
// to start or stop, and a worker processes records one at a time, so at most one reload
// runs per interval.
type Cache[T any] struct {
	load  func(context.Context) (T, error)
	every time.Duration
	stale time.Duration
	log   *slog.Logger

	mu            sync.Mutex
	v             T
	loaded, tried time.Time // zero until the first successful load
}

// New returns a cache that reloads with load once the rules are older than every, and
// keeps deciding on the last rules for up to stale while reloading fails.
func New[T any](load func(context.Context) (T, error), every, stale time.Duration, log *slog.Logger) *Cache[T] {
	if log == nil {
		log = slog.Default()
	}
	return &Cache[T]{load: load, every: every, stale: stale, log: log}
}

// Get returns rules no older than the refresh interval, or the last ones while a reload
// fails and they are younger than the stale bound.
func (c *Cache[T]) Get(ctx context.Context) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if !c.loaded.IsZero() && now.Sub(c.tried) < c.every {
		return c.v, nil
	}
	v, err := c.load(ctx)
	c.tried = now
	if err != nil {
		if !c.loaded.IsZero() && now.Sub(c.loaded) < c.stale {
			c.log.Warn("reloading rules failed; deciding on the last rules loaded", "age", now.Sub(c.loaded), "err", err)
			return c.v, nil
		}
		var zero T
		return zero, fmt.Errorf("loading rules: %w", err)
	}
	c.v, c.loaded = v, now
	return v, nil
}

// Refresh reloads now.
func (c *Cache[T]) Refresh(ctx context.Context) error {
	v, err := c.load(ctx)
	if err != nil {
		return fmt.Errorf("loading rules: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.v, c.loaded, c.tried = v, now, now
	return nil
}
