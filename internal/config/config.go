// Package config is paystream's one configuration struct: every setting with its default,
// its flag and its PAYSTREAM_* environment variable, validated once at start. cmd/ fills it
// (flags win over the environment, the environment over defaults) and passes it down; no
// other package reads the environment.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config holds every setting. The struct tags are the documentation: `default` is the
// value used when neither the flag nor the environment variable is set.
type Config struct {
	// DataDir holds the embedded infrastructure's state: <data>/pg (PostgreSQL),
	// <data>/kafka (the embedded broker).
	DataDir string `name:"data" env:"PAYSTREAM_DATA_DIR" default:".paystream" help:"Folder for the embedded PostgreSQL and Kafka data (default ${default})." placeholder:"DIR"`

	// DatabaseURL points at an existing PostgreSQL; empty means a private server in
	// <data>/pg.
	DatabaseURL string `name:"database-url" env:"PAYSTREAM_DATABASE_URL" help:"PostgreSQL URL (postgres://user:pass@host:port/db). Empty: a private server in <data>/pg." placeholder:"URL"`

	// KafkaBrokers are external Kafka brokers; empty means the embedded broker.
	KafkaBrokers []string `name:"kafka-brokers" env:"PAYSTREAM_KAFKA_BROKERS" sep:"," help:"Comma-separated Kafka seed brokers (host:port). Empty: the embedded broker." placeholder:"HOST:PORT"`

	// KafkaAddr is where the embedded broker listens, so standard tools can read topics.
	KafkaAddr string `name:"kafka-addr" env:"PAYSTREAM_KAFKA_ADDR" default:"127.0.0.1:9092" help:"Listen address of the embedded Kafka broker (default ${default})." placeholder:"HOST:PORT"`

	// SchemaRegistryURL, when set, registers the Avro schemas there and takes their ids
	// from it; empty uses the embedded schema id table.
	SchemaRegistryURL string `name:"schema-registry-url" env:"PAYSTREAM_SCHEMA_REGISTRY_URL" help:"Confluent-compatible Schema Registry URL. Empty: the embedded schema ids." placeholder:"URL"`

	// MasterKey seals the channels' HMAC secrets in the database. `paystream dev` generates
	// one into <data>/master.key when it is not set.
	MasterKey string `name:"master-key" env:"PAYSTREAM_MASTER_KEY" help:"32-byte key (base64 or hex) sealing channel secrets. dev: generated into <data>/master.key." placeholder:"KEY"`

	// Subsidiary is the legal entity new wallets belong to; `paystream dev` seeds it.
	Subsidiary string `name:"subsidiary" env:"PAYSTREAM_SUBSIDIARY" default:"DEV" help:"Subsidiary (legal entity) of new wallets (default ${default})." placeholder:"ID"`

	// Partitions of every stream topic paystream creates; 0 chooses by the broker (see
	// TopicPartitions).
	Partitions int `name:"partitions" env:"PAYSTREAM_PARTITIONS" help:"Partitions of each topic created (default 12, or 3 on the embedded broker)." placeholder:"N"`

	// HTTPAddr is the channel-facing HTTP address (API and /healthz).
	HTTPAddr string `name:"http" env:"PAYSTREAM_HTTP_ADDR" default:"127.0.0.1:8080" help:"HTTP listen address (API, /healthz) (default ${default})." placeholder:"HOST:PORT"`

	// AdminAddr serves /metrics and /debug/pprof for operators; empty disables it.
	AdminAddr string `name:"admin" env:"PAYSTREAM_ADMIN_ADDR" default:"127.0.0.1:9090" help:"Admin listen address (/metrics, /debug/pprof). Empty disables it (default ${default})." placeholder:"HOST:PORT"`

	// InstanceID names this process stably across restarts (the pod name): the stage
	// workers' static group membership and transactional ids derive from it.
	InstanceID string `name:"instance-id" env:"PAYSTREAM_INSTANCE_ID" help:"Stable name of this worker process (default: the host name)." placeholder:"NAME"`

	// BatchSize is the most records one stage transaction covers.
	BatchSize int `name:"batch-size" env:"PAYSTREAM_BATCH_SIZE" default:"1000" help:"Records per stage transaction (default ${default})."`

	// HopLinger is the shortest time between the beginnings of a hop's transactions (see
	// processors.Config.Linger). At 2,500 P2P payments/s on the 2-core reference machine,
	// 10ms took about 5 % off the machine's CPU a payment, and up to 16 % at 200/s, for
	// up to 10 ms more at each hop a payment passes while its transactions are quicker
	// than that.
	HopLinger time.Duration `name:"hop-linger" env:"PAYSTREAM_HOP_LINGER" default:"10ms" help:"Shortest time between the beginnings of a hop's transactions; records arriving meanwhile join the next one. 0: back to back (default ${default})." placeholder:"DURATION"`

	// FuseStages runs consecutive stages of one process in one hop: one consumer and one
	// transaction for the chain instead of one per stage. The same records are written.
	// On by default: on the 2-core reference machine the fused chain completed 4,081 P2P
	// payments/s against about 2,400/s for stage-per-hop, at lower latency.
	FuseStages bool `name:"fuse-stages" env:"PAYSTREAM_FUSE_STAGES" default:"true" negatable:"" help:"Run consecutive stages of this process in one hop (one transaction for the chain); --no-fuse-stages gives each stage its own hop (default ${default})."`

	// BankURL is the bank connector's API; empty means no bank connector (paystream dev
	// starts a simulator and uses it).
	BankURL string `name:"bank-url" env:"PAYSTREAM_BANK_URL" help:"Base URL of the bank connector's API; empty: no bank (dev: a simulator)." placeholder:"URL"`

	LogLevel  string `name:"log-level" env:"PAYSTREAM_LOG_LEVEL" default:"info" enum:"debug,info,warn,error" help:"Log level: debug, info, warn, error."`
	LogFormat string `name:"log-format" env:"PAYSTREAM_LOG_FORMAT" default:"text" enum:"text,json" help:"Log format: text or json."`
}

