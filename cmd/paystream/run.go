package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/schemas"
)

type runCmd struct {
	Stages string `help:"Comma-separated stages to run in this process (default: all of them)." placeholder:"STAGE,..."`
}

func (runCmd) Help() string {
	return "Runs payment stages as exactly-once workers: " + strings.Join(allStages, ", ") + ". " +
		"Consecutive stages share one hop unless PAYSTREAM_FUSE_STAGES=false. Workers are named by PAYSTREAM_INSTANCE_ID " +
		"(default the host name): keep it stable across restarts. Kafka is PAYSTREAM_KAFKA_BROKERS or the running dev " +
		"broker; PostgreSQL is PAYSTREAM_DATABASE_URL or the running dev's. SIGTERM stops within 10 s."
}

func (c runCmd) Run(a *app) error {
	names := allStages
	if c.Stages != "" {
		names = processors.ParseStages(c.Stages)
	}
	pool, err := connect(a)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer pool.Close()
	l, err := ledger.New(a.ctx, pool)
	if err != nil {
		return err
	}
	serde, err := schemas.NewSerde(a.ctx, a.cfg.SchemaRegistryURL)
	if err != nil {
		return err
	}
	admin, err := startAdmin(a)
	if err != nil {
		return err
	}
	defer admin.close(context.Background())
	brokers := kafkaBrokers(a)
	return runStages(a.ctx, a, brokers, nil, pool, l, serde, admin.reg, names)
}
