package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/internal/localpg"
	"github.com/paystream/paystream/internal/pgpool"
)

// devDatabase is the database paystream uses on its private server.
const devDatabase = "paystream"

// database is a PostgreSQL to work on: the configured one, or a private server in
// <data>/pg that close stops.
type database struct {
	url    string
	server *localpg.Server // nil for a configured database
}

// openDatabase returns the configured database, or starts the private server in
// <data>/pg and makes sure the paystream database exists on it.
func openDatabase(ctx context.Context, a *app) (*database, error) {
	if !a.cfg.EmbeddedPostgres() {
		return &database{url: a.cfg.DatabaseURL}, nil
	}
	dir := filepath.Join(a.cfg.DataDir, "pg")
	srv, err := localpg.Start(ctx, localpg.Options{Dir: dir})
	if err != nil {
		return nil, fmt.Errorf("starting the private PostgreSQL in %s: %w", dir, err)
	}
	if err := createDatabase(ctx, srv.URL("postgres"), devDatabase); err != nil {
		_ = srv.Stop(context.Background())
		return nil, err
	}
	return &database{url: srv.URL(devDatabase), server: srv}, nil
}

func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	return nil
}

func (d *database) close(ctx context.Context) error {
	if d == nil || d.server == nil {
		return nil
	}
	return d.server.Stop(ctx)
}

func redactedURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<hidden>"
	}
	return u.Redacted()
}

// urlFile is where a running `paystream dev` leaves its private server's URL (mode 0600)
// so other subcommands (channels, verify) reach it with --data.
func urlFile(dataDir string) string { return filepath.Join(dataDir, "database-url") }

// databaseURL is the configured database, or the private one of a running `paystream dev`
// on the data folder: the subcommands that work on a live system find it this way.
func databaseURL(a *app) (string, error) {
	if a.cfg.DatabaseURL != "" {
		return a.cfg.DatabaseURL, nil
	}
	return runningDevURL(a.cfg.DataDir)
}

// connect opens a pool on databaseURL.
func connect(a *app) (*pgxpool.Pool, error) {
	url, err := databaseURL(a)
	if err != nil {
		return nil, err
	}
	return pgpool.Open(a.ctx, url)
}

// runningDevURL returns the URL a running `paystream dev` on dataDir left behind.
func runningDevURL(dataDir string) (string, error) {
	b, err := os.ReadFile(urlFile(dataDir))
	if err != nil {
		return "", fmt.Errorf("set PAYSTREAM_DATABASE_URL, or run paystream dev on %s first: %w", dataDir, err)
	}
	return string(b), nil
}

// bankURLFile is where a running `paystream dev` leaves its bank simulator's URL, for stage
// workers started apart from it (paystream bench --chaos).
func bankURLFile(dataDir string) string { return filepath.Join(dataDir, "bank-url") }

// kafkaBrokers are the configured brokers, or the embedded broker of a running
// `paystream dev` at PAYSTREAM_KAFKA_ADDR.
func kafkaBrokers(a *app) []string {
	if a.cfg.EmbeddedKafka() {
		return []string{a.cfg.KafkaAddr}
	}
	return a.cfg.KafkaBrokers
}
