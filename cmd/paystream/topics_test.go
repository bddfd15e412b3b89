package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/schemas/catalog"
)

func TestTopicsCreatesMissingAndReportsDifferences(t *testing.T) {
	k := testenv.NewKafka(t, testenv.NoTopics())
	brokers := strings.Join(k.Brokers, ",")
	n := len(catalog.Topics())

	code, out, errOut := runCLI(t, "topics", "--kafka-brokers", brokers, "--partitions", "4")
	if code != 0 {
		t.Fatalf("topics exited %d: %s", code, errOut)
	}
	if want := fmt.Sprintf("%d created, 0 existing, 0 differences", n); !strings.Contains(out, want) {
		t.Errorf("first run printed %q, want %q", out, want)
	}
	details, err := kadm.NewClient(k.Client(t)).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	details.FilterInternal()
	if got := len(details.Names()); got != n {
		t.Errorf("cluster has %d topics, want %d", got, n)
	}

	code, out, _ = runCLI(t, "topics", "--kafka-brokers", brokers, "--partitions", "4", "--check")
	if want := fmt.Sprintf("0 created, %d existing, 0 differences", n); code != 0 || !strings.Contains(out, want) {
		t.Errorf("second run: exit %d, printed %q, want %q", code, out, want)
	}

	code, out, _ = runCLI(t, "topics", "--kafka-brokers", brokers, "--partitions", "6", "--check")
	if code == 0 {
		t.Error("--check passed although every topic has 4 partitions, not 6")
	}
	if !strings.Contains(out, "DIFFERS  payments.requested: partitions is 4, catalog says 6") {
		t.Errorf("difference not reported:\n%s", out)
	}
}
