package testenv

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/internal/topics"
	"github.com/paystream/paystream/schemas/catalog"
)

// Kafka is one test's Kafka-protocol cluster.
type Kafka struct {
	Brokers []string
	// Fake is the in-process cluster, for fault injection through its control hooks; nil
	// when the cluster is a container.
	Fake *kfake.Cluster
}

// KafkaOption changes how NewKafka builds a cluster.
type KafkaOption func(*kafkaConfig)

type kafkaConfig struct {
	partitions int32
	noTopics   bool
	fakeOpts   []kfake.Opt
}

// Partitions sets the partition count of the catalog's topics (default 12).
func Partitions(n int32) KafkaOption { return func(c *kafkaConfig) { c.partitions = n } }

// NoTopics leaves the cluster empty, for tests of topic creation.
func NoTopics() KafkaOption { return func(c *kafkaConfig) { c.noTopics = true } }

// FakeOptions passes options to the in-process cluster (ignored for containers).
func FakeOptions(opts ...kfake.Opt) KafkaOption {
	return func(c *kafkaConfig) { c.fakeOpts = append(c.fakeOpts, opts...) }
}

// NewKafka returns a fresh cluster holding the catalog's topics, closed when the test ends.
func NewKafka(t testing.TB, opts ...KafkaOption) *Kafka {
	t.Helper()
	cfg := kafkaConfig{partitions: catalog.DefaultPartitions}
	for _, o := range opts {
		o(&cfg)
	}
	k := &Kafka{}
	if os.Getenv(EnvContainers) == "1" {
		brokers, stop, err := containerKafka(context.Background())
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		t.Cleanup(stop)
		k.Brokers = brokers
	} else {
		c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, cfg.fakeOpts...)...)
		if err != nil {
			t.Fatalf("testenv: starting kfake: %v", err)
		}
		t.Cleanup(c.Close)
		k.Fake, k.Brokers = c, c.ListenAddrs()
	}
	if !cfg.noTopics {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cl := k.Client(t)
		if _, err := topics.Ensure(ctx, kadm.NewClient(cl), cfg.partitions, -1); err != nil {
			t.Fatalf("testenv: creating topics: %v", err)
		}
	}
	return k
}

// Client returns a plain client of the cluster with opts added, closed when the test ends.
func (k *Kafka) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("testenv: kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}
