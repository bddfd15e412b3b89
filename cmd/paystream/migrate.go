package main

import (
	"context"
	"fmt"

	"github.com/paystream/paystream/ledger/migrations"
)

type migrateCmd struct{}

func (migrateCmd) Help() string {
	return "Applies every embedded migration the database lacks, each in its own transaction, " +
		"under an advisory lock so concurrent runs are safe. Uses PAYSTREAM_DATABASE_URL, or " +
		"starts the private server in <data>/pg for the duration of the command."
}

func (migrateCmd) Run(a *app) error {
	db, err := openDatabase(a.ctx, a)
	if err != nil {
		return err
	}
	defer db.close(context.Background())
	res, err := migrations.Up(a.ctx, db.url)
	if err != nil {
		return err
	}
	if len(res.Applied) == 0 {
		fmt.Fprintf(a.out, "database is up to date at version %d\n", res.Current)
		return nil
	}
	fmt.Fprintf(a.out, "applied %d migration(s) %v; database at version %d\n", len(res.Applied), res.Applied, res.Current)
	return nil
}
