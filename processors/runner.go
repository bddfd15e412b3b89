package processors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Runner runs hops, one worker each, in this process.
type Runner struct {
	cfg   Config
	codec Codec
	m     *Metrics
	log   *slog.Logger
}

// NewRunner checks cfg and returns a runner that encodes and decodes with codec.
func NewRunner(cfg Config, codec Codec, m *Metrics, log *slog.Logger) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuring runner: %w", err)
	}
	if codec == nil || m == nil || log == nil {
		return nil, errors.New("configuring runner: codec, metrics and logger are required")
	}
	return &Runner{cfg: cfg.withDefaults(), codec: codec, m: m, log: log}, nil
}

// Run runs every hop until ctx is done, then stops them gracefully (the open transaction
// is finished or aborted and the group left, within Config.StopTimeout). If one hop fails,
// the others are stopped and its error returned.
func (r *Runner) Run(ctx context.Context, hops ...Hop) error {
	if len(hops) == 0 {
		return errors.New("running: no hops")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(hops))
	for i, h := range hops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := newWorker(r.cfg, h, r.codec, r.m, r.log).run(ctx); err != nil {
				errs[i] = fmt.Errorf("running hop %s: %w", h.Name(), err)
				cancel()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
