// Package testenv gives integration tests real infrastructure: a fresh migrated PostgreSQL
// database and a fresh Kafka-protocol cluster per test. By default both run on this machine
// (a private PostgreSQL server per test binary, an in-process kfake cluster per test); with
// PAYSTREAM_TESTCONTAINERS=1 they come from testcontainers-go instead (build with
// -tags testcontainers). Packages that use it call testenv.Main from TestMain so the
// server and its folder are removed when the test binary ends.
package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/internal/localpg"
	"github.com/paystream/paystream/internal/pgpool"
	"github.com/paystream/paystream/ledger/migrations"
)

// Environment variables that change where the infrastructure comes from.
const (
	// EnvDatabaseURL names an existing server to create test databases on; the role needs
	// CREATEDB.
	EnvDatabaseURL = "PAYSTREAM_TEST_DATABASE_URL"
	// EnvContainers set to 1 takes PostgreSQL and Kafka from testcontainers-go.
	EnvContainers = "PAYSTREAM_TESTCONTAINERS"
)

// DB is one test's database.
type DB struct {
	URL  string
	Name string
	Pool *pgxpool.Pool
}

// pgHost is the server of this test binary: where test databases are created and the
// template they are copied from.
type pgHost struct {
	adminURL string // a URL whose database path is replaced per test database
	template string
	cleanup  func()
}

var (
	hostOnce sync.Once
	host     *pgHost
	hostErr  error
	dbSeq    atomic.Int64
	stopMu   sync.Mutex
	stops    []func()
)

// Postgres returns a fresh database with every migration applied, dropped when the test
// ends. Databases are copies of a migrated template, so each costs milliseconds.
func Postgres(t testing.TB) *DB {
	t.Helper()
	hostOnce.Do(func() { host, hostErr = startHost() })
	if hostErr != nil {
		t.Fatalf("testenv: %v", hostErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	admin, err := pgx.Connect(ctx, host.adminURL)
	if err != nil {
		t.Fatalf("testenv: connecting to the test server: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{host.template}.Sanitize()); err != nil {
		t.Fatalf("testenv: creating database %s: %v", name, err)
	}
	dbURL := withDatabase(host.adminURL, name)
	pool, err := pgpool.Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropDatabase(ctx, host.adminURL, name); err != nil {
			t.Errorf("testenv: dropping %s: %v", name, err)
		}
	})
	return &DB{URL: dbURL, Name: name, Pool: pool}
}

func startHost() (*pgHost, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := &pgHost{template: fmt.Sprintf("paystream_template_%d", os.Getpid())}
	switch {
	case os.Getenv(EnvContainers) == "1":
		u, stop, err := containerPostgres(ctx)
		if err != nil {
			return nil, err
		}
		h.adminURL, h.cleanup = u, stop
	case os.Getenv(EnvDatabaseURL) != "":
		h.adminURL, h.cleanup = os.Getenv(EnvDatabaseURL), func() {}
	default:
		dir, err := os.MkdirTemp("", "paystream-testpg-*")
		if err != nil {
			return nil, err
		}
		srv, err := localpg.Start(ctx, localpg.Options{Dir: dir, NoFsync: true})
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%w (or set %s)", err, EnvDatabaseURL)
		}
		h.adminURL = srv.URL("postgres")
		h.cleanup = func() {
			_ = srv.Stop(context.Background())
			os.RemoveAll(dir)
		}
	}
	registerStop(h.cleanup)
	if err := h.makeTemplate(ctx); err != nil {
		return nil, err
	}
	if os.Getenv(EnvDatabaseURL) != "" {
		registerStop(func() { _ = dropDatabase(context.Background(), h.adminURL, h.template) })
	}
	return h, nil
}

func (h *pgHost) makeTemplate(ctx context.Context) error {
	admin, err := pgx.Connect(ctx, h.adminURL)
	if err != nil {
		return fmt.Errorf("connecting to the test server: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{h.template}.Sanitize()); err != nil {
		return fmt.Errorf("creating the template database: %w", err)
	}
	// Up closes its connections before returning: CREATE DATABASE ... TEMPLATE refuses a
	// template that has open sessions.
	if _, err := migrations.Up(ctx, withDatabase(h.adminURL, h.template)); err != nil {
		return fmt.Errorf("migrating the template database: %w", err)
	}
	return nil
}

func dropDatabase(ctx context.Context, adminURL, name string) error {
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

func withDatabase(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		return rawURL
	}
	u.Path = "/" + name
	return u.String()
}

func registerStop(f func()) {
	stopMu.Lock()
	defer stopMu.Unlock()
	stops = append(stops, f)
}

// Main runs the tests of a package and then stops what testenv started. Call it from
// TestMain: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// Shutdown stops every server this process started through testenv. Main calls it.
func Shutdown() {
	stopMu.Lock()
	defer stopMu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	stops = nil
}
