package risk_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/processors/risk"
	"github.com/paystream/paystream/processors/validation"
	"github.com/paystream/paystream/schemas"
)

// How cmd/paystream wires the validation and risk stages, `paystream dev`'s demo rules and
// `paystream review approve`.
func Example() {
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	pool, err := pgxpool.New(ctx, os.Getenv("PAYSTREAM_DATABASE_URL"))
	if err != nil {
		log.Error("database", "err", err)
		return
	}
	l, err := ledger.New(ctx, pool)
	if err != nil {
		log.Error("ledger", "err", err)
		return
	}
	// paystream dev only: a demo rule set, keeping rules an operator changed.
	if err := validation.SeedDemo(ctx, pool); err != nil {
		log.Error("seeding", "err", err)
	}
	if err := risk.SeedDemo(ctx, pool); err != nil {
		log.Error("seeding", "err", err)
	}

	v, err := validation.New(ctx, pool, l, validation.Config{Logger: log})
	if err != nil {
		log.Error("validation", "err", err)
		return
	}
	r, err := risk.New(ctx, pool, l, risk.Config{Logger: log})
	if err != nil {
		log.Error("risk", "err", err)
		return
	}
	stages, err := processors.NewRegistry(v.Definition(), r.Definition())
	if err != nil {
		log.Error("stages", "err", err)
		return
	}
	_ = stages // Plan and Run as in processors.ExampleRunner

	// paystream review approve pay_...
	serde, err := schemas.NewSerde(ctx, os.Getenv(schemas.EnvSchemaRegistryURL))
	if err != nil {
		log.Error("schemas", "err", err)
		return
	}
	producer, err := kgo.NewClient(kgo.SeedBrokers("localhost:9092")) // idempotent, acks=all by default
	if err != nil {
		log.Error("kafka", "err", err)
		return
	}
	defer producer.Close()
	if err := risk.NewReviews(pool, serde, producer).Approve(ctx, "pay_0123456789abcdef0123456789abcdef"); err != nil {
		log.Error("approving", "payment", "pay_0123456789abcdef0123456789abcdef", "err", err)
	}
}
