package writeback

import (
	"os"
	"path/filepath"
	"slices"
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
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	*got = nil
	write(t, written, "y")
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	if want := []string{written}; !slices.Equal(*got, want) {
		t.Errorf("took %v, want only the file written since %v", *got, want)
	}
}

func TestWatchFollowsFoldersMadeLater(t *testing.T) {
	dir := t.TempDir()
	p, got := recorder(t, false, dir)
	if err := p.Pass(); err != nil || len(*got) != 0 {
		t.Fatalf("first pass over an empty folder took %v (%v)", *got, err)
	}
	deep := filepath.Join(dir, "sub", "deeper", "f")
	write(t, deep, "x")
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	if want := []string{deep}; !slices.Equal(*got, want) {
		t.Fatalf("after two folders and a file were made took %v, want %v", *got, want)
	}

	// Written again: the new folders are watched now.
	*got = nil
	write(t, deep, "y")
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	if want := []string{deep}; !slices.Equal(*got, want) {
		t.Errorf("after a write in the new folder took %v, want %v", *got, want)
	}
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
	*got = nil
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(*got)
	if want := sorted([]string{a, b, future}); !slices.Equal(*got, want) {
		t.Fatalf("after lost events took %v, want the files whose times are after the last pass %v", *got, want)
	}

	*got = nil
	write(t, old, "y")
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	if want := []string{old}; !slices.Equal(*got, want) {
		t.Errorf("the pass after took %v, want the one file written %v", *got, want)
	}
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
