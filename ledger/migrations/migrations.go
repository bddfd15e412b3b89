// Package migrations holds paystream's PostgreSQL schema as versioned SQL files and applies
// them with goose. It is a leaf package (it imports nothing of ours) so the dev runtime and
// internal/testenv can migrate a database without importing the ledger. Only the ledger
// writes the tables these files create.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed sql/*.sql
var files embed.FS

// Result says what Up did.
type Result struct {
	Applied []int64 // versions applied by this call, in order
	Current int64   // schema version after the call
}

// Up applies every migration the database lacks, each in its own transaction. Running it
// on an up-to-date database changes nothing.
func Up(ctx context.Context, databaseURL string) (Result, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return Result{}, fmt.Errorf("parsing database url: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	return up(ctx, db)
}

func up(ctx context.Context, db *sql.DB) (Result, error) {
	sub, err := fs.Sub(files, "sql")
	if err != nil {
		return Result{}, err
	}
	// The advisory lock lets every service of a deployment run migrations at start.
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return Result{}, err
	}
	// Out of order: several teams add numbered files at once; a file numbered below one
	// already applied is still applied, once.
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(locker), goose.WithAllowOutofOrder(true))
	if err != nil {
		return Result{}, fmt.Errorf("loading migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("applying migrations: %w", err)
	}
	var r Result
	for _, m := range results {
		r.Applied = append(r.Applied, m.Source.Version)
	}
	if r.Current, err = p.GetDBVersion(ctx); err != nil {
		return Result{}, fmt.Errorf("reading schema version: %w", err)
	}
	return r, nil
}
