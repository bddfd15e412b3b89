package processors

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Config is how a runner talks to Kafka and sizes its transactions. Build it once in cmd/
// and pass it down; zero fields take the defaults stated on each.
type Config struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// InstanceID names this worker stably across restarts (for example the pod name). It is
	// the static group member id and, after the group's transactional-id prefix, the
	// transactional id, so a restarted worker fences its previous self and gets its
	// partitions back without a rebalance. Required.
	InstanceID string
	// BatchSize is the most records one transaction covers. Default 1000.
	BatchSize int
	// Linger is the shortest time between the beginnings of a hop's transactions. A
	// transaction has a fixed cost (a broker marker for every partition it wrote to, a
	// database commit, the stages' lookups) whatever its size; when transactions are
	// quicker than Linger, the records that arrive meanwhile join the next one instead of
	// each paying that cost. A hop that has been idle for Linger begins at once, and one
	// whose last transaction took BatchSize records does not wait. It is paid at every hop
	// of a payment's chain. At most MaxLinger. Default 0: transactions run back to back.
	Linger time.Duration
	// Fuse runs consecutive named stages in one hop. Default false.
	Fuse bool
	// TransactionTimeout bounds how long a transaction of a crashed worker can block
	// read_committed readers of its partitions. Default 20s.
	TransactionTimeout time.Duration
	// SessionTimeout is how long the group waits for a silent member before moving its
	// partitions; a restart within it keeps the assignment. Default 15s.
	SessionTimeout time.Duration
	// HeartbeatInterval must be well under SessionTimeout. Default 1.5s.
	HeartbeatInterval time.Duration
	// RetryBackoff is the first wait after a transient error; it doubles per retry up to
	// RetryBackoffMax. Defaults 100ms and 10s.
	RetryBackoff    time.Duration
	RetryBackoffMax time.Duration
	// MaxStateKeyBytes and MaxStateValueBytes bound one per-key state entry. Defaults 128
	// and 512 bytes.
	MaxStateKeyBytes   int
	MaxStateValueBytes int
	// StopTimeout bounds a graceful stop: ending the open transaction and leaving the
	// group. Default 10s.
	StopTimeout time.Duration
	// StayOnStop keeps the static membership on a graceful stop, for a rolling restart
	// that comes back within SessionTimeout. Default false: a stopped worker leaves the
	// group so its partitions move at once.
	StayOnStop bool
	// KafkaOptions are extra client options (TLS, SASL, logging) applied to every client.
	KafkaOptions []kgo.Opt
	// TrimChangelogs has each stateful hop, once a partition's changelog has taken more
	// transactions than the partition's state has keys, rewrite that state into the
	// changelog and delete the changelog before the copy. It is for the embedded broker,
	// whose compaction keeps every transaction marker of a producer that has any live
	// record, so the changelog and each compaction grow with the transactions. Kafka drops
	// those markers itself and refuses to delete records from a compacted topic: leave it
	// off there. Default false.
	TrimChangelogs bool
	// trimFloor replaces minTrimTxns in tests, which run too few transactions to reach it.
	trimFloor int
}

// Defaults of Config.
const (
	DefaultBatchSize          = 1000
	DefaultTransactionTimeout = 20 * time.Second
	DefaultSessionTimeout     = 15 * time.Second
	DefaultHeartbeatInterval  = 1500 * time.Millisecond
	DefaultRetryBackoff       = 100 * time.Millisecond
	DefaultRetryBackoffMax    = 10 * time.Second
	DefaultMaxStateKeyBytes   = 128
	DefaultMaxStateValueBytes = 512
	DefaultStopTimeout        = 10 * time.Second
	// MaxLinger bounds Linger: a worker notices a stop or a kill only after its wait, and
	// a second is already far more than a payment should wait at a hop.
	MaxLinger = time.Second
)

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	set(&c.TransactionTimeout, DefaultTransactionTimeout)
	set(&c.SessionTimeout, DefaultSessionTimeout)
	set(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	set(&c.RetryBackoff, DefaultRetryBackoff)
	set(&c.RetryBackoffMax, DefaultRetryBackoffMax)
	set(&c.StopTimeout, DefaultStopTimeout)
	if c.MaxStateKeyBytes == 0 {
		c.MaxStateKeyBytes = DefaultMaxStateKeyBytes
	}
	if c.MaxStateValueBytes == 0 {
		c.MaxStateValueBytes = DefaultMaxStateValueBytes
	}
	return c
}

// Validate checks c after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("field Brokers: at least one seed broker is required"))
	}
	if c.InstanceID == "" {
		errs = append(errs, errors.New("field InstanceID: required, and stable across restarts"))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("field BatchSize: %d, must be positive", c.BatchSize))
	}
	for name, d := range map[string]time.Duration{
		"TransactionTimeout": c.TransactionTimeout, "SessionTimeout": c.SessionTimeout,
		"HeartbeatInterval": c.HeartbeatInterval, "RetryBackoff": c.RetryBackoff,
		"RetryBackoffMax": c.RetryBackoffMax, "StopTimeout": c.StopTimeout, "Linger": c.Linger,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("field %s: %v, must not be negative", name, d))
		}
	}
	if c.Linger > MaxLinger {
		errs = append(errs, fmt.Errorf("field Linger: %v, must be at most %v", c.Linger, MaxLinger))
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("field HeartbeatInterval %v must be below SessionTimeout %v", c.HeartbeatInterval, c.SessionTimeout))
	}
	if c.RetryBackoff > c.RetryBackoffMax {
		errs = append(errs, fmt.Errorf("field RetryBackoff %v is above RetryBackoffMax %v", c.RetryBackoff, c.RetryBackoffMax))
	}
	if c.MaxStateKeyBytes < 1 || c.MaxStateValueBytes < 1 {
		errs = append(errs, errors.New("MaxStateKeyBytes and MaxStateValueBytes must be positive"))
	}
	return errors.Join(errs...)
}
