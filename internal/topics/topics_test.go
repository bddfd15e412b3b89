package topics_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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
		string(catalog.GroupRisk.Changelog()):   {"cleanup.policy": "compact", "retention.ms": "-1"},
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

// The embedded broker applies time retention to every topic, compacted or not, with a
// 7-day default. A changelog's state must outlive it: a wallet quiet for a week keeps its
// counters. Topics created before the catalog said so are repaired by KeepCompacted; the
// untreated case shows the broker would drop the value, so the others are not vacuous.
func TestCompactedTopicsKeepOldState(t *testing.T) {
	changelog := string(catalog.GroupRisk.Changelog())
	for _, tc := range []struct {
		name       string
		setup      func(t *testing.T, adm *kadm.Client)
		repair     bool
		wantRepair []string
		wantQuiet  bool
	}{
		{"created from the catalog", func(t *testing.T, adm *kadm.Client) {}, true, nil, true},
		{"created before, repaired", createBare(changelog), true, []string{changelog}, true},
		{"created before, not repaired", createBare(changelog), false, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			k := testenv.NewKafka(t, testenv.NoTopics())
			if k.Fake == nil {
				t.Skip("only the in-process broker applies retention on demand")
			}
			adm := kadm.NewClient(k.Client(t))
			tc.setup(t, adm)
			rep, err := topics.Ensure(ctx, adm, 1, -1)
			if err != nil {
				t.Fatal(err)
			}
			if tc.repair {
				var fixed []string
				if rep, fixed, err = topics.KeepCompacted(ctx, adm, rep); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(fixed, tc.wantRepair) || len(rep.Diffs) != 0 {
					t.Fatalf("repaired %v, left %v; want %v repaired and no differences", fixed, rep.Diffs, tc.wantRepair)
				}
			}
			cl := k.Client(t)
			for _, key := range []string{"quiet-wallet", "busy-wallet"} {
				r := &kgo.Record{Topic: changelog, Key: []byte(key), Value: []byte("counters"), Timestamp: time.Now()}
				if key == "quiet-wallet" {
					r.Timestamp = r.Timestamp.Add(-8 * 24 * time.Hour)
				}
				if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			k.Fake.ApplyRetention()
			// What a restoring worker reads: the changelog from its start to its end.
			consumer := k.Client(t, kgo.ConsumeTopics(changelog), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			pollCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			var keys []string
			for !slices.Contains(keys, "busy-wallet") && pollCtx.Err() == nil {
				consumer.PollFetches(pollCtx).EachRecord(func(r *kgo.Record) { keys = append(keys, string(r.Key)) })
			}
			if !slices.Contains(keys, "busy-wallet") {
				t.Fatalf("read %v from the changelog, want busy-wallet's value at least", keys)
			}
			if got := slices.Contains(keys, "quiet-wallet"); got != tc.wantQuiet {
				t.Errorf("after the broker's retention the changelog holds %v; quiet-wallet's week-old value kept: %v, want %v", keys, got, tc.wantQuiet)
			}
		})
	}
}

// createBare creates topic as the catalog did before it set retention.ms on compacted
// topics.
func createBare(topic string) func(t *testing.T, adm *kadm.Client) {
	return func(t *testing.T, adm *kadm.Client) {
		_, err := adm.CreateTopic(context.Background(), 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic)
		if err != nil {
			t.Fatal(err)
		}
	}
}
