package localpg

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMissingBinariesSayHowToFix(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	old := libRoot
	libRoot = t.TempDir()
	t.Cleanup(func() { libRoot = old })

	_, err := Start(context.Background(), Options{Dir: t.TempDir()})
	if !errors.Is(err, ErrNoBinaries) {
		t.Fatalf("Start without binaries: %v, want ErrNoBinaries", err)
	}
	for _, want := range []string{"apt-get install postgresql", "PAYSTREAM_DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestServerKeepsDataAcrossRestartsAndLocksItsFolder(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(openTempDir(t), "pg")
	srv, err := Start(ctx, Options{Dir: dir, NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	run(t, srv.URL("postgres"), "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")

	if _, err := Start(ctx, Options{Dir: dir, NoFsync: true}); !errors.Is(err, ErrInUse) {
		t.Errorf("second server on the same folder: %v, want ErrInUse", err)
	}

	pid := srv.PID()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("postmaster %d still exists after Stop (kill 0: %v)", pid, err)
	}

	srv, err = Start(ctx, Options{Dir: dir, NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(ctx)
	conn, err := pgx.Connect(ctx, srv.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != 42 {
		t.Errorf("after restart: v=%d err=%v, want 42", v, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, passwordFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("password file: %v %v, want mode 0600", fi, err)
	}
}

func TestRefusesWrongPassword(t *testing.T) {
	ctx := context.Background()
	srv, err := Start(ctx, Options{Dir: filepath.Join(openTempDir(t), "pg"), NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(ctx)
	bad := strings.Replace(srv.URL("postgres"), srv.password, "wrong", 1)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, bad); err == nil {
		conn.Close(ctx)
		t.Fatal("connected with a wrong password")
	}
}

func run(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

// openTempDir is a test folder the postgres user may enter when the test runs as root.
func openTempDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "paystream-localpg-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}
