//go:build !linux

package writeback

import (
	"errors"
	"os"
)

// startWriteback does nothing where sync_file_range does not exist: the kernel's own
// writeback is all there is.
func startWriteback(*os.File) error { return nil }

// The walk takes only regular files, so nothing is opened that could block.
const openFlags = 0

var errLink = errors.ErrUnsupported

// Without inotify the pacer finds changed files by walking its folders.
type watcher struct{}

func newWatcher() (*watcher, error) { return nil, errors.ErrUnsupported }

func (*watcher) add(string) error                                             { return errors.ErrUnsupported }
func (*watcher) drain(map[string]struct{}, map[string]struct{}) (bool, error) { return false, nil }
func (*watcher) close() error                                                 { return nil }
