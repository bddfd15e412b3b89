// Package writeback keeps the private servers' written files from piling up in the page
// cache: it asks the kernel, a little at a time, to start writing out the files that
// changed since its last pass.
//
// The embedded broker writes its segment files without syncing them, and PostgreSQL
// extends its tables and indexes through the page cache; at 2,500 payments/s that was
// 8 MB of dirty pages a second. The kernel writes a file's dirty pages out once they are
// 30 s old, all at once, and on this project's machine each such burst (up to 220 MB in
// half a second) held PostgreSQL's WAL flushes behind it: claims waited 50–360 ms and
// payments' outcomes with them. Started a quarter of a second's worth at a time, the same
// writes never queue in front of a flush for long.
//
// It only starts writeback (sync_file_range without waiting): it never waits for the
// disk, flushes the disk's cache or changes what a crash keeps. It must only be pointed at
// folders this process's servers own.
package writeback

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// Pacer starts the writeback of the files under its folders that changed since its last
// pass.
type Pacer struct {
	dirs  []string
	start func(*os.File) error // starts the writeback of one file
	since time.Time            // when the last pass began; zero before the first

	// Files whose writeback was started, and files it failed for (a file removed between
	// listing and opening is neither).
	Started, Failed atomic.Int64
}

// New returns a pacer over dirs.
func New(dirs ...string) *Pacer {
	return &Pacer{dirs: dirs, start: startWriteback}
}

// Run makes a pass at once and then every interval until ctx ends. The pacer goes on
// after a failure, which it logs at most once a minute: it only spares the disk bursts,
// and nothing depends on it for correctness.
func (p *Pacer) Run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var logged time.Time
	for {
		if err := p.Pass(); err != nil && (logged.IsZero() || time.Since(logged) >= time.Minute) {
			log.Warn("starting writeback of the private servers' files", "err", err)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pass starts the writeback of every regular file under the folders whose modification
// time is not older than the previous pass's beginning (all of them on the first pass).
// The comparison keeps a margin of one coarse clock tick: the kernel stamps a write with
// a clock that can lag the one read here.
func (p *Pacer) Pass() error {
	began := time.Now()
	cutoff := p.since.Add(-tick)
	var errs []error
	var fileErr error // the first file it could not start, reported with the pass
	for _, dir := range p.dirs {
		err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed while walking: the broker rolls and deletes segments
				}
				return err
			}
			if !e.Type().IsRegular() {
				return nil
			}
			info, err := e.Info()
			if err != nil {
				return nil // removed since it was listed
			}
			if !p.since.IsZero() && info.ModTime().Before(cutoff) {
				return nil
			}
			f, err := os.Open(path)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				p.Failed.Add(1)
				if fileErr == nil {
					fileErr = err
				}
				return nil
			}
			if err := p.start(f); err != nil {
				p.Failed.Add(1)
				if fileErr == nil {
					fileErr = fmt.Errorf("starting writeback of %s: %w", path, err)
				}
			} else {
				p.Started.Add(1)
			}
			return f.Close()
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	p.since = began
	return errors.Join(append(errs, fileErr)...)
}

// tick is a generous bound on the lag of the kernel's coarse clock behind time.Now.
const tick = 20 * time.Millisecond
