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

	// watch reports the files written between passes, where inotify serves (nil before the
	// first pass). Without it, or after it lost events, a pass walks the folders and takes
	// the files modified since the last one.
	watch    *watcher
	walkOnly bool     // watching failed; every pass walks
	pending  []string // folders not there yet, watched once they are
	files    map[string]struct{}
	newDirs  map[string]struct{}

	// Files whose writeback was started, and files it failed for (a file removed between
	// listing and opening is neither).
	Started, Failed atomic.Int64
}

// New returns a pacer over dirs.
func New(dirs ...string) *Pacer {
	return &Pacer{dirs: dirs, start: startWriteback, files: map[string]struct{}{}, newDirs: map[string]struct{}{}}
}

// Run makes a pass at once and then every interval until ctx ends. The pacer goes on
// after a failure, which it logs at most once a minute: it only spares the disk bursts,
// and nothing depends on it for correctness.
func (p *Pacer) Run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	defer p.Close()
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

// Close lets go of the watch; a later pass walks.
func (p *Pacer) Close() error {
	if p.watch == nil {
		return nil
	}
	err := p.watch.close()
	p.watch, p.walkOnly = nil, true
	return err
}

// Pass starts the writeback of every regular file under the folders written since the
// previous pass (all of them on the first pass, and in a folder first seen).
func (p *Pacer) Pass() error {
	began := time.Now()
	var errs []error
	if err := p.collect(); err != nil {
		errs = append(errs, err)
	}
	p.since = began
	var fileErr error // the first file it could not start, reported with the pass
	for path := range p.files {
		if err := p.startFile(path); err != nil && fileErr == nil {
			fileErr = err
		}
	}
	clear(p.files)
	return errors.Join(append(errs, fileErr)...)
}

// collect gathers the files to start into p.files.
func (p *Pacer) collect() error {
	if p.walkOnly {
		return p.walkAll(p.since)
	}
	if p.watch == nil {
		w, err := newWatcher()
		if err != nil {
			return p.stopWatching(err)
		}
		// Watched before they are walked, so nothing written meanwhile is missed.
		p.watch, p.pending = w, p.dirs
		return p.watchPending()
	}
	if err := p.watchPending(); err != nil {
		return err
	}
	lost, err := p.watch.drain(p.files, p.newDirs)
	if err != nil || lost {
		clear(p.newDirs)
		if err != nil {
			return p.stopWatching(err)
		}
		// Events were dropped: the files' times say what changed since the last pass.
		return p.walkAll(p.since)
	}
	var errs []error
	for dir := range p.newDirs {
		errs = append(errs, p.walk(dir, time.Time{}))
	}
	clear(p.newDirs)
	return errors.Join(errs...)
}

// watchPending watches and walks whole the folders that have appeared since they were
// first asked for.
func (p *Pacer) watchPending() error {
	var errs []error
	waiting := p.pending[:0:0]
	for _, dir := range p.pending {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			waiting = append(waiting, dir)
			continue
		}
		if err := p.watch.add(dir); err != nil {
			return p.stopWatching(err)
		}
		errs = append(errs, p.walk(dir, time.Time{}))
	}
	p.pending = waiting
	return errors.Join(errs...)
}

// stopWatching gives the watch up for good after err, and walks the folders for the files
// changed since the last pass (all of them before the first).
func (p *Pacer) stopWatching(err error) error {
	p.Close()
	p.walkOnly = true
	return errors.Join(fmt.Errorf("walking the folders instead of watching them: %w", err), p.walkAll(p.since))
}

func (p *Pacer) walkAll(since time.Time) error {
	var errs []error
	for _, dir := range p.dirs {
		errs = append(errs, p.walk(dir, since))
	}
	return errors.Join(errs...)
}

// walk adds to p.files the regular files under dir whose modification time is not older
// than since (every one when since is zero). The comparison keeps a margin of one coarse
// clock tick: the kernel stamps a write with a clock that can lag the one read here.
func (p *Pacer) walk(dir string, since time.Time) error {
	cutoff := since.Add(-tick)
	return filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking: the broker rolls and deletes segments
			}
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		if !since.IsZero() {
			info, err := e.Info()
			if err != nil || info.ModTime().Before(cutoff) {
				return nil // removed since it was listed, or not changed
			}
		}
		p.files[path] = struct{}{}
		return nil
	})
}

// startFile starts the writeback of one file; one removed meanwhile is skipped.
func (p *Pacer) startFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errLink) {
			return nil
		}
		p.Failed.Add(1)
		return err
	}
	defer f.Close()
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		return nil // a link, a pipe or a folder by the name an event gave
	}
	if err := p.start(f); err != nil {
		p.Failed.Add(1)
		return fmt.Errorf("starting writeback of %s: %w", path, err)
	}
	p.Started.Add(1)
	return nil
}

// tick is a generous bound on the lag of the kernel's coarse clock behind time.Now.
const tick = 20 * time.Millisecond
