//go:build testcontainers

package testenv

import (
	"context"
	"fmt"

	"github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/modules/redpanda"
)

// Images pinned so a test run on Docker is repeatable.
const (
	postgresImage = "postgres:15-alpine"
	redpandaImage = "docker.redpanda.com/redpandadata/redpanda:v24.2.4"
)

func containerPostgres(ctx context.Context) (string, func(), error) {
	c, err := postgres.Run(ctx, postgresImage,
		postgres.WithDatabase("postgres"),
		postgres.WithUsername("paystream"),
		postgres.WithPassword("paystream"),
		postgres.BasicWaitStrategies())
	if err != nil {
		return "", nil, fmt.Errorf("starting the PostgreSQL container: %w", err)
	}
	stop := func() { _ = c.Terminate(context.Background()) }
	u, err := c.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		stop()
		return "", nil, err
	}
	return u, stop, nil
}

// containerKafka starts Redpanda: it speaks the Kafka protocol, transactions included,
// and starts in seconds.
func containerKafka(ctx context.Context) ([]string, func(), error) {
	c, err := redpanda.Run(ctx, redpandaImage)
	if err != nil {
		return nil, nil, fmt.Errorf("starting the Redpanda container: %w", err)
	}
	stop := func() { _ = c.Terminate(context.Background()) }
	b, err := c.KafkaSeedBroker(ctx)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return []string{b}, stop, nil
}
