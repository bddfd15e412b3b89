package validation

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// cache holds the rules last loaded and reloads them on use once they are older than the
// refresh interval. Reloading on the processing path needs no goroutine to start or stop,
// and a worker processes records one at a time, so at most one reload runs per interval.
type cache[T any] struct {
	load          func(context.Context) (T, error)
	every, stale  time.Duration
	log           *slog.Logger
	mu            sync.Mutex
	v             T
	loaded, tried time.Time // zero until the first successful load
}

func (c *cache[T]) get(ctx context.Context) (T, error) {
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

// refresh reloads now.
func (c *cache[T]) refresh(ctx context.Context) error {
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
