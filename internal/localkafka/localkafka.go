// Package localkafka runs the embedded Kafka-protocol broker of `paystream dev`: franz-go's
// kfake in this process, persisted to a data folder. kfake must be closed cleanly to keep
// its transaction markers; a killed one can lose them, so money safety never relies on it
// (the ledger's idempotency does).
package localkafka

import (
	"fmt"
	"net"
	"strconv"
	"time"

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

// SweepEvery is how often the broker applies retention and compacts the compacted
// topics, rather than kfake's hourly default, so what it holds stays bounded by the
// topics' retention. Both run on the broker's one goroutine, which answers nothing else
// meanwhile: compacting a minute of the stages' changelogs at 2,500 payments/s took 0.7 s
// of CPU (a 70-second profile), and in a 10-minute run with a sweep every minute, seven
// seconds passed with no request accepted and no outcome, a minute apart. A sweep every
// ten seconds has a sixth as much to do.
const SweepEvery = 10 * time.Second

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
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": strconv.FormatInt(SweepEvery.Milliseconds(), 10)}),
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
