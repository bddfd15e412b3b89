package writeback

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A file's time can say it changed when nothing wrote to it; the watch goes by the writes.
func TestWatchTakesOnlyWrittenFiles(t *testing.T) {
	dir := t.TempDir()
	still, written := filepath.Join(dir, "still"), filepath.Join(dir, "written")
	write(t, still, "x")
	write(t, written, "x")
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(still, future, future); err != nil {
		t.Fatal(err)
	}
	p, got := recorder(t, false, dir)
	passTakes(t, p, got, "first", still, written)
	write(t, written, "y")
	passTakes(t, p, got, "after one file was written", written)
}

func TestWatchFollowsFoldersMadeLater(t *testing.T) {
	dir := t.TempDir()
	p, got := recorder(t, false, dir)
	passTakes(t, p, got, "over an empty folder")
	deep := filepath.Join(dir, "sub", "deeper", "f")
	write(t, deep, "x")
	passTakes(t, p, got, "after two folders and a file were made", deep)

	// Written again: the new folders are watched now.
	write(t, deep, "y")
	passTakes(t, p, got, "after a write in the new folder", deep)
}

// When the kernel's queue overflows, the pass falls back to the files' times, then
// watches again.
func TestWatchLostEventsFallBackToFileTimes(t *testing.T) {
	dir := t.TempDir()
	a, b, old, future := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "old"), filepath.Join(dir, "future")
	for _, f := range []string{a, b, old, future} {
		write(t, f, "x")
	}
	p, got := recorder(t, false, dir)
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	age(t, old)
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(future, later, later); err != nil {
		t.Fatal(err)
	}

	// Events for two files in turn do not merge: more of them than the queue holds.
	fa, fb := open(t, a), open(t, b)
	for range 17_000 {
		for _, f := range []*os.File{fa, fb} {
			if _, err := f.Write([]byte{'z'}); err != nil {
				t.Fatal(err)
			}
		}
	}
	passTakes(t, p, got, "after lost events (the files whose times are after the last pass)", a, b, future)
	write(t, old, "y")
	passTakes(t, p, got, "after that, one file written", old)
}

func open(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
