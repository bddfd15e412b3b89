package processors_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/schemas"
)

// How cmd/paystream wires `paystream run --stages validation,risk`.
func ExampleRunner() {
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	serde, err := schemas.NewSerde(ctx, os.Getenv(schemas.EnvSchemaRegistryURL))
	if err != nil {
		log.Error("schemas", "err", err)
		return
	}
	reg := prometheus.NewRegistry()
	metrics, err := processors.NewMetrics(reg)
	if err != nil {
		log.Error("metrics", "err", err)
		return
	}
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{})) // the admin address

	stages, _ := processors.NewRegistry( /* the stage Definitions of issue 6 */ )
	cfg := processors.Config{Brokers: []string{"localhost:9092"}, InstanceID: os.Getenv("HOSTNAME")}
	hops, err := stages.Plan(processors.ParseStages("validation,risk"), cfg.Fuse)
	if err != nil {
		log.Error("stages", "err", err)
		return
	}
	runner, err := processors.NewRunner(cfg, serde, metrics, log)
	if err != nil {
		log.Error("runner", "err", err)
		return
	}
	if err := runner.Run(ctx, hops...); err != nil { // returns after ctx ends and hops stop
		log.Error("run", "err", err)
	}
}