var subsidiaryPattern = regexp.MustCompile(`^[A-Z0-9_]{2,16}$`)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid configuration")

func invalid(setting, value, why string) error {
	return fmt.Errorf("%w: %s=%q: %s", ErrInvalid, setting, value, why)
}

// Validate checks every setting and names the first bad one by its environment variable.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return invalid("PAYSTREAM_DATA_DIR", c.DataDir, "must not be empty")
	}
	if c.DatabaseURL != "" {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			return invalid("PAYSTREAM_DATABASE_URL", redactURL(c.DatabaseURL), "want postgres://user:password@host:port/database")
		}
	}
	for _, b := range c.KafkaBrokers {
		if err := hostPort(b); err != nil {
			return invalid("PAYSTREAM_KAFKA_BROKERS", strings.Join(c.KafkaBrokers, ","), err.Error())
		}
	}
	if err := hostPort(c.KafkaAddr); err != nil {
		return invalid("PAYSTREAM_KAFKA_ADDR", c.KafkaAddr, err.Error())
	}
	if c.SchemaRegistryURL != "" {
		u, err := url.Parse(c.SchemaRegistryURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid("PAYSTREAM_SCHEMA_REGISTRY_URL", redactURL(c.SchemaRegistryURL), "want http(s)://host:port")
		}
	}
	if !subsidiaryPattern.MatchString(c.Subsidiary) {
		return invalid("PAYSTREAM_SUBSIDIARY", c.Subsidiary, "want 2 to 16 of A-Z, 0-9 and _")
	}
	if c.BatchSize < 1 || c.BatchSize > 100_000 {
		return invalid("PAYSTREAM_BATCH_SIZE", strconv.Itoa(c.BatchSize), "must be between 1 and 100000")
	}
	if c.HopLinger < 0 || c.HopLinger > time.Second { // processors.MaxLinger
		return invalid("PAYSTREAM_HOP_LINGER", c.HopLinger.String(), "must be between 0 and 1s")
	}
	if c.BankURL != "" {
		u, err := url.Parse(c.BankURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid("PAYSTREAM_BANK_URL", redactURL(c.BankURL), "want http(s)://host:port")
		}
	}
	if c.Partitions < 0 || c.Partitions > 10000 {
		return invalid("PAYSTREAM_PARTITIONS", strconv.Itoa(c.Partitions), "must be between 1 and 10000, or 0 for the default")
	}
	if err := hostPort(c.HTTPAddr); err != nil {
		return invalid("PAYSTREAM_HTTP_ADDR", c.HTTPAddr, err.Error())
	}
	if c.AdminAddr != "" {
		if err := hostPort(c.AdminAddr); err != nil {
			return invalid("PAYSTREAM_ADMIN_ADDR", c.AdminAddr, err.Error())
		}
	}
	if _, err := c.SlogLevel(); err != nil {
		return invalid("PAYSTREAM_LOG_LEVEL", c.LogLevel, "want debug, info, warn or error")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return invalid("PAYSTREAM_LOG_FORMAT", c.LogFormat, "want text or json")
	}
	return nil
}

func hostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want host:port")
	}
	_ = host // an empty host means every interface, which is allowed
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return errors.New("port must be a number from 0 to 65535")
	}
	return nil
}

// SlogLevel returns the configured log level.
func (c *Config) SlogLevel() (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(c.LogLevel))
	return l, err
}

// EmbeddedPostgres reports whether paystream runs its own PostgreSQL.
func (c *Config) EmbeddedPostgres() bool { return c.DatabaseURL == "" }

// EmbeddedKafka reports whether paystream runs its own Kafka-protocol broker.
func (c *Config) EmbeddedKafka() bool { return len(c.KafkaBrokers) == 0 }

// Default partition counts of the topics paystream creates. A cluster gets room for a
// dozen workers a stage. The embedded broker serves one process, which consumes every
// partition in one transaction anyway, and each partition a transaction touches costs
// the broker a batch and a marker to write: with 3 instead of 12, outcome p99 at
// 2,500 payments/s was 94-117 ms against 99-149 ms in five alternating pairs.
const (
	ClusterPartitions  = 12
	EmbeddedPartitions = 3
)

// TopicPartitions is the partition count of the topics paystream creates.
func (c *Config) TopicPartitions() int {
	switch {
	case c.Partitions > 0:
		return c.Partitions
	case c.EmbeddedKafka():
		return EmbeddedPartitions
	default:
		return ClusterPartitions
	}
}

// LogValue prints the configuration once at start: every setting, passwords redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("data", c.DataDir),
		slog.String("database_url", redactURL(c.DatabaseURL)),
		slog.String("kafka_brokers", strings.Join(c.KafkaBrokers, ",")),
		slog.String("kafka_addr", c.KafkaAddr),
		slog.String("schema_registry_url", redactURL(c.SchemaRegistryURL)),
		slog.Bool("master_key_set", c.MasterKey != ""),
		slog.String("subsidiary", c.Subsidiary),
		slog.Int("partitions", c.TopicPartitions()),
		slog.String("http", c.HTTPAddr),
		slog.String("admin", c.AdminAddr),
		slog.String("instance_id", c.InstanceID),
		slog.Int("batch_size", c.BatchSize),
		slog.Duration("hop_linger", c.HopLinger),
		slog.Bool("fuse_stages", c.FuseStages),
		slog.String("bank_url", redactURL(c.BankURL)),
		slog.String("log_level", c.LogLevel),
		slog.String("log_format", c.LogFormat),
	)
}

// redactURL hides a URL's password; an unparsable URL is hidden whole, since it may hold one.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "<unparsable, hidden>"
	}
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// EnvVars lists every environment variable the configuration reads.
func EnvVars() []string {
	var out []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		if env := t.Field(i).Tag.Get("env"); env != "" {
			out = append(out, strings.Split(env, ",")...)
		}
	}
	return out
}
