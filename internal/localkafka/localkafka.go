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
	// SweepEvery replaces the package's SweepEvery when positive.
	SweepEvery time.Duration
}

// SweepEvery is how often the broker applies retention and compacts the compacted
// topics, rather than kfake's hourly default, so what it holds stays bounded by the
// topics' retention. Both run on the broker's one goroutine, which answers nothing else
// meanwhile. Compaction used to grow with the run, for kfake keeps every transaction
// marker of a compacted changelog: at 2,500 payments/s a sweep every minute left seven
// seconds with no request accepted and no outcome in a 10-minute run, and a sweep every
// 10 s stalled the broker 125 ms at 14 s and 223 ms at 54 s. The stage runner now trims
// the changelogs it writes to this broker (processors.Config.TrimChangelogs), which keeps
// a compaction to a few seconds of transactions whenever it runs. At that rate a sweep
// every 10 s then stalled the broker 42–58 ms each time; one a minute stalls it once,
// 74 ms in the same test, and keeps records at most a minute past their retention.
const SweepEvery = time.Minute

// Start starts the broker; Close it to stop it and flush its state.
func Start(opts Options) (*Broker, error) {
	// Listening ourselves lets the broker bind any configured interface, not only the
	// loopback address kfake picks by default.
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded Kafka cannot listen on %s (is another paystream dev running? set --kafka-addr): %w", opts.Addr, err)
	}
	mem := newMemListener(ln)
	sweep := SweepEvery
	if opts.SweepEvery > 0 {
		sweep = opts.SweepEvery
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(func(string, string) (net.Listener, error) { return mem, nil }),
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": strconv.FormatInt(sweep.Milliseconds(), 10)}),
	}
	if opts.Partitions > 0 {
		kopts = append(kopts, kfake.DefaultNumPartitions(int(opts.Partitions)))
	}
	if opts.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(opts.DataDir))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		mem.Close()
		return nil, fmt.Errorf("starting embedded Kafka: %w", err)
	}
	return &Broker{Cluster: c, ln: mem}, nil
}
