// Package catalog names every Kafka topic, consumer group and transactional-id prefix of
// paystream, with the settings each topic is created with. It is a leaf package: it imports
// nothing of ours, so the runtime, the test environment and the stages can all depend on it.
// Nothing else in the module spells a topic name.
package catalog

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Topic is a Kafka topic name from this catalog.
type Topic string

// Group is a consumer group name from this catalog.
type Group string

// TxnPrefix is the prefix of the transactional ids of one stage's workers; a worker's id
// is the prefix plus its stable instance name, so a restarted worker fences its old self.
type TxnPrefix string

// The payment topics, in the order a payment travels them.
const (
	PaymentsRequested Topic = "payments.requested"
	PaymentsValidated Topic = "payments.validated"
	PaymentsScreened  Topic = "payments.screened"
	PaymentsPriced    Topic = "payments.priced"
	PaymentsRewarded  Topic = "payments.rewarded"
	PaymentsRouted    Topic = "payments.routed"
	PaymentsOutcomes  Topic = "payments.outcomes"
	// PaymentsApproved holds the payments an operator approved in review; they enter the
	// chain again at the fee stage, as risk would have screened them.
	PaymentsApproved Topic = "payments.approved"

	ConnectorRequests Topic = "connector.requests"
	ConnectorResults  Topic = "connector.results"

	ReconStatements Topic = "recon.statements"
	ReconResults    Topic = "recon.results"
)

// DLQSuffix is appended to a topic's name to name its dead-letter topic.
const DLQSuffix = ".dlq"

// DLQ returns the dead-letter topic of t.
func (t Topic) DLQ() Topic { return t + DLQSuffix }

// Cleanup policies.
const (
	CleanupDelete  = "delete"
	CleanupCompact = "compact"
)

// DefaultPartitions is the partition count of every partitioned topic unless configured
// otherwise; keys are wallet ids, so it bounds the parallelism of each stage.
const DefaultPartitions = 12

// Spec is how one topic is created.
type Spec struct {
	Name Topic
	// Cleanup is CleanupDelete or CleanupCompact.
	Cleanup string
	// Retention is how long records are kept on delete topics; 0 means forever.
	Retention time.Duration
	// DLQ marks a dead-letter topic: operators read it, nothing consumes it automatically.
	DLQ bool
}

// Configs returns the topic-level Kafka configuration of s.
func (s Spec) Configs() map[string]string {
	// A compacted topic keeps every key's last value for good. Kafka ignores retention.ms
	// under cleanup.policy=compact, but the embedded broker applies it to every topic, with
	// a 7-day default: without -1 it dropped the changelog value of a wallet quiet for a
	// week, and the wallet's risk counters with it.
	ms := int64(-1)
	if s.Cleanup == CleanupDelete && s.Retention > 0 {
		ms = s.Retention.Milliseconds()
	}
	return map[string]string{"cleanup.policy": s.Cleanup, "retention.ms": strconv.FormatInt(ms, 10)}
}

// Retention of the stream topics: long enough to replay a week for reconciliation.
const streamRetention = 7 * 24 * time.Hour

// dlqRetention keeps poison records a month, time for an operator to look.
const dlqRetention = 30 * 24 * time.Hour

var streamTopics = []Topic{
	PaymentsRequested, PaymentsValidated, PaymentsScreened, PaymentsPriced,
	PaymentsRewarded, PaymentsRouted, PaymentsOutcomes, PaymentsApproved,
	ConnectorRequests, ConnectorResults,
	ReconStatements, ReconResults,
}

// The consumer groups of the stages; each stage's workers share one.
const (
	GroupValidation Group = "paystream.validation"
	GroupRisk       Group = "paystream.risk"
	GroupFee        Group = "paystream.fee"
	GroupLoyalty    Group = "paystream.loyalty"
	GroupRouting    Group = "paystream.routing"
	GroupPosting    Group = "paystream.posting"
	// GroupSettlement reads connector.results and completes the payments waiting on them.
	GroupSettlement Group = "paystream.settlement"

	// GroupIngress reads payments.outcomes into the ingress's status store and webhooks.
	GroupIngress Group = "paystream.ingress"
	// GroupConnectors reads connector.requests and writes connector.results.
	GroupConnectors Group = "paystream.connectors"
	// GroupReconciliation reads recon.statements and writes recon.results.
	GroupReconciliation Group = "paystream.reconciliation"
)

// Groups returns every consumer group of the catalog.
func Groups() []Group {
	return []Group{GroupValidation, GroupRisk, GroupFee, GroupLoyalty, GroupRouting, GroupPosting,
		GroupSettlement, GroupIngress, GroupConnectors, GroupReconciliation}
}

// Changelog names the compacted changelog topic holding a stateful group's per-key state.
func (g Group) Changelog() Topic { return Topic(string(g) + ".changelog") }

// TxnPrefix returns the transactional-id prefix of the group's workers.
func (g Group) TxnPrefix() TxnPrefix { return TxnPrefix(string(g) + "-") }

// statefulGroups keep per-wallet state in a changelog: risk velocity counters, loyalty
// per-payer caps.
var statefulGroups = []Group{GroupRisk, GroupLoyalty}

// Topics returns the spec of every topic in the catalog: the stream topics, a dead-letter
// topic for each topic a stage reads, and the changelogs of stateful groups.
func Topics() []Spec {
	var specs []Spec
	for _, t := range streamTopics {
		specs = append(specs, Spec{Name: t, Cleanup: CleanupDelete, Retention: streamRetention})
	}
	for _, t := range streamTopics {
		if t == PaymentsOutcomes || t == ReconResults {
			continue // nothing in paystream consumes these through the runner
		}
		specs = append(specs, Spec{Name: t.DLQ(), Cleanup: CleanupDelete, Retention: dlqRetention, DLQ: true})
	}
	for _, g := range statefulGroups {
		specs = append(specs, Spec{Name: g.Changelog(), Cleanup: CleanupCompact})
	}
	return specs
}

// Names returns the names of every topic in the catalog.
func Names() []string {
	specs := Topics()
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = string(s.Name)
	}
	return names
}

// Lookup returns the spec of the named topic.
func Lookup(name string) (Spec, error) {
	for _, s := range Topics() {
		if string(s.Name) == name {
			return s, nil
		}
	}
	return Spec{}, fmt.Errorf("topic %q is not in the catalog", name)
}

// IsKnown reports whether name is a catalog topic.
func IsKnown(name string) bool {
	return slices.Contains(Names(), name)
}
