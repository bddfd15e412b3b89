// Package topics creates the catalog's topics on a Kafka cluster and reports where an
// existing cluster differs from the catalog. It only creates; it never deletes a topic or
// changes one that exists, since that is an operator's decision.
package topics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/paystream/paystream/schemas/catalog"
)

// Report says what Ensure found and did.
type Report struct {
	Created  []string // topics created by this call
	Existing []string // catalog topics that were already there
	Diffs    []Diff   // differences between existing topics and the catalog
}

// Diff is one way an existing topic differs from the catalog.
type Diff struct {
	Topic string
	What  string // "partitions", or a config key
	Want  string
	Have  string
}

func (d Diff) String() string {
	return fmt.Sprintf("%s: %s is %s, catalog says %s", d.Topic, d.What, d.Have, d.Want)
}

// Option changes what Ensure creates.
type Option func(*catalog.Spec)

// Retention keeps the records of delete-policy topics for d instead of the catalog's
// retention: the embedded broker of `paystream dev` holds what it keeps in memory, so dev
// bounds it.
func Retention(d time.Duration) Option {
	return func(s *catalog.Spec) {
		if s.Cleanup == catalog.CleanupDelete {
			s.Retention = d
		}
	}
}

// Ensure creates every catalog topic the cluster lacks, with partitions partitions and the
// catalog's configuration, and compares the ones that exist with the catalog.
// replication -1 takes the broker's default.
func Ensure(ctx context.Context, adm *kadm.Client, partitions int32, replication int16, opts ...Option) (Report, error) {
	var rep Report
	specs := catalog.Topics()
	for i := range specs {
		for _, o := range opts {
			o(&specs[i])
		}
	}
	existing, err := adm.ListTopics(ctx, catalog.Names()...)
	if err != nil {
		return rep, fmt.Errorf("listing topics: %w", err)
	}
	for _, s := range specs {
		name := string(s.Name)
		if d, ok := existing[name]; ok && d.Err == nil {
			rep.Existing = append(rep.Existing, name)
			if have := int32(len(d.Partitions)); have != partitions {
				rep.Diffs = append(rep.Diffs, Diff{Topic: name, What: "partitions",
					Want: strconv.Itoa(int(partitions)), Have: strconv.Itoa(int(have))})
			}
			continue
		}
		configs := map[string]*string{}
		for k, v := range s.Configs() {
			configs[k] = kadm.StringPtr(v)
		}
		_, err := adm.CreateTopic(ctx, partitions, replication, configs, name)
		switch {
		case errors.Is(err, kerr.TopicAlreadyExists): // created meanwhile, or a stale listing
			rep.Existing = append(rep.Existing, name)
		case err != nil:
			return rep, fmt.Errorf("creating topic %s: %w", name, err)
		default:
			rep.Created = append(rep.Created, name)
		}
	}
	if len(rep.Existing) > 0 {
		diffs, err := configDiffs(ctx, adm, rep.Existing, specs)
		if err != nil {
			return rep, err
		}
		rep.Diffs = append(rep.Diffs, diffs...)
	}
	slices.SortFunc(rep.Diffs, func(a, b Diff) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		if a.What < b.What {
			return -1
		}
		return 1
	})
	return rep, nil
}

func configDiffs(ctx context.Context, adm *kadm.Client, names []string, specs []catalog.Spec) ([]Diff, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describing topic configs: %w", err)
	}
	var diffs []Diff
	for _, rc := range rcs {
		if rc.Err != nil {
			return nil, fmt.Errorf("describing %s: %w", rc.Name, rc.Err)
		}
		i := slices.IndexFunc(specs, func(s catalog.Spec) bool { return string(s.Name) == rc.Name })
		if i < 0 {
			continue
		}
		spec := specs[i]
		have := map[string]string{}
		for _, c := range rc.Configs {
			have[c.Key] = c.MaybeValue()
		}
		for k, want := range spec.Configs() {
			if h, ok := have[k]; ok && h != want {
				diffs = append(diffs, Diff{Topic: rc.Name, What: k, Want: want, Have: h})
			}
		}
	}
	return diffs, nil
}

// KeepCompacted sets retention.ms to -1 on the compacted topics among rep's differences
// that still carry a time retention, and returns rep without those differences. Topics
// created before the catalog said -1 have the broker's default, which the embedded broker
// applies to compacted topics too (see catalog.Spec.Configs); `paystream dev` repairs its
// own broker's topics with this, while an operator's cluster is only reported on.
func KeepCompacted(ctx context.Context, adm *kadm.Client, rep Report) (Report, []string, error) {
	var fixed []string
	kept := rep.Diffs[:0:0]
	for _, d := range rep.Diffs {
		s, err := catalog.Lookup(d.Topic)
		if err != nil || s.Cleanup != catalog.CleanupCompact || d.What != "retention.ms" {
			kept = append(kept, d)
			continue
		}
		fixed = append(fixed, d.Topic)
	}
	if len(fixed) == 0 {
		return rep, nil, nil
	}
	resps, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("-1")}}, fixed...)
	if err != nil {
		return rep, nil, fmt.Errorf("keeping compacted topics' values: %w", err)
	}
	for _, r := range resps {
		if r.Err != nil {
			return rep, nil, fmt.Errorf("keeping the values of %s: %w %s", r.Name, r.Err, r.ErrMessage)
		}
	}
	rep.Diffs = kept
	return rep, fixed, nil
}
