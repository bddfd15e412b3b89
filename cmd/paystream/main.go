// Command paystream is the one binary of paystream: every service and tool is a
// subcommand of it, so a deployment runs the same image with different arguments.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/gcsettings"
	"github.com/paystream/paystream/internal/logging"
)

// cli is the command line. The configuration's flags are global: they are accepted before
// or after the subcommand.
type cli struct {
	config.Config `embed:""`

	Dev      devCmd      `cmd:"" help:"Run the whole system in one process on embedded PostgreSQL and Kafka."`
	Migrate  migrateCmd  `cmd:"" help:"Apply the database migrations."`
	Channels channelsCmd `cmd:"" help:"Manage API channels: create, list, revoke."`
	Serve    serveCmd    `cmd:"" help:"Serve the channel API (ingress)."`
	Verify   verifyCmd   `cmd:"" help:"Check the ledger invariants on a live database."`
	Run      runCmd      `cmd:"" help:"Run payment stages (exactly-once workers)."`
	Rules    rulesCmd    `cmd:"" help:"Manage the stages' rules: fees, campaigns, KYC limits, risk limits, watch list."`
	Review   reviewCmd   `cmd:"" help:"Payments held by risk for an operator: list, approve, reject."`
	Call     callCmd     `cmd:"" help:"Send one signed API request as a channel (dev's demo channel by default)."`
	Bench    benchCmd    `cmd:"" help:"Load a running paystream over HTTP and measure throughput and latency."`
	Topics   topicsCmd   `cmd:"" help:"Create missing catalog topics and report differences from the catalog."`
	Version  versionCmd  `cmd:"" help:"Print the version."`
}

// app is what every subcommand receives: the validated configuration, a logger and where
// to print for people.
type app struct {
	cfg    config.Config
	log    *slog.Logger
	out    io.Writer
	ctx    context.Context
	cancel context.CancelFunc
}

func main() {
	gcsettings.Apply()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args and runs the subcommand; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	var c cli
	exit := -1
	parser, err := kong.New(&c,
		kong.Name("paystream"),
		kong.Description("paystream: an eWallet and payment platform on Kafka and PostgreSQL."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exit = code }),
	)
	if err != nil {
		fmt.Fprintln(stderr, "paystream:", err)
		return 2
	}
	kctx, err := parser.Parse(args)
	if exit >= 0 { // --help
		return exit
	}
	if err != nil {
		fmt.Fprintln(stderr, "paystream:", err)
		return 2
	}
	if err := c.Config.Validate(); err != nil {
		fmt.Fprintln(stderr, "paystream:", err)
		return 2
	}
	level, _ := c.Config.SlogLevel()
	log := logging.New(stderr, c.Config.LogFormat, level)

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	a := &app{cfg: c.Config, log: log, out: stdout, ctx: ctx, cancel: cancel}
	if err := kctx.Run(a); err != nil {
		log.Error("paystream "+kctx.Command()+" failed", "err", err)
		return 1
	}
	return 0
}
