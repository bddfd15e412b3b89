package rulecache

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

func TestKeepsLastRulesWhileReloadFails(t *testing.T) {
	fail := errors.New("database down")
	var next error
	n := 0
	load := func(context.Context) (int, error) {
		if next != nil {
			return 0, next
		}
		n++
		return n, nil
	}
	c := New(load, 0, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	if v, err := c.Get(ctx); v != 1 || err != nil {
		t.Fatalf("first get: %d, %v", v, err)
	}
	next = fail
	if v, err := c.Get(ctx); v != 1 || err != nil {
		t.Fatalf("get while reloading fails: %d, %v; want the last rules", v, err)
	}
	c.stale = 0 // the last rules are now too old to decide on
	if _, err := c.Get(ctx); !errors.Is(err, fail) {
		t.Fatalf("get with stale rules: %v, want the load error", err)
	}
	next = nil
	if v, err := c.Get(ctx); v != 2 || err != nil {
		t.Fatalf("get after recovery: %d, %v", v, err)
	}
}

func TestReloadsOnlyOncePerInterval(t *testing.T) {
	loads := 0
	c := New(func(context.Context) (int, error) { loads++; return loads, nil }, time.Hour, time.Hour, nil)
	ctx := context.Background()
	for range 5 {
		if _, err := c.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if loads != 1 {
		t.Errorf("%d loads within one interval, want 1", loads)
	}
	if err := c.Refresh(ctx); err != nil || loads != 2 {
		t.Errorf("Refresh: %v, %d loads", err, loads)
	}
	if v, _ := c.Get(ctx); v != 2 {
		t.Errorf("after Refresh Get = %d, want 2", v)
	}
}
