package config

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{DataDir: ".paystream", Subsidiary: "DEV", BatchSize: 1000, HopLinger: 10 * time.Millisecond, KafkaAddr: "127.0.0.1:9092", Partitions: 12,
		HTTPAddr: "127.0.0.1:8080", AdminAddr: "127.0.0.1:9090", LogLevel: "info", LogFormat: "text"}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantEnv string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"database url", func(c *Config) { c.DatabaseURL = "postgres://u:p@db:5432/paystream" }, ""},
		{"brokers", func(c *Config) { c.KafkaBrokers = []string{"k1:9092", "k2:9092"} }, ""},
		{"admin off", func(c *Config) { c.AdminAddr = "" }, ""},
		{"empty data", func(c *Config) { c.DataDir = "" }, "PAYSTREAM_DATA_DIR"},
		{"mysql url", func(c *Config) { c.DatabaseURL = "mysql://u:p@db/x" }, "PAYSTREAM_DATABASE_URL"},
		{"url without host", func(c *Config) { c.DatabaseURL = "postgres:///x" }, "PAYSTREAM_DATABASE_URL"},
		{"broker without port", func(c *Config) { c.KafkaBrokers = []string{"k1"} }, "PAYSTREAM_KAFKA_BROKERS"},
		{"broker bad port", func(c *Config) { c.KafkaBrokers = []string{"k1:99999"} }, "PAYSTREAM_KAFKA_BROKERS"},
		{"kafka addr", func(c *Config) { c.KafkaAddr = "nope" }, "PAYSTREAM_KAFKA_ADDR"},
		{"registry scheme", func(c *Config) { c.SchemaRegistryURL = "ftp://r:8081" }, "PAYSTREAM_SCHEMA_REGISTRY_URL"},
		{"subsidiary", func(c *Config) { c.Subsidiary = "dev" }, "PAYSTREAM_SUBSIDIARY"},
		{"batch size", func(c *Config) { c.BatchSize = 0 }, "PAYSTREAM_BATCH_SIZE"},
		{"no hop linger", func(c *Config) { c.HopLinger = 0 }, ""},
		{"negative hop linger", func(c *Config) { c.HopLinger = -time.Millisecond }, "PAYSTREAM_HOP_LINGER"},
		{"hop linger over a second", func(c *Config) { c.HopLinger = 1001 * time.Millisecond }, "PAYSTREAM_HOP_LINGER"},
		{"bank url", func(c *Config) { c.BankURL = "bank:80" }, "PAYSTREAM_BANK_URL"},
		{"default partitions", func(c *Config) { c.Partitions = 0 }, ""},
		{"negative partitions", func(c *Config) { c.Partitions = -1 }, "PAYSTREAM_PARTITIONS"},
		{"too many partitions", func(c *Config) { c.Partitions = 10001 }, "PAYSTREAM_PARTITIONS"},
		{"http addr", func(c *Config) { c.HTTPAddr = ":x" }, "PAYSTREAM_HTTP_ADDR"},
		{"admin addr", func(c *Config) { c.AdminAddr = "h" }, "PAYSTREAM_ADMIN_ADDR"},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, "PAYSTREAM_LOG_LEVEL"},
		{"log format", func(c *Config) { c.LogFormat = "xml" }, "PAYSTREAM_LOG_FORMAT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.wantEnv == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantEnv) {
				t.Fatalf("error %v, want ErrInvalid naming %s", err, tt.wantEnv)
			}
		})
	}
}

func TestTopicPartitions(t *testing.T) {
	tests := []struct {
		name       string
		partitions int
		brokers    []string
		want       int
	}{
		{"embedded broker by default", 0, nil, EmbeddedPartitions},
		{"a cluster by default", 0, []string{"k1:9092"}, ClusterPartitions},
		{"set, embedded", 7, nil, 7},
		{"set, cluster", 5, []string{"k1:9092"}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			c.Partitions, c.KafkaBrokers = tt.partitions, tt.brokers
			if got := c.TopicPartitions(); got != tt.want {
				t.Errorf("TopicPartitions() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	c := validConfig()
	c.DatabaseURL = "postgres://paystream:hunter2@db:5432/paystream?sslmode=disable"
	c.SchemaRegistryURL = "https://user:regsecret@registry:8081"
	c.MasterKey = "mastersecretkey"
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "config", c)
	for _, secret := range []string{"hunter2", "regsecret", "mastersecretkey"} {
		if strings.Contains(b.String(), secret) {
			t.Errorf("logged configuration contains %q: %s", secret, b.String())
		}
	}
	if !strings.Contains(b.String(), "db:5432") {
		t.Errorf("logged configuration lost the host: %s", b.String())
	}
	bad := validConfig()
	bad.DatabaseURL = "mysql://u:hunter2@db/x"
	if err := bad.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("validation error leaks the password: %v", err)
	}
}

func TestEnvVarsListsEverySetting(t *testing.T) {
	vars := EnvVars()
	for _, want := range []string{"PAYSTREAM_DATABASE_URL", "PAYSTREAM_KAFKA_BROKERS", "PAYSTREAM_HTTP_ADDR", "PAYSTREAM_LOG_FORMAT"} {
		found := false
		for _, v := range vars {
			found = found || v == want
		}
		if !found {
			t.Errorf("EnvVars lacks %s: %v", want, vars)
		}
	}
}
