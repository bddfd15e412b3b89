// Package localkafka runs the embedded Kafka-protocol broker of `paystream dev`: franz-go's
// kfake in this process, persisted to a data folder. kfake must be closed cleanly to keep
// its transaction markers; a killed one can lose them, so money safety never relies on it
// (the ledger's idempotency does).
package localkafka

import (
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Options configures the broker.
type Options struct {
	// DataDir persists topics, offsets and transactions; empty keeps them in memory.
	DataDir string
	// Addr is the listen address, host:port; port 0 picks a free one.
	Addr string
	// Partitions is the default partition count of auto-created topics.
	Partitions int32
}

// Start starts the broker; Close the cluster to stop it and flush its state.
func Start(opts Options) (*kfake.Cluster, error) {
	// Listening ourselves lets the broker bind any configured interface, not only the
	// loopback address kfake picks by default.
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded Kafka cannot listen on %s (is another paystream dev running? set --kafka-addr): %w", opts.Addr, err)
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(func(string, string) (net.Listener, error) { return ln, nil }),
		// Apply retention (and compaction) every minute rather than every hour, so what the
		// broker holds stays bounded by the topics' retention.
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "60000"}),
	}
	if opts.Partitions > 0 {
		kopts = append(kopts, kfake.DefaultNumPartitions(int(opts.Partitions)))
	}
	if opts.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(opts.DataDir))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("starting embedded Kafka: %w", err)
	}
	return c, nil
}
