package writeback

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// The two ways a pacer learns what changed: inotify's events, and the files' times.
var modes = []struct {
	name string
	walk bool
}{{"watching", false}, {"walking", true}}

// recorder is a pacer over dirs whose writeback starts are recorded, not made.
func recorder(t *testing.T, walk bool, dirs ...string) (*Pacer, *[]string) {
	var got []string
	p := New(dirs...)
	p.walkOnly = walk
	t.Cleanup(func() { p.Close() })
	p.start = func(f *os.File) error {
		got = append(got, f.Name())
		return nil
	}
	return p, &got
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPassTakesFilesChangedSinceTheLastPass(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testChangedSinceLastPass(t, m.walk) })
	}
}

func testChangedSinceLastPass(t *testing.T, walk bool) {
	dir, other := t.TempDir(), t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "sub", "b"), filepath.Join(other, "c")
	for _, f := range []string{a, b, c} {
		write(t, f, "x")
	}
	p, got := recorder(t, walk, dir, other)

	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(*got)
	if want := sorted([]string{a, b, c}); !slices.Equal(*got, want) {
		t.Fatalf("first pass took %v, want every file %v", *got, want)
	}

	// Nothing written since: the files are older than the last pass.
	age(t, a, b, c)
	*got = nil
	if err := p.Pass(); err != nil || len(*got) != 0 {
		t.Fatalf("pass with nothing changed took %v (%v)", *got, err)
	}

	// One file written to, one created: those two and no other.
	write(t, b, "more")
	d := filepath.Join(other, "d")
	write(t, d, "new")
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(*got)
	if want := sorted([]string{b, d}); !slices.Equal(*got, want) {
		t.Errorf("pass after two writes took %v, want %v", *got, want)
	}
	if n := p.Started.Load(); n != 5 {
		t.Errorf("Started = %d, want 5", n)
	}
}

// age dates files an hour back, as if written long before the last pass.
func age(t *testing.T, files ...string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for _, f := range files {
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

// passTakes makes a pass and fails unless it took exactly want (in any order).
func passTakes(t *testing.T, p *Pacer, got *[]string, after string, want ...string) {
	t.Helper()
	*got = nil
	if err := p.Pass(); err != nil {
		t.Fatalf("pass %s: %v", after, err)
	}
	if slices.Sort(*got); !slices.Equal(*got, sorted(want)) {
		t.Fatalf("pass %s took %v, want %v", after, *got, want)
	}
}

func TestPassSkipsWhatIsNotThere(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "f"), "x")
			age(t, filepath.Join(dir, "f"))
			if err := os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "dangling")); err != nil {
				t.Fatal(err)
			}
			notYet := filepath.Join(t.TempDir(), "not-yet")
			p, got := recorder(t, m.walk, notYet, dir)
			passTakes(t, p, got, "with a folder not yet made and a dangling link", filepath.Join(dir, "f"))

			// The folder made since: its files are taken.
			late := filepath.Join(notYet, "sub", "late")
			write(t, late, "x")
			passTakes(t, p, got, "after the folder was made", late)
		})
	}
}

func TestPassReportsFilesItCouldNotStart(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "a"), "x")
			write(t, filepath.Join(dir, "b"), "x")
			p, _ := recorder(t, m.walk, dir)
			refused := errors.New("refused")
			p.start = func(*os.File) error { return refused }
			err := p.Pass()
			if !errors.Is(err, refused) || !strings.Contains(err.Error(), dir) {
				t.Errorf("Pass = %v, want a refusal with its file", err)
			}
			if p.Failed.Load() != 2 || p.Started.Load() != 0 {
				t.Errorf("Failed %d, Started %d; want 2 and 0", p.Failed.Load(), p.Started.Load())
			}
		})
	}
}

// The real system call, on a file with dirty pages.
func TestStartWritebackOfAWrittenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	write(t, path, strings.Repeat("paystream", 100_000))
	p := New(filepath.Dir(path))
	if err := p.Pass(); err != nil {
		t.Fatal(err)
	}
	if p.Started.Load() != 1 || p.Failed.Load() != 0 {
		t.Errorf("Started %d, Failed %d; want 1 and 0", p.Started.Load(), p.Failed.Load())
	}
}

func TestRunPassesEveryIntervalUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "f"), "x")
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock stands in 2000, so every file looks changed to a walk at every
		// pass.
		p, got := recorder(t, true, dir)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			p.Run(ctx, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
			close(done)
		}()
		time.Sleep(3*time.Second + time.Millisecond)
		synctest.Wait()
		if len(*got) != 4 {
			t.Errorf("%d passes by the end of the third interval, want 4 (one at once, one an interval)", len(*got))
		}
		cancel()
		<-done
	})
}
