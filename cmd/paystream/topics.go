package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/internal/topics"
)

type topicsCmd struct {
	Replication int16 `help:"Replication factor of created topics; -1 takes the broker default." default:"-1"`
	Check       bool  `help:"Exit non-zero when an existing topic differs from the catalog."`
}

func (topicsCmd) Help() string {
	return "Connects to PAYSTREAM_KAFKA_BROKERS, or to the embedded broker of a running " +
		"`paystream dev` (PAYSTREAM_KAFKA_ADDR), creates every catalog topic that is missing " +
		"and lists how existing topics differ from the catalog. It never deletes or alters a topic."
}

func (t topicsCmd) Run(a *app) error {
	brokers := kafkaBrokers(a)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	rep, err := topics.Ensure(ctx, kadm.NewClient(cl), int32(a.cfg.TopicPartitions()), t.Replication)
	if err != nil {
		return fmt.Errorf("ensuring topics on %v: %w", brokers, err)
	}
	printTopicReport(a, rep)
	if t.Check && len(rep.Diffs) > 0 {
		return errors.New("topics differ from the catalog")
	}
	return nil
}

func printTopicReport(a *app, rep topics.Report) {
	for _, n := range rep.Created {
		fmt.Fprintf(a.out, "created  %s\n", n)
	}
	for _, n := range rep.Existing {
		fmt.Fprintf(a.out, "exists   %s\n", n)
	}
	for _, d := range rep.Diffs {
		fmt.Fprintf(a.out, "DIFFERS  %s\n", d)
	}
	fmt.Fprintf(a.out, "%d created, %d existing, %d differences\n", len(rep.Created), len(rep.Existing), len(rep.Diffs))
}
