package topics_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/internal/topics"
	"github.com/paystream/paystream/schemas/catalog"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestRetentionOverridesDeleteTopicsOnly(t *testing.T) {
	ctx := context.Background()
	k := testenv.NewKafka(t, testenv.NoTopics())
	adm := kadm.NewClient(k.Client(t))
	rep, err := topics.Ensure(ctx, adm, 2, -1, topics.Retention(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Created) != len(catalog.Topics()) {
		t.Fatalf("created %d topics, want %d", len(rep.Created), len(catalog.Topics()))
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, string(catalog.PaymentsRequested), string(catalog.PaymentsRequested.DLQ()), string(catalog.GroupRisk.Changelog()))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		string(catalog.PaymentsRequested):       {"retention.ms": strconv.Itoa(120_000), "cleanup.policy": "delete"},
		string(catalog.PaymentsRequested.DLQ()): {"retention.ms": strconv.Itoa(120_000)},
		string(catalog.GroupRisk.Changelog()):   {"cleanup.policy": "compact"},
	}
	for _, rc := range rcs {
		for key, v := range want[rc.Name] {
			got := ""
			for _, c := range rc.Configs {
				if c.Key == key {
					got = c.MaybeValue()
				}
			}
			if got != v {
				t.Errorf("%s %s = %q, want %q", rc.Name, key, got, v)
			}
		}
	}
	// A fresh client: a client's own metadata answers may lag the topics it just created.
	adm = kadm.NewClient(k.Client(t))
	again, err := topics.Ensure(ctx, adm, 2, -1, topics.Retention(2*time.Minute))
	if err != nil || len(again.Created) != 0 || len(again.Diffs) != 0 {
		t.Errorf("second run: %+v, %v; want nothing created and no differences", again, err)
	}
	plain, err := topics.Ensure(ctx, adm, 2, -1)
	if err != nil || len(plain.Diffs) == 0 {
		t.Errorf("against the catalog's own retention: %d differences (%v), want the overridden ones reported", len(plain.Diffs), err)
	}
}
